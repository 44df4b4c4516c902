//! Shared test databases: see the `revoke-testkit` crate.
#![allow(unused_imports)]

pub use revoke_testkit::{eventually, TestDb, DEFAULT_PG_URL};

/// Runs one async test body against SQLite and PostgreSQL (`sqlite::NAME`, `postgres::NAME`).
#[macro_export]
macro_rules! both_backends {
    ($($t:tt)*) => { revoke_testkit::both_backends! { $($t)* } };
}
