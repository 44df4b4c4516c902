//! The engine's error type.

use std::sync::Arc;

/// An error from the store, sync or issuer.
///
/// Whose fault it is: [`Error::Invalid`] is the caller's (fix the request;
/// [`Error::is_caller_fault`]); every other variant is the server's or its database's, and
/// the same request may succeed later.
///
/// `Clone`, because one failed batch of revocations answers every caller in it: the
/// `sqlx` and migration errors, which are not `Clone`, are shared behind an [`Arc`] (as
/// `jsonwebtoken` shares its JSON errors).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed or could not be reached; nothing was changed.
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    /// Running the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(Arc<sqlx::migrate::MigrateError>),
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
    /// Something on the server side broke that is neither the database's answer nor the
    /// caller's request: a write task panicked or was cancelled, or the notification
    /// connection was lost. The event log is the truth about what was written.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the caller caused it ([`Error::Invalid`]: a blank key, a cut-off in the
    /// future, ...) and should change the request, rather than retry it. An HTTP face
    /// answers these 400 and the others 5xx; `revokectl` exits 2 for these and 1 otherwise.
    pub fn is_caller_fault(&self) -> bool {
        matches!(self, Error::Invalid(_))
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Database(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(Arc::new(e))
    }
}

/// `Result` with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed batch answers each of its callers with a clone: same variant, same message,
    /// the same underlying database error.
    #[test]
    fn cloned_errors_keep_variant_and_message() {
        let e = Error::from(sqlx::Error::PoolClosed);
        let s = e.clone();
        assert!(matches!(&s, Error::Database(d) if matches!(**d, sqlx::Error::PoolClosed)));
        assert_eq!(s.to_string(), e.to_string());
        let e = Error::from(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )));
        match e.clone() {
            Error::Database(d) => match &*d {
                sqlx::Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
        let e = Error::Invalid("bad".into());
        assert_eq!(e.clone().to_string(), e.to_string());
    }

    #[test]
    fn only_invalid_requests_are_the_callers_fault() {
        assert!(Error::Invalid("blank key".into()).is_caller_fault());
        assert!(!Error::Internal("write task failed".into()).is_caller_fault());
        assert!(!Error::from(sqlx::Error::PoolTimedOut).is_caller_fault());
        assert!(!Error::Overloaded { capacity: 1 }.is_caller_fault());
        assert!(!Error::Corrupt("bad row".into()).is_caller_fault());
    }
}
