//! The PostgreSQL backend: events appended under an advisory lock and announced with NOTIFY.

use super::sql::{impl_store, Dialect};
use super::Backend;
use crate::{Error, Event, Result, Revocation};
use futures_util::future::BoxFuture;
use tracing::Instrument;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool};
use sqlx::{PgConnection, Postgres};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Key of the advisory lock that orders event ids with commits: every transaction that
/// appends events takes it (transaction-level) just before the append and holds it until
/// commit. Anything else that writes `revoke_events` by hand must do the same.
pub const EVENT_LOCK: i64 = 0x7265_766f_6b65; // "revoke"

/// Channel that carries "new events up to id N" notifications.
pub const CHANNEL: &str = "revoke_events";

/// [`Store`](super::Store) over a PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Wraps an existing pool (for example the one `rocket_db_pools` made).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Opens a pool on a `postgres://` URL.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url.parse()?).await
    }

    /// Opens a pool with explicit options (for example a `search_path`).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The underlying pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A listener on [`CHANNEL`] from this pool's settings (same schema search path).
    pub async fn listener(&self) -> Result<PgListener> {
        let mut l = PgListener::connect_with(&self.pool).await?;
        l.listen(CHANNEL).await?;
        Ok(l)
    }

    async fn listen_impl(&self) -> Result<Option<Box<dyn super::ChangeFeed>>> {
        Ok(Some(Box::new(Feed(self.listener().await?))))
    }

    /// Runs `f` in one transaction on its own task, so a caller that gives up cannot leave
    /// a half-done transaction on a pooled connection.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::spawn(
            async move {
                let mut tx = pool.begin().await?;
                let v = f(&mut tx).await?;
                tx.commit().await?;
                Ok(v)
            }
            .instrument(tracing::Span::current()),
        );
        task.await
            .map_err(|e| Error::Invalid(format!("write task failed: {e}")))?
    }

    /// Serializes event appends until commit, so ids become visible in id order and a
    /// reader's cursor can never pass an id that commits later.
    async fn before_events(c: &mut PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVENT_LOCK)
            .execute(&mut *c)
            .await?;
        Ok(())
    }

    /// Upserts revocations with distinct (scope, key) in one statement (arrays, so the
    /// statement text is the same for every batch size); returns each row as it now stands.
    async fn upsert_revocations(
        c: &mut PgConnection,
        rows: &[&Revocation],
    ) -> Result<Vec<(String, String, Option<i64>, Option<i64>)>> {
        let n = rows.len();
        let (mut scope, mut key, mut cutoff, mut expires) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut reason, mut actor, mut at) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for r in rows {
            scope.push(r.scope.as_str());
            key.push(r.key.as_str());
            cutoff.push(r.cutoff);
            expires.push(r.expires_at);
            reason.push(r.reason.as_deref());
            actor.push(r.actor.as_deref());
            at.push(r.revoked_at);
        }
        Ok(sqlx::query_as(super::sql::PG_UPSERT_REVOCATIONS)
            .bind(scope)
            .bind(key)
            .bind(cutoff)
            .bind(expires)
            .bind(reason)
            .bind(actor)
            .bind(at)
            .fetch_all(&mut *c)
            .await?)
    }

    /// Takes the event lock, appends `events` (all of one `at_ms`), sets their ids, which
    /// follow the slice order, and queues the NOTIFY of the last one, in one statement: what
    /// [`Self::before_events`], one insert per event and [`Self::after_events`] do, in one
    /// round trip.
    async fn insert_events(c: &mut PgConnection, events: &mut [Event]) -> Result<()> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let at_ms = first.at_ms;
        let n = events.len();
        let (mut kind, mut scope, mut key, mut cutoff) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut expires, mut reason, mut actor) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for e in events.iter() {
            kind.push(e.kind.as_str());
            scope.push(e.scope.as_str());
            key.push(e.key.as_str());
            cutoff.push(e.cutoff);
            expires.push(e.expires_at);
            reason.push(e.reason.as_deref());
            actor.push(e.actor.as_deref());
        }
        let mut ids: Vec<i64> = sqlx::query_scalar(super::sql::PG_INSERT_EVENTS)
            .bind(at_ms)
            .bind(kind)
            .bind(scope)
            .bind(key)
            .bind(cutoff)
            .bind(expires)
            .bind(reason)
            .bind(actor)
            .bind(CHANNEL)
            .bind(EVENT_LOCK)
            .fetch_all(&mut *c)
            .await?;
        super::sql::assign_ids(events, &mut ids)
    }

    /// NOTIFY is delivered at commit, and only if the transaction commits.
    async fn after_events(c: &mut PgConnection, last_id: i64) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(last_id.to_string())
            .execute(&mut *c)
            .await?;
        Ok(())
    }
}

/// LISTEN on [`CHANNEL`].
struct Feed(PgListener);

#[async_trait::async_trait]
impl super::ChangeFeed for Feed {
    async fn recv(&mut self) -> Result<()> {
        // `try_recv` reports a lost connection as `None` instead of silently reconnecting,
        // so sync knows notifications may have been missed and reads the log.
        match self.0.try_recv().await? {
            Some(_) => Ok(()),
            None => Err(Error::Invalid("notification connection lost".into())),
        }
    }
}

impl_store!(
    PgStore,
    Postgres,
    PgConnection,
    Backend::Postgres,
    Dialect::Postgres,
    MIGRATOR
);
