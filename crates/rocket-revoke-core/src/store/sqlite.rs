//! The SQLite backend: one file in WAL mode, writers serialized by `BEGIN IMMEDIATE`.

use super::dialect::Dialect;
use super::sql::{self, RowId};
use super::{Backend, ChangeFeed, Joiners, SqlStore};
use crate::{Event, Result, Revocation};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

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
pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Wraps an existing pool (for example the one `rocket_db_pools` made). Switches the file
    /// to WAL mode, which persists in the file.
    pub async fn new(pool: SqlitePool) -> Result<Self> {
        let mut conn = pool.acquire().await?;
        // In-memory databases answer "memory"; that is fine.
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut *conn)
            .await?;
        drop(conn);
        Ok(Self::on_pool(pool))
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
        Ok(Self::on_pool(pool))
    }
}

#[async_trait::async_trait]
impl Dialect for Sqlite {
    const BACKEND: Backend = Backend::Sqlite;

    /// `BEGIN IMMEDIATE` takes the write lock up front, so two writers never deadlock
    /// upgrading a read lock. `synchronous=FULL` first, per connection and outside any
    /// transaction: a pool from rocket_db_pools or the app may run NORMAL, which can lose an
    /// acknowledged revocation on an OS crash (it costs one statement, no I/O:
    /// docs/BENCHMARKS.md).
    const BEGIN_WRITE: &'static [&'static str] = &["PRAGMA synchronous = FULL", "BEGIN IMMEDIATE"];

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// `BEGIN IMMEDIATE` holds the write lock: event ids already follow commit order.
    async fn lock_events(_c: &mut SqliteConnection) -> Result<()> {
        Ok(())
    }

    /// Nothing to announce: SQLite readers poll.
    async fn announce(_c: &mut SqliteConnection, _last_id: i64) -> Result<()> {
        Ok(())
    }

    /// Upserts revocations with distinct (scope, issuer, key), a multi-row statement per
    /// chunk; returns each row as it now stands.
    async fn upsert_revocations(
        c: &mut SqliteConnection,
        rows: &[&Revocation],
    ) -> Result<Vec<(RowId, Option<i64>, Option<i64>)>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut rest = rows;
        for size in sql::sqlite_chunks(rows.len()) {
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let sql = sql::sqlite_upsert_revocations(size);
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
        for size in sql::sqlite_chunks(events.len()) {
            let chunk = &mut events[done..done + size];
            done += size;
            let sql = sql::sqlite_insert_events(size);
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
            sql::assign_ids(chunk, &mut ids)?;
        }
        Ok(())
    }

    /// One write transaction; `joiners` are asked once the write lock is held (`BEGIN
    /// IMMEDIATE` may have waited for it).
    async fn revoke_rows(
        store: &SqliteStore,
        revocations: Vec<Revocation>,
        mut joiners: Option<Joiners>,
    ) -> Result<Vec<Option<Event>>> {
        let at_ms = store.clock.now_ms();
        store
            .write(move |c| {
                Box::pin(async move {
                    SqliteStore::revoke_in(c, &revocations, None, joiners.as_mut(), at_ms).await
                })
            })
            .await
    }

    async fn listen(_store: &SqliteStore) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(None)
    }
}
