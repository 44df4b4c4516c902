//! JWT revocation for Rocket: a fairing and request guards that reject revoked tokens by
//! checking an in-memory revocation set, kept in sync with the app's SQLite or PostgreSQL
//! database.
//!
//! ```rust
//! use rocket::http::{Header, Status};
//! use rocket::local::asynchronous::Client;
//! use rocket::{get, routes};
//! use rocket_db_pools::{sqlx, Database};
//! use rocket_revoke::{Authenticated, Revoke, RevokeRequest, Revoker};
//!
//! #[derive(Database)]
//! #[database("revoke")]
//! struct Db(sqlx::SqlitePool);
//!
//! #[get("/me")]
//! fn me(user: Authenticated) -> String {
//!     format!("hello {}", user.sub.as_deref().unwrap_or("?"))
//! }
//!
//! # rocket::execute(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # let url = format!("sqlite://{}/app.db?mode=rwc", dir.path().display());
//! let figment = rocket::Config::figment()
//!     .merge(("databases.revoke.url", url))
//!     .merge(("revoke.secret", "a long random string, at least 32 bytes of it"));
//! let rocket = rocket::custom(figment)
//!     .attach(Db::init())
//!     .attach(Revoke::<Db>::fairing())
//!     .mount("/", routes![me]);
//! let client = Client::tracked(rocket).await.unwrap();
//! let revoker = client.rocket().state::<Revoker>().unwrap();
//!
//! let pair = revoker.issue("alice", None).await.unwrap();
//! let bearer = Header::new("Authorization", format!("Bearer {}", pair.access_token));
//! let res = client.get("/me").header(bearer.clone()).dispatch().await;
//! assert_eq!(res.into_string().await.as_deref(), Some("hello alice"));
//!
//! // Log alice out everywhere: the next request is a 401, with no I/O on the request path.
//! let logout = RevokeRequest::subject("alice").reason("laptop stolen");
//! revoker.revoke(logout).await.unwrap();
//! let res = client.get("/me").header(bearer).dispatch().await;
//! assert_eq!(res.status(), Status::Unauthorized);
//! # });
//! ```
//!
//! In an app, attach the fairing after the database and mount the routes you want:
//!
//! ```rust,no_run
//! use rocket::{get, launch, routes};
//! use rocket_db_pools::{sqlx, Database};
//! use rocket_revoke::{Authenticated, Revoke};
//!
//! #[derive(Database)]
//! #[database("revoke")]
//! struct Db(sqlx::SqlitePool);
//!
//! #[get("/me")]
//! fn me(user: Authenticated) -> String {
//!     format!("hello {}", user.sub.as_deref().unwrap_or("?"))
//! }
//!
//! #[launch]
//! fn rocket() -> _ {
//!     rocket::build()
//!         .attach(Db::init())
//!         .attach(Revoke::<Db>::fairing())
//!         .mount("/", routes![me])
//!         .mount("/oauth", rocket_revoke::oauth_routes())
//!         .mount("/", rocket_revoke::metrics_route())
//! }
//! ```
//!
//! With this `Rocket.toml`:
//!
//! ```toml
//! [default.databases.revoke]
//! url = "sqlite://app.db?mode=rwc"
//!
//! [default.revoke]
//! secret = "a long random string, at least 32 bytes of it"
//! ```
//!
//! # What it does
//!
//! - [`Revoke`] is the fairing. On ignite it reads the `revoke` table ([`RevokeConfig`]),
//!   runs the migrations on the pool of the app's [`rocket_db_pools::Database`] (SQLite or
//!   PostgreSQL, see [`RevokePool`]), loads every revocation in force and manages a
//!   [`Revoker`]. Sync with the database (LISTEN/NOTIFY on PostgreSQL, polling everywhere)
//!   runs from liftoff to shutdown, so a revocation made by another instance, or by an
//!   operator with `revokectl`, is enforced here within milliseconds.
//! - [`Authenticated`] is the request guard for a verified, unrevoked access token;
//!   [`Verified`] skips the revocation check. Both work as `Option<_>` and
//!   `Result<_, AuthError>`. Checking a token does no I/O.
//! - A rejected token is a `401` with an RFC 6750 challenge and a JSON body, see
//!   [`AuthError`]. Nothing a client sends causes a 500.
//! - [`Revoker`] revokes by token, jti, subject, family or global cut-off, restores, mints
//!   and rotates token pairs, and reports [`Health`].
//! - [`oauth_routes`] are RFC 7009 revocation and RFC 7662 introspection;
//!   [`metrics_route`] serves Prometheus metrics ([`Metrics`]).
//! - The guards record when each token was last used, in batches off the request path.
//!
//! Using a guard or [`Revoker`] without the fairing aborts the launch (a
//! [`Sentinel`](rocket::Sentinel)).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
mod fairing;
mod guard;
mod last_seen;
mod metrics;
mod revoker;
mod routes;
mod scrape;

pub use config::{ConfigError, RevokeConfig};
pub use error::{AuthError, Error};
pub use fairing::{Revoke, RevokeClock, RevokePool};
pub use guard::{Authenticated, Verified};
pub use jsonwebtoken::Algorithm;
pub use metrics::Metrics;
pub use revoker::{Health, PublicHealth, Revoker};
pub use rocket_revoke_core::{Claims, NoExtra, RevokeRequest, Scope};
pub use routes::{health_routes, oauth_routes};
pub use scrape::metrics_route;

/// The README's Rust blocks, compiled as doctests so the documented setup keeps building.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
