//! revoke-core: the engine behind rocket-revoke.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
pub mod claims;
mod engine;
mod error;
pub mod issuer;
pub mod jwks;
pub mod set;
pub mod store;
pub mod sync;
mod types;
pub mod verifier;

pub use claims::{Audience, Claims, NoExtra};
pub use engine::{Engine, EngineConfig, RevokeRequest};
pub use error::{Error, Result};
pub use issuer::{Issuer, IssuerConfig, RefreshError, TokenPair};
pub use jwks::{JwksRefresher, JwksStatus};
pub use set::RevocationSet;
pub use sync::SyncStatus;
pub use types::*;
pub use verifier::{KeyError, Verifier, VerifierConfig, VerifyError};
