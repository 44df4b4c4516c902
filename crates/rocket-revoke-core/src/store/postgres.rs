//! The PostgreSQL backend: events appended under an advisory lock and announced with NOTIFY.

use super::dialect::{on_own_task, transaction, Dialect};
use super::sql::{self, RowId};
use super::{Backend, ChangeFeed, Joiners, SqlStore};
use crate::{Error, Event, Result, Revocation};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool};
use sqlx::{PgConnection, Postgres};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Key of the advisory lock that orders event ids with commits: every transaction that
/// appends events takes it (transaction-level) and holds it until commit. Anything else that
/// writes `revoke_events` by hand must do the same.
///
/// It is also the first lock of every transaction that writes `revoke_revocations` (a batch,
/// a restore, a rotation that detects reuse, raised bounds, the prune): no transaction holds
/// a revocation row while it waits for this lock, so they cannot deadlock on each other.
pub const EVENT_LOCK: i64 = 0x7265_766f_6b65; // "revoke"

/// Channel that carries "new events up to id N" notifications.
pub const CHANNEL: &str = "revoke_events";

/// [`Store`](super::Store) over a PostgreSQL pool.
pub type PgStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Wraps an existing pool (for example the one `rocket_db_pools` made).
    pub fn new(pool: PgPool) -> Self {
        Self::on_pool(pool)
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
        Ok(Self::on_pool(pool))
    }

    /// A listener on [`CHANNEL`](super::CHANNEL) from this pool's settings (same schema search path).
    pub async fn listener(&self) -> Result<PgListener> {
        let mut l = PgListener::connect_with(&self.pool).await?;
        l.listen(CHANNEL).await?;
        Ok(l)
    }

    /// The one statement of [`sql::PG_REVOKE_BATCH`] for `rows` with distinct (scope, issuer, key).
    async fn revoke_one_statement(
        c: &mut PgConnection,
        rows: Vec<Revocation>,
        at_ms: i64,
    ) -> Result<Vec<Option<Event>>> {
        let refs: Vec<&Revocation> = rows.iter().collect();
        type Written = (i64, String, String, String, Option<i64>, Option<i64>);
        let written: Vec<Written> = bind_revocations(sqlx::query_as(sql::PG_REVOKE_BATCH), &refs)
            .bind(at_ms)
            .bind(CHANNEL)
            .bind(EVENT_LOCK)
            .bind(issuers(&refs))
            .fetch_all(&mut *c)
            .await?;
        drop(refs);
        // Keys are distinct here; a row the upsert left alone (already in force) has no event.
        let mut written: std::collections::HashMap<sql::RowId, WrittenRow> = written
            .into_iter()
            .map(|(id, scope, iss, key, cutoff, exp)| ((scope, iss, key), (id, cutoff, exp)))
            .collect();
        Ok(rows
            .into_iter()
            .map(|r| {
                let (id, cutoff, expires_at) = written.remove(&sql::row_id(&r))?;
                Some(sql::revoke_event(r, id, at_ms, cutoff, expires_at))
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Dialect for Postgres {
    const BACKEND: Backend = Backend::Postgres;

    /// A plain transaction: [`EVENT_LOCK`] orders what must be ordered.
    const BEGIN_WRITE: &'static [&'static str] = &["BEGIN"];

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// [`EVENT_LOCK`], until commit: event appends are serialized, so ids become visible in
    /// id order and a reader's cursor can never pass an id that commits later. A rotation
    /// takes it too: it then waits for every transaction appending events to commit, and
    /// keeps new ones from appending until it commits, so it sees every revocation committed
    /// before it and none commits in the middle of it. Exclusive, not shared: a rotation that
    /// detects reuse appends events itself, and two shared holders upgrading at once would
    /// deadlock.
    async fn lock_events(c: &mut PgConnection) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVENT_LOCK)
            .execute(&mut *c)
            .await?;
        Ok(())
    }

    /// NOTIFY is delivered at commit, and only if the transaction commits.
    async fn announce(c: &mut PgConnection, last_id: i64) -> Result<()> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(last_id.to_string())
            .execute(&mut *c)
            .await?;
        Ok(())
    }

    /// Upserts revocations with distinct (scope, issuer, key) in one statement (arrays, so the
    /// statement text is the same for every batch size); returns each row as it now stands.
    async fn upsert_revocations(
        c: &mut PgConnection,
        rows: &[&Revocation],
    ) -> Result<Vec<(RowId, Option<i64>, Option<i64>)>> {
        type Row = (String, String, String, Option<i64>, Option<i64>);
        let got: Vec<Row> = bind_revocations(sqlx::query_as(sql::PG_UPSERT_REVOCATIONS), rows)
            .bind(issuers(rows))
            .fetch_all(&mut *c)
            .await?;
        Ok(got
            .into_iter()
            .map(|(scope, iss, key, cutoff, exp)| ((scope, iss, key), cutoff, exp))
            .collect())
    }

    /// Takes the event lock, appends `events` (all of one `at_ms`), sets their ids, which
    /// follow the slice order, and queues the NOTIFY of the last one, in one statement: what
    /// [`Dialect::lock_events`], one insert per event and [`Dialect::announce`] do, in one
    /// round trip.
    async fn insert_events(c: &mut PgConnection, events: &mut [Event]) -> Result<()> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        let at_ms = first.at_ms;
        let texts = |f: fn(&Event) -> &str| events.iter().map(f).collect::<Vec<_>>();
        let (kind, scope, key) = (
            texts(|e| e.kind.as_str()),
            texts(|e| e.scope.as_str()),
            texts(|e| e.key.as_str()),
        );
        let mut ids: Vec<i64> = sqlx::query_scalar(sql::PG_INSERT_EVENTS)
            .bind(at_ms)
            .bind(kind)
            .bind(scope)
            .bind(key)
            .bind(events.iter().map(|e| e.cutoff).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.expires_at).collect::<Vec<_>>())
            .bind(
                events
                    .iter()
                    .map(|e| e.reason.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                events
                    .iter()
                    .map(|e| e.actor.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(CHANNEL)
            .bind(EVENT_LOCK)
            .bind(
                events
                    .iter()
                    .map(|e| crate::types::issuer_column(e.issuer.as_deref()))
                    .collect::<Vec<_>>(),
            )
            .fetch_all(&mut *c)
            .await?;
        sql::assign_ids(events, &mut ids)
    }

    /// Commits a revocation batch on its own task. Distinct keys (the usual case) take one
    /// statement that commits itself ([`sql::PG_REVOKE_BATCH`]); a batch that repeats a
    /// key takes a transaction of one upsert per round (`SqlStore::revoke_in`). `joiners` are
    /// asked once a connection is ready, just before anything is written.
    async fn revoke_rows(
        store: &PgStore,
        mut revocations: Vec<Revocation>,
        joiners: Option<Joiners>,
    ) -> Result<Vec<Option<Event>>> {
        let at_ms = store.clock.now_ms();
        on_own_task(&store.pool, move |mut conn| {
            Box::pin(async move {
                if let Some(mut joiners) = joiners {
                    revocations.extend(joiners());
                }
                let rows = sql::checked_rows(revocations.into_iter())?;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                if sql::upsert_rounds(&rows).len() > 1 {
                    return transaction(conn, move |c| {
                        Box::pin(
                            async move { PgStore::revoke_in(c, &rows, None, None, at_ms).await },
                        )
                    })
                    .await;
                }
                PgStore::revoke_one_statement(&mut conn, rows, at_ms).await
            })
        })
        .await
    }

    async fn listen(store: &PgStore) -> Result<Option<Box<dyn ChangeFeed>>> {
        Ok(Some(Box::new(Feed(store.listener().await?))))
    }
}

/// An event written by [`sql::PG_REVOKE_BATCH`], by (scope, key): id, cutoff, expiry.
type WrittenRow = (i64, Option<i64>, Option<i64>);

/// The issuer scopes of `rows` (`""` for none), the array the statements read after their
/// fixed parameters.
fn issuers<'q>(rows: &[&'q Revocation]) -> Vec<&'q str> {
    rows.iter()
        .map(|r| crate::types::issuer_column(r.issuer.as_deref()))
        .collect()
}

/// A `query_as` on PostgreSQL.
type PgQueryAs<'q, O> = sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>;

/// Binds revocations as the seven parallel arrays `$1..$7` (scope, key, cutoff, expires_at,
/// reason, actor, revoked_at) that the `UNNEST` statements read.
fn bind_revocations<'q, O>(q: PgQueryAs<'q, O>, rows: &[&'q Revocation]) -> PgQueryAs<'q, O> {
    q.bind(rows.iter().map(|r| r.scope.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.cutoff).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.expires_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.reason.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.actor.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.revoked_at).collect::<Vec<_>>())
}

/// LISTEN on [`CHANNEL`].
struct Feed(PgListener);

#[async_trait::async_trait]
impl super::ChangeFeed for Feed {
    async fn recv(&mut self) -> Result<()> {
        self.recv_upto().await.map(|_| ())
    }

    async fn recv_upto(&mut self) -> Result<Option<i64>> {
        // `try_recv` reports a lost connection as `None` instead of silently reconnecting,
        // so sync knows notifications may have been missed and reads the log.
        match self.0.try_recv().await? {
            Some(n) => Ok(n.payload().parse().ok()),
            None => Err(Error::Internal("notification connection lost".into())),
        }
    }
}
