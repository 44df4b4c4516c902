//! [`SqlStore<D>`], a store over a pool of database `D`; [`Dialect`], the little SQLite and
//! PostgreSQL do differently (how a write transaction starts, how rows are written in bulk, how
//! readers are woken), implemented in `sqlite.rs` and `postgres.rs`; and the write runner both
//! use. `generic.rs` implements [`Store`](super::Store) on top.

use super::sql::RowId;
use super::{Backend, ChangeFeed, Joiners};
use crate::{Error, Event, Result, Revocation, SharedClock};
use futures_util::future::BoxFuture;
use sqlx::database::HasArguments;
use sqlx::migrate::{Migrate, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Executor, IntoArguments, Pool};
use std::fmt;
use tracing::Instrument;

/// [`Store`](super::Store) over a pool of database `D`: [`SqliteStore`](super::SqliteStore) or
/// [`PgStore`](super::PgStore).
pub struct SqlStore<D: sqlx::Database> {
    pub(super) pool: Pool<D>,
    pub(super) clock: SharedClock,
}

// By hand: derives would ask `D: Clone + Debug` of the database marker type.
impl<D: sqlx::Database> Clone for SqlStore<D> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            clock: self.clock.clone(),
        }
    }
}

impl<D: sqlx::Database> fmt::Debug for SqlStore<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &D::NAME)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<D: sqlx::Database> SqlStore<D> {
    /// A store on `pool` reading the system clock.
    pub(super) fn on_pool(pool: Pool<D>) -> Self {
        Self {
            pool,
            clock: crate::system_clock(),
        }
    }

    /// This store reading `clock` (for tests that move time).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The underlying pool.
    pub fn pool(&self) -> &Pool<D> {
        &self.pool
    }
}

/// What SQLite and PostgreSQL do differently. Implemented for [`sqlx::Sqlite`] and
/// [`sqlx::Postgres`] only: the trait is public (it bounds [`SqlStore`]'s `Store`
/// implementation) but cannot be named outside this crate.
#[async_trait::async_trait]
pub trait Dialect: sqlx::Database<Connection: Migrate> {
    /// Which backend this is.
    const BACKEND: Backend;

    /// The statements that open a write transaction, so that it holds the write lock it
    /// needs from the start. A connection on which one fails is never pooled again.
    const BEGIN_WRITE: &'static [&'static str];

    /// This backend's migrations.
    fn migrator() -> &'static Migrator;

    /// How many rows a statement wrote (sqlx has no trait for it).
    fn rows_affected(done: &Self::QueryResult) -> u64;

    /// Takes the lock that orders event ids with commits, held until commit (PostgreSQL's
    /// advisory lock; SQLite's `BEGIN IMMEDIATE` holds its write lock already). Every
    /// transaction that writes `revoke_revocations` or `revoke_events` takes it first.
    async fn lock_events(c: &mut Self::Connection) -> Result<()>;

    /// Announces events up to `last_id` to other instances at commit (PostgreSQL's NOTIFY;
    /// SQLite readers poll).
    async fn announce(c: &mut Self::Connection, last_id: i64) -> Result<()>;

    /// Upserts revocations with distinct (scope, issuer, key) in bulk; returns each row the
    /// upsert changed as it now stands, in any order (a row left alone was already in
    /// force).
    async fn upsert_revocations(
        c: &mut Self::Connection,
        rows: &[&Revocation],
    ) -> Result<Vec<(RowId, Option<i64>, Option<i64>)>>;

    /// Takes the event lock as [`Dialect::lock_events`] does, appends `events`, sets their
    /// ids (ascending in slice order) and announces them as [`Dialect::announce`] would.
    async fn insert_events(c: &mut Self::Connection, events: &mut [Event]) -> Result<()>;

    /// Commits a revocation batch (normally through `SqlStore::revoke_in`); `joiners` are
    /// asked once the write can start, just before anything is written.
    async fn revoke_rows(
        store: &SqlStore<Self>,
        revocations: Vec<Revocation>,
        joiners: Option<Joiners>,
    ) -> Result<Vec<Option<Event>>>;

    /// A feed that wakes sync when events commit, if this backend has one.
    async fn listen(store: &SqlStore<Self>) -> Result<Option<Box<dyn ChangeFeed>>>;
}

/// Runs `f` on a pooled connection on its own task, so a caller that gives up cannot leave
/// a half-done write on a pooled connection.
pub(super) async fn on_own_task<D, T, F>(pool: &Pool<D>, f: F) -> Result<T>
where
    D: sqlx::Database,
    T: Send + 'static,
    F: FnOnce(PoolConnection<D>) -> BoxFuture<'static, Result<T>> + Send + 'static,
{
    let pool = pool.clone();
    let task = tokio::spawn(
        async move {
            let conn = pool.acquire().await?;
            f(conn).await
        }
        .instrument(tracing::Span::current()),
    );
    task.await
        .map_err(|e| Error::Internal(format!("write task failed: {e}")))?
}

/// Runs `f` in one write transaction on `conn` (opened by [`Dialect::BEGIN_WRITE`]),
/// committed when `f` succeeds and rolled back when it fails. A connection whose transaction
/// state is unknown (a failed `BEGIN`, a failed rollback, a panic in `f`) is closed rather than
/// pooled again.
pub(super) async fn transaction<D, T, F>(conn: PoolConnection<D>, f: F) -> Result<T>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> <D as HasArguments<'q>>::Arguments: IntoArguments<'q, D>,
    F: for<'c> FnOnce(&'c mut D::Connection) -> BoxFuture<'c, Result<T>> + Send,
{
    let mut held = Held(Some(conn));
    let conn = held.conn();
    for sql in D::BEGIN_WRITE {
        // sqlx 0.7 steps a failed statement once more after reporting its error, so a SQLite
        // BEGIN that timed out on the lock can still open a transaction, and hold the write
        // lock for good, once the lock frees: `held` discards the connection.
        sqlx::query(sql).execute(&mut *conn).await?;
    }
    match f(&mut *conn).await {
        Ok(v) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            held.release();
            Ok(v)
        }
        Err(e) => {
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_ok() {
                held.release();
            }
            Err(e)
        }
    }
}

/// A connection that is closed, not pooled, unless [`Held::release`] says its transaction
/// state is known.
struct Held<D: sqlx::Database>(Option<PoolConnection<D>>);

impl<D: sqlx::Database> Held<D> {
    fn conn(&mut self) -> &mut D::Connection {
        self.0.as_mut().expect("held until released")
    }

    /// Back to the pool.
    fn release(&mut self) {
        self.0 = None;
    }
}

impl<D: sqlx::Database> Drop for Held<D> {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else {
            return;
        };
        // Closing rolls back whatever transaction it may hold, after any statement its worker
        // is still running.
        let conn = conn.detach();
        tokio::spawn(async move {
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "closing a discarded connection");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    async fn store(dir: &tempfile::TempDir) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::connect(&url).await.expect("open");
        sqlx::query("CREATE TABLE t (v INTEGER)")
            .execute(store.pool())
            .await
            .expect("create");
        store
    }

    async fn count(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(store.pool())
            .await
            .expect("count")
    }

    fn insert(c: &mut sqlx::SqliteConnection) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO t VALUES (1)")
                .execute(&mut *c)
                .await?;
            Ok(())
        })
    }

    #[tokio::test]
    async fn a_failed_write_rolls_back_and_reports_its_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        store.write(insert).await.expect("commit");
        let err = store
            .write::<(), _>(|c| {
                Box::pin(async move {
                    insert(c).await?;
                    Err(Error::Invalid("no".into()))
                })
            })
            .await
            .expect_err("fails");
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert_eq!(count(&store).await, 1, "the failed write left nothing");
        store.write(insert).await.expect("the connection is usable");
        assert_eq!(count(&store).await, 2);
    }

    #[tokio::test]
    async fn a_write_that_panics_is_an_error_and_never_pools_its_open_transaction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        let err = store
            .write::<(), _>(|c| {
                Box::pin(async move {
                    insert(c).await?;
                    panic!("a bug in the middle of a transaction");
                })
            })
            .await
            .expect_err("the panic is an error");
        assert!(matches!(err, Error::Internal(_)), "{err}");
        // Had the connection gone back to the pool inside its transaction, the next write
        // would fail to BEGIN, or commit the half-done one with it.
        store
            .write(insert)
            .await
            .expect("a fresh connection writes");
        assert_eq!(count(&store).await, 1, "only the second write landed");
    }
}
