//! rocket-revoke-core: the engine behind rocket-revoke. Revoke a JWT by `jti`, by subject ("log
//! out everywhere"), by session family or by a global cut-off, and check any token against
//! the revocations in memory, without I/O, while the set stays in sync with SQLite or
//! PostgreSQL.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use rocket_revoke_core::store::{SqliteStore, Store};
//! use rocket_revoke_core::{Engine, EngineConfig, Issuer, IssuerConfig, NoExtra, RevokeRequest};
//! use rocket_revoke_core::{Scope, Verifier};
//!
//! let secret = "an example secret, at least 32 bytes long";
//! let store = SqliteStore::connect("sqlite::memory:").await?;
//! store.migrate().await?;
//! let engine = Engine::new(Arc::new(store), EngineConfig::default()).await?;
//! let config = IssuerConfig { secret: Some(secret.into()), ..IssuerConfig::default() };
//! let issuer = Issuer::new(config, engine.clone())?;
//! let verifier = Verifier::hs256(secret.as_bytes());
//!
//! // Mint a pair, verify the access token, check it: not revoked.
//! let pair = issuer.issue("alice", Some("laptop")).await?;
//! let claims = verifier.verify::<NoExtra>(&pair.access_token)?;
//! assert_eq!(engine.check(&claims.token_ref()), None);
//!
//! // "Log out everywhere": committed to the database, then enforced in memory.
//! engine.revoke(RevokeRequest::subject("alice").reason("laptop stolen")).await?;
//! assert_eq!(engine.check(&claims.token_ref()), Some(Scope::Subject));
//!
//! // Her refresh token is covered by the same cut-off: no new pair.
//! let rotated = issuer.refresh(&verifier, &pair.refresh_token).await;
//! assert!(rotated.is_err());
//! # Ok(())
//! # }
//! ```
//!
//! - [`RevocationSet`]: the in-memory set; lock-free reads, ~40 ns per check.
//! - [`store`]: the [`Store`](store::Store) trait over SQLite and PostgreSQL (sqlx), with
//!   embedded migrations.
//! - [`Engine`]: a store, a set and the sync that keeps them agreeing (event log by cursor,
//!   LISTEN/NOTIFY on PostgreSQL, polling as the safety net).
//! - [`Verifier`]: signature, algorithm allow-list, keys (secret, PEM, JWKS file or URL)
//!   and claim checks over `jsonwebtoken`.
//! - [`Issuer`]: access/refresh pairs in session families, rotation and reuse detection.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod claims;
mod clock;
mod engine;
mod error;
mod issuer;
mod jwks;
mod keys;
mod lifetime;
mod redact;
mod set;
pub mod store;
mod sync;
mod types;
mod verified;
mod verifier;

// Every item has one public path: the root for all but the store's, which are reached as
// `store::X` only. Named, not globbed, so a new public item is exported on purpose.
pub use claims::{Audience, Claims, NoExtra};
pub use clock::{system_clock, Clock, ManualClock, SharedClock, SystemClock};
pub use engine::{Engine, EngineConfig, RevokeRequest, MAX_WRITE_QUEUE};
pub use error::{Error, Result};
pub use issuer::{Issuer, IssuerConfig, IssuerError, RefreshError, TokenPair};
pub use jwks::{JwksRefresher, JwksStatus, MAX_JWKS_BYTES};
pub use keys::KeyError;
pub use lifetime::{Bounds, DEFAULT_CLOCK_SKEW_SECS, MAX_LEEWAY_SECS, MAX_TTL_SECS};
pub use redact::redact_url;
pub use set::{RevocationSet, SetCounts, SetLoader, SetView};
pub use sync::{LagObserver, SyncStatus};
pub use types::{
    now_ms, now_secs, Event, EventKind, ParseNameError, Revocation, Scope, TokenKind, TokenRef,
};
pub use verifier::{
    TokenProfile, Verifier, VerifierConfig, VerifyError, MAX_KEYS_PER_TOKEN, MAX_TOKEN_LEN,
};
