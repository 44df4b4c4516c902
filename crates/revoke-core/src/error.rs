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
    /// Minting a token failed.
    #[error("failed to sign token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
