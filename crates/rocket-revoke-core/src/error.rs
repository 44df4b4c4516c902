//! The engine's error type.

/// An error from the store, sync or issuer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or could not be reached; nothing was changed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Running the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row in the database holds a value this version cannot read.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The caller asked for something that cannot be done (bad scope, empty key, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The revocation write queue is full: `capacity` revocations are already waiting for
    /// the database (see [`EngineConfig::write_queue`](crate::EngineConfig::write_queue)).
    /// A server-side condition, not the caller's fault; nothing was written, and the same
    /// request may succeed a moment later (HTTP: 503 with `Retry-After`).
    #[error("overloaded: {capacity} revocations are already waiting to be written (`write_queue`); retry later")]
    Overloaded {
        /// The queue's size, `write_queue`.
        capacity: usize,
    },
    /// Minting a token failed.
    #[error("failed to sign token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
