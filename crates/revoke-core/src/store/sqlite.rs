//! The SQLite backend: one file in WAL mode, writers serialized by `BEGIN IMMEDIATE`.

use super::sql::{impl_store, Dialect};
use super::Backend;
use crate::{Error, Result};
use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// [`Store`](super::Store) over a SQLite pool.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use revoke_core::store::{SqliteStore, Store};
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
/// assert_eq!(store.stats(0).await?.tokens, 0);
/// # Ok::<(), revoke_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Wraps an existing pool (for example the one `rocket_db_pools` made). Switches the file
    /// to WAL mode, which persists in the file.
    pub async fn new(pool: SqlitePool) -> Result<Self> {
        let mut conn = pool.acquire().await?;
        // In-memory databases answer "memory"; that is fine.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut *conn)
            .await?;
        Ok(Self { pool })
    }

    /// Opens a pool on `url` (`sqlite://path.db`, `sqlite::memory:`), creating the file if
    /// missing, in WAL mode with a 5 s busy timeout.
    pub async fn connect(url: &str) -> Result<Self> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            // NORMAL is durable against a process crash in WAL mode; only an OS crash can
            // lose the last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            // A private in-memory database exists once per connection: keep exactly one.
            .max_connections(if memory { 1 } else { 8 })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(1800))
            })
            .connect_with(opts)
            .await?;
        Ok(Self { pool })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `f` in one write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so
    /// two writers never deadlock upgrading a read lock. The work runs on its own task so a
    /// caller that gives up cannot leave a half-done transaction on a pooled connection.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            let mut conn = pool.acquire().await?;
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
            match f(&mut conn).await {
                Ok(v) => match sqlx::query("COMMIT").execute(&mut *conn).await {
                    Ok(_) => Ok(v),
                    Err(e) => {
                        rollback_or_discard(conn).await;
                        Err(e.into())
                    }
                },
                Err(e) => {
                    rollback_or_discard(conn).await;
                    Err(e)
                }
            }
        });
        task.await
            .map_err(|e| Error::Invalid(format!("write task failed: {e}")))?
    }

    async fn listen_impl(&self) -> Result<Option<Box<dyn super::ChangeFeed>>> {
        Ok(None)
    }

    async fn before_events(_c: &mut SqliteConnection) -> Result<()> {
        Ok(())
    }

    async fn after_events(_c: &mut SqliteConnection, _last_id: i64) -> Result<()> {
        Ok(())
    }
}

async fn rollback_or_discard(mut conn: sqlx::pool::PoolConnection<Sqlite>) {
    if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
        // A connection in an unknown transaction state must not go back to the pool.
        let _ = conn.detach().close().await;
    }
}

impl_store!(
    SqliteStore,
    Sqlite,
    SqliteConnection,
    Backend::Sqlite,
    Dialect::Sqlite,
    MIGRATOR
);
