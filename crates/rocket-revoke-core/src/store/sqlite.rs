//! The SQLite backend: one file in WAL mode, writers serialized by `BEGIN IMMEDIATE`.

use super::sql::{impl_store, Dialect};
use super::Backend;
use crate::{Error, Event, Result, Revocation};
use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use tracing::Instrument;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// [`Store`](super::Store) over a SQLite pool.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use rocket_revoke_core::store::{SqliteStore, Store};
/// let store = SqliteStore::connect("sqlite::memory:").await?;
/// store.migrate().await?;
/// assert_eq!(store.stats(0).await?.tokens, 0);
/// # Ok::<(), rocket_revoke_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: crate::SharedClock,
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
        Ok(Self {
            pool,
            clock: crate::system_clock(),
        })
    }

    /// This store reading `clock` (for tests that move time).
    pub fn with_clock(mut self, clock: crate::SharedClock) -> Self {
        self.clock = clock;
        self
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
            // FULL: a commit is on disk before it is acknowledged, OS crash and power loss
            // included (NORMAL in WAL mode syncs only at checkpoints and can lose the last
            // commits). `write` sets it again for pools made elsewhere.
            .synchronous(SqliteSynchronous::Full)
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
        Ok(Self {
            pool,
            clock: crate::system_clock(),
        })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Runs `f` in one write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so
    /// two writers never deadlock upgrading a read lock. The work runs on its own task so a
    /// caller that gives up cannot leave a half-done transaction on a pooled connection.
    /// Every write (revocation batches, restores, rotations) commits with
    /// `synchronous=FULL`, whatever the pool was opened with.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::spawn(
            async move {
                let mut conn = pool.acquire().await?;
                // A pool from rocket_db_pools or the app may run NORMAL, which can lose an
                // acknowledged revocation on an OS crash. Per connection, outside any
                // transaction, and no I/O: it costs one statement (docs/BENCHMARKS.md).
                sqlx::query("PRAGMA synchronous = FULL")
                    .execute(&mut *conn)
                    .await?;
                if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
                    // sqlx 0.7 steps a failed statement once more after reporting its error,
                    // so a BEGIN that timed out on the lock can still open a transaction, and
                    // hold the write lock for good, once the lock frees. Never pool it again.
                    discard(conn);
                    return Err(e.into());
                }
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
            }
            .instrument(tracing::Span::current()),
        );
        task.await
            .map_err(|e| Error::Internal(format!("write task failed: {e}")))?
    }

    /// Commits a revocation batch in one write transaction; `joiners` are asked once the
    /// write lock is held (`BEGIN IMMEDIATE` may have waited for it).
    async fn revoke_rows(
        &self,
        revocations: Vec<Revocation>,
        mut joiners: Option<super::Joiners>,
    ) -> Result<Vec<Option<Event>>> {
        let at_ms = self.clock.now_ms();
        self.write(move |c| {
            Box::pin(async move {
                Self::revoke_in(c, &revocations, None, joiners.as_mut(), at_ms).await
            })
        })
        .await
    }

    /// `BEGIN IMMEDIATE` holds the write lock: rotation is already ordered against every
    /// revocation commit.
    async fn before_rotate(_c: &mut SqliteConnection) -> Result<()> {
        Ok(())
    }

    async fn listen_impl(&self) -> Result<Option<Box<dyn super::ChangeFeed>>> {
        Ok(None)
    }

    /// Upserts revocations with distinct (scope, issuer, key), a multi-row statement per
    /// chunk; returns each row as it now stands.
    async fn upsert_revocations(
        c: &mut SqliteConnection,
        rows: &[&Revocation],
    ) -> Result<Vec<(super::sql::RowId, Option<i64>, Option<i64>)>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut rest = rows;
        for size in super::sql::sqlite_chunks(rows.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let sql = super::sql::sqlite_upsert_revocations(size);
            type Row = (String, String, String, Option<i64>, Option<i64>);
            let mut q = sqlx::query_as::<_, Row>(&sql);
            for r in chunk {
                q = q
                    .bind(r.scope.as_str())
                    .bind(r.key.as_str())
                    .bind(r.cutoff)
                    .bind(r.expires_at)
                    .bind(r.reason.as_deref())
                    .bind(r.actor.as_deref())
                    .bind(r.revoked_at)
                    .bind(crate::types::issuer_column(r.issuer.as_deref()));
            }
            let got = q.fetch_all(&mut *c).await?;
            out.extend(
                got.into_iter()
                    .map(|(scope, iss, key, cutoff, exp)| ((scope, iss, key), cutoff, exp)),
            );
        }
        Ok(out)
    }

    /// Appends `events` with multi-row statements and sets their ids, which follow the
    /// slice order (the write lock is held, and rows are inserted in `VALUES` order). Nothing
    /// to announce: SQLite readers poll.
    async fn insert_events(c: &mut SqliteConnection, events: &mut [Event]) -> Result<()> {
        let mut done = 0;
        for size in super::sql::sqlite_chunks(events.len()) {
            let chunk = &mut events[done..done + size];
            done += size;
            let sql = super::sql::sqlite_insert_events(size);
            let mut q = sqlx::query_scalar::<_, i64>(&sql);
            for e in chunk.iter() {
                q = q
                    .bind(e.at_ms)
                    .bind(e.kind.as_str())
                    .bind(e.scope.as_str())
                    .bind(e.key.as_str())
                    .bind(e.cutoff)
                    .bind(e.expires_at)
                    .bind(e.reason.as_deref())
                    .bind(e.actor.as_deref())
                    .bind(crate::types::issuer_column(e.issuer.as_deref()));
            }
            let mut ids = q.fetch_all(&mut *c).await?;
            super::sql::assign_ids(chunk, &mut ids)?;
        }
        Ok(())
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
        discard(conn);
    }
}

/// Takes `conn` out of the pool and closes it in the background: closing rolls back whatever
/// transaction it may hold, after any statement its worker is still running.
fn discard(conn: sqlx::pool::PoolConnection<Sqlite>) {
    let conn = conn.detach();
    tokio::spawn(async move {
        if let Err(e) = conn.close().await {
            tracing::debug!(error = %e, "closing a discarded SQLite connection");
        }
    });
}

impl_store!(
    SqliteStore,
    Sqlite,
    SqliteConnection,
    Backend::Sqlite,
    Dialect::Sqlite,
    MIGRATOR
);
