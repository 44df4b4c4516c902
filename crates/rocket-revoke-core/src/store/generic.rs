//! The [`Store`] both backends share, written once for every [`SqlStore<D>`] whose `D` is a
//! [`Dialect`], as Rocket's `db_pools` implements its `Pool` for `sqlx::Pool<D>`: everything
//! but what `Dialect` names, the SQL of `sql.rs` included, is one text for both.

use super::dialect::{on_own_task, transaction, Dialect, SqlStore};
use super::rows::{corrupt, EventRow, TokenRow};
use super::sql::{self, Arg, RowId};
use super::{
    Backend, ChangeFeed, EventQuery, Joiners, ListQuery, PruneReport, Rotation, SnapshotSink,
    Stats, Store, TokenInfo, TokenRecord, PRUNE_BATCH,
};
use crate::types::issuer_column;
use crate::{Bounds, Event, EventKind, Result, Revocation, Scope, SharedClock, TokenKind};
use futures_util::future::BoxFuture;
use sqlx::database::HasArguments;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Type};
use std::collections::HashMap;

// The `where` clause below is written twice, here and on the `Store` impl: bounds on other
// types (`i64: Encode<D>`) are not implied by `D: Dialect`, so each generic block that runs
// sqlx queries spells them out, as sqlx's own generic code does.

/// The statements behind [`Store`], generic over the database; the caller owns the transaction
/// where one is passed in.
impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> <D as HasArguments<'q>>::Arguments: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Decode<'q, D> + Type<D> + ColumnIndex<D::Row>,
    for<'q> String: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> bool: Decode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Vec<u8>: Decode<'q, D> + Type<D>,
    usize: ColumnIndex<D::Row>,
{
    /// Runs `f` in one write transaction on its own task (see [`transaction`]).
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut D::Connection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        on_own_task(&self.pool, move |conn| Box::pin(transaction(conn, f))).await
    }

    /// `args` as bind values, in order (for the dynamically built queries).
    fn arguments<'q>(args: Vec<Arg>) -> <D as HasArguments<'q>>::Arguments {
        let mut out = <D as HasArguments<'q>>::Arguments::default();
        for a in args {
            match a {
                Arg::Int(v) => sqlx::Arguments::add(&mut out, v),
                Arg::Text(v) => sqlx::Arguments::add(&mut out, v),
            }
        }
        out
    }

    /// A query on `sql` with a token's seven columns bound as `$1..$7`.
    fn token_query<'q>(
        sql: &'q str,
        t: &'q TokenRecord,
    ) -> sqlx::query::Query<'q, D, <D as HasArguments<'q>>::Arguments> {
        sqlx::query::<D>(sql)
            .bind(t.jti.as_str())
            .bind(t.sub.as_str())
            .bind(t.fid.as_deref())
            .bind(t.kind.as_str())
            .bind(t.iat)
            .bind(t.exp)
            .bind(t.label.as_deref())
    }

    /// Registers tokens (existing jtis are left alone) inside the caller's transaction.
    async fn insert_tokens(c: &mut D::Connection, tokens: &[TokenRecord]) -> Result<()> {
        for t in tokens {
            Self::token_query(sql::INSERT_TOKEN, t)
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    }

    /// Upserts revocations and appends their events, one event per revocation in the
    /// given order (then the reuse event of `extra`); the caller owns the transaction.
    ///
    /// Multi-row statements: one upsert per round of distinct keys (almost always one;
    /// see `sql::upsert_rounds`) and one event insert, so a batch costs a few
    /// statements, not two per revocation. The result equals applying the revocations
    /// one by one: each event carries the cut-off and expiry its row had right after
    /// that revocation.
    pub(super) async fn revoke_in(
        c: &mut D::Connection,
        revocations: &[Revocation],
        extra: Option<(&str, &str)>,
        joiners: Option<&mut Joiners>,
        at_ms: i64,
    ) -> Result<Vec<Option<Event>>> {
        // Revocations that arrived while the transaction was being opened join it now,
        // before any row is written (so rows are still locked in one sorted order).
        let joined = joiners.map(|j| j()).unwrap_or_default();
        let rows = sql::checked_rows(revocations.iter().chain(&joined).cloned())?;
        // The event lock before any row lock (PostgreSQL; see `EVENT_LOCK`).
        D::lock_events(&mut *c).await?;
        let mut applied: Vec<Option<(Option<i64>, Option<i64>)>> = vec![None; rows.len()];
        for round in sql::upsert_rounds(&rows) {
            let batch: Vec<&Revocation> = round.iter().map(|&i| &rows[i]).collect();
            let got = D::upsert_revocations(&mut *c, &batch).await?;
            let got: HashMap<RowId, (Option<i64>, Option<i64>)> = got
                .into_iter()
                .map(|(id, cutoff, exp)| (id, (cutoff, exp)))
                .collect();
            // A row the upsert did not return was already in force: no event.
            for &i in &round {
                applied[i] = got.get(&sql::row_id(&rows[i])).copied();
            }
        }
        let mut events = Vec::with_capacity(rows.len() + 1);
        let mut slots = Vec::with_capacity(rows.len() + 1);
        for (r, got) in rows.into_iter().zip(applied) {
            let Some((cutoff, expires_at)) = got else {
                slots.push(None);
                continue;
            };
            slots.push(Some(events.len()));
            events.push(sql::revoke_event(r, 0, at_ms, cutoff, expires_at));
        }
        if let Some((fid, jti)) = extra {
            slots.push(Some(events.len()));
            events.push(Event {
                id: 0,
                at_ms,
                kind: EventKind::ReuseDetected,
                scope: Scope::Family,
                key: fid.to_owned(),
                issuer: None,
                cutoff: None,
                expires_at: None,
                reason: Some(format!(
                    "refresh token {jti} was presented after it was spent"
                )),
                actor: Some("system".to_owned()),
            });
        }
        // Appends and announces (NOTIFY at commit), as an insert per event and
        // `after_events` would. Nothing changed: nothing to append, nobody to wake.
        if !events.is_empty() {
            D::insert_events(&mut *c, &mut events).await?;
        }
        let mut events: Vec<Option<Event>> = events.into_iter().map(Some).collect();
        Ok(slots
            .into_iter()
            .map(|slot| slot.and_then(|i| events[i].take()))
            .collect())
    }

    /// The scope of a revocation row that covers the refresh token `jti` (by its
    /// registry row: jti, family, subject cut-off, global cut-off), read inside the
    /// caller's transaction; `None` when none does or the token is unknown.
    async fn covering_scope(
        c: &mut D::Connection,
        jti: &str,
        issuer: Option<&str>,
    ) -> Result<Option<Scope>> {
        let scope: Option<String> = sqlx::query_scalar::<D, String>(sql::COVERING_SCOPE)
            .bind(jti)
            .bind(issuer_column(issuer))
            .fetch_optional(&mut *c)
            .await?;
        scope.map(|s| s.parse().map_err(corrupt)).transpose()
    }

    /// Deletes at most `limit` rows that `sql` selects by key, in the caller's
    /// transaction; returns how many.
    async fn delete_some(c: &mut D::Connection, sql: &str, a: i64, limit: u32) -> Result<u64> {
        let done = sqlx::query::<D>(sql)
            .bind(a)
            .bind(i64::from(limit))
            .execute(&mut *c)
            .await?;
        Ok(D::rows_affected(&done))
    }
}

#[async_trait::async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    for<'q> <D as HasArguments<'q>>::Arguments: IntoArguments<'q, D>,
    for<'q> i64: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> &'q str: Encode<'q, D> + Decode<'q, D> + Type<D> + ColumnIndex<D::Row>,
    for<'q> String: Encode<'q, D> + Decode<'q, D> + Type<D>,
    for<'q> bool: Decode<'q, D> + Type<D>,
    for<'q> Option<&'q str>: Encode<'q, D>,
    for<'q> Option<i64>: Encode<'q, D>,
    for<'q> Vec<u8>: Decode<'q, D> + Type<D>,
    usize: ColumnIndex<D::Row>,
{
    fn backend(&self) -> Backend {
        D::BACKEND
    }

    fn clock(&self) -> SharedClock {
        self.clock.clone()
    }

    async fn settings(&self) -> Result<Option<Bounds>> {
        let row: Option<(i64, i64, i64, i64)> =
            sqlx::query_as::<D, (i64, i64, i64, i64)>(sql::SELECT_SETTINGS)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(
            |(max_token_ttl_secs, leeway_secs, clock_skew_secs, retention_secs)| Bounds {
                max_token_ttl_secs,
                leeway_secs,
                clock_skew_secs,
                retention_secs,
            },
        ))
    }

    #[tracing::instrument(level = "debug", name = "store.publish_settings", skip_all, fields(backend = D::BACKEND.as_str()))]
    async fn publish_settings(&self, mine: &Bounds) -> Result<Bounds> {
        mine.validate()?;
        let mine = *mine;
        let now_ms = self.clock.now_ms();
        self.write(move |c| {
            Box::pin(async move {
                // It may extend every revocation row: the event lock first.
                D::lock_events(&mut *c).await?;
                let inserted = sqlx::query::<D>(sql::INSERT_SETTINGS)
                    .bind(mine.max_token_ttl_secs)
                    .bind(mine.leeway_secs)
                    .bind(mine.clock_skew_secs)
                    .bind(mine.retention_secs)
                    .bind(now_ms)
                    .execute(&mut *c)
                    .await?;
                if D::rows_affected(&inserted) == 1 {
                    // Rows of earlier versions ended at `exp` (or cut-off + lifetime):
                    // give them the grace they lacked, and global cut-offs an end.
                    let grace = mine.grace_secs();
                    sqlx::query::<D>(sql::EXTEND_REVOCATIONS)
                        .bind(grace)
                        .bind(grace)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query::<D>(sql::END_GLOBAL_CUTOFFS)
                        .bind(mine.issued_until(0))
                        .execute(&mut *c)
                        .await?;
                    return Ok(mine);
                }
                let lock = if D::BACKEND == Backend::Postgres {
                    " FOR UPDATE"
                } else {
                    ""
                };
                let (ttl, leeway, skew, retention) = sqlx::query_as::<D, (i64, i64, i64, i64)>(
                    &format!("{}{lock}", sql::SELECT_SETTINGS),
                )
                .fetch_one(&mut *c)
                .await?;
                let stored = Bounds {
                    max_token_ttl_secs: ttl,
                    leeway_secs: leeway,
                    clock_skew_secs: skew,
                    retention_secs: retention,
                };
                let merged = stored.merge(&mine);
                if merged == stored {
                    return Ok(stored);
                }
                let grace_grew = merged.grace_secs() - stored.grace_secs();
                let ttl_grew = merged.max_token_ttl_secs - stored.max_token_ttl_secs;
                sqlx::query::<D>(sql::EXTEND_REVOCATIONS)
                    .bind(grace_grew)
                    .bind(grace_grew + ttl_grew)
                    .execute(&mut *c)
                    .await?;
                sqlx::query::<D>(sql::UPDATE_SETTINGS)
                    .bind(merged.max_token_ttl_secs)
                    .bind(merged.leeway_secs)
                    .bind(merged.clock_skew_secs)
                    .bind(merged.retention_secs)
                    .bind(now_ms)
                    .execute(&mut *c)
                    .await?;
                tracing::info!(
                    ?stored,
                    ?merged,
                    "lifetime bounds raised; standing revocations extended"
                );
                Ok(merged)
            })
        })
        .await
    }

    async fn claim_prune(&self, now_ms: i64, interval_ms: i64) -> Result<bool> {
        // A tenth of the interval of slack, so an instance whose timer fires a little
        // early still gets its turn.
        let stale_before = now_ms.saturating_sub(interval_ms - interval_ms / 10);
        let done = sqlx::query::<D>(sql::CLAIM_PRUNE)
            .bind(now_ms)
            .bind(stale_before)
            .execute(&self.pool)
            .await?;
        Ok(D::rows_affected(&done) == 1)
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let (sql, args) = sql::events_query(query);
        let rows = sqlx::query_as_with::<D, EventRow, _>(&sql, Self::arguments(args))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Event::try_from).collect()
    }

    async fn migrate(&self) -> Result<()> {
        // Up to date: touch nothing, so a role without CREATE on the schema can
        // launch on a database its owner migrated (sqlx's `run` would first issue
        // `CREATE TABLE IF NOT EXISTS _sqlx_migrations`, which needs CREATE).
        let applied: Result<Vec<(i64, Vec<u8>, bool)>, sqlx::Error> =
            sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations")
                .fetch_all(&self.pool)
                .await;
        if let Ok(applied) = applied {
            let current = D::migrator().iter().all(|m| {
                applied.iter().any(|(version, checksum, success)| {
                    *version == m.version && *success && checksum[..] == m.checksum[..]
                })
            });
            if current {
                return Ok(());
            }
        }
        D::migrator().run(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "store.register", skip_all, fields(backend = D::BACKEND.as_str(), tokens = tokens.len()))]
    async fn register(&self, tokens: &[TokenRecord]) -> Result<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        let tokens = tokens.to_vec();
        self.write(move |c| Box::pin(async move { Self::insert_tokens(c, &tokens).await }))
            .await
    }

    async fn observe(&self, seen: &[(TokenRecord, i64)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let seen = seen.to_vec();
        self.write(move |c| {
            Box::pin(async move {
                for (t, at) in &seen {
                    Self::token_query(sql::OBSERVE_TOKEN, t)
                        .bind(*at)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn token(&self, jti: &str, now: i64) -> Result<Option<TokenInfo>> {
        let sql = format!("{} WHERE t.jti = $2", sql::token_select());
        let row = sqlx::query_as::<D, TokenRow>(&sql)
            .bind(now)
            .bind(jti)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenInfo::try_from).transpose()
    }

    async fn list(&self, query: &ListQuery, now: i64) -> Result<Vec<TokenInfo>> {
        let mut sparse = false;
        if D::BACKEND == Backend::Sqlite {
            if let Some((probe, args)) = sql::density_probe(query) {
                let matches: i64 =
                    sqlx::query_scalar_with::<D, i64, _>(&probe, Self::arguments(args))
                        .fetch_one(&self.pool)
                        .await?;
                sparse = matches < sql::SPARSE_LIMIT;
            }
        }
        let (sql, args) = sql::list_query(D::BACKEND, query, now, sparse);
        let rows = sqlx::query_as_with::<D, TokenRow, _>(&sql, Self::arguments(args))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TokenInfo::try_from).collect()
    }

    async fn stats(&self, now: i64) -> Result<Stats> {
        use sqlx::Row;
        let sql = format!(
            "SELECT COUNT(*) AS n, \
             CAST(COALESCE(SUM(CASE WHEN {rev} THEN 1 ELSE 0 END), 0) AS BIGINT) AS revoked, \
             CAST(COALESCE(SUM(CASE WHEN NOT ({rev}) AND t.exp < $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS expired \
             {from}",
            rev = sql::REVOKED_COND,
            from = sql::TOKEN_FROM,
        );
        let row = sqlx::query::<D>(&sql)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        let tokens: i64 = row.try_get("n")?;
        let revoked: i64 = row.try_get("revoked")?;
        let expired: i64 = row.try_get("expired")?;
        let row = sqlx::query::<D>(
            "SELECT (SELECT COUNT(*) FROM revoke_revocations) AS r, \
             (SELECT COUNT(*) FROM revoke_events) AS e, \
             (SELECT COALESCE(MAX(id), 0) FROM revoke_events) AS m",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Stats {
            tokens,
            active: tokens - revoked - expired,
            revoked,
            expired,
            revocations: row.try_get("r")?,
            events: row.try_get("e")?,
            last_event_id: row.try_get("m")?,
        })
    }

    #[tracing::instrument(level = "debug", name = "store.revoke", skip_all, fields(backend = D::BACKEND.as_str(), revocations = revocations.len()))]
    async fn revoke(&self, revocations: &[Revocation]) -> Result<Vec<Option<Event>>> {
        if revocations.is_empty() {
            return Ok(Vec::new());
        }
        D::revoke_rows(self, revocations.to_vec(), None).await
    }

    #[tracing::instrument(level = "debug", name = "store.revoke_batch", skip_all, fields(backend = D::BACKEND.as_str(), revocations = revocations.len()))]
    async fn revoke_batch(
        &self,
        revocations: Vec<Revocation>,
        joiners: Joiners,
    ) -> Result<Vec<Option<Event>>> {
        D::revoke_rows(self, revocations, Some(joiners)).await
    }

    #[tracing::instrument(level = "debug", name = "store.restore", skip_all, fields(backend = D::BACKEND.as_str(), scope = scope.as_str()))]
    async fn restore(
        &self,
        scope: Scope,
        issuer: Option<&str>,
        key: &str,
        reason: Option<&str>,
        actor: Option<&str>,
    ) -> Result<Option<Event>> {
        let key = if scope == Scope::Global {
            String::new()
        } else {
            key.to_owned()
        };
        let issuer = issuer.filter(|i| !i.is_empty()).map(str::to_owned);
        let reason = reason.map(str::to_owned);
        let actor = actor.map(str::to_owned);
        let at_ms = self.clock.now_ms();
        self.write(move |c| {
            Box::pin(async move {
                D::lock_events(&mut *c).await?;
                let done = sqlx::query::<D>(sql::DELETE_REVOCATION)
                    .bind(scope.as_str())
                    .bind(key.as_str())
                    .bind(issuer_column(issuer.as_deref()))
                    .execute(&mut *c)
                    .await?;
                if D::rows_affected(&done) == 0 {
                    return Ok(None);
                }
                let id: i64 = sqlx::query_scalar::<D, i64>(sql::INSERT_EVENT)
                    .bind(at_ms)
                    .bind(EventKind::Restore.as_str())
                    .bind(scope.as_str())
                    .bind(key.as_str())
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(reason.as_deref())
                    .bind(actor.as_deref())
                    .bind(issuer_column(issuer.as_deref()))
                    .fetch_one(&mut *c)
                    .await?;
                D::announce(&mut *c, id).await?;
                Ok(Some(Event {
                    id,
                    at_ms,
                    kind: EventKind::Restore,
                    scope,
                    key,
                    issuer,
                    cutoff: None,
                    expires_at: None,
                    reason,
                    actor,
                }))
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "store.rotate", skip_all, fields(backend = D::BACKEND.as_str(), new_tokens = new_tokens.len()))]
    async fn rotate(
        &self,
        old_jti: &str,
        issuer: Option<&str>,
        now: i64,
        new_tokens: &[TokenRecord],
        on_reuse: &Revocation,
    ) -> Result<Rotation> {
        let old_jti = old_jti.to_owned();
        let issuer = issuer.map(str::to_owned);
        let new_tokens = new_tokens.to_vec();
        let on_reuse = on_reuse.clone();
        let at_ms = self.clock.now_ms();
        self.write(move |c| {
            Box::pin(async move {
                // Ordered against revocation commits: SQLite holds the write lock
                // already; PostgreSQL waits here for any revocation appending its
                // events, so it sees every revocation committed before it.
                D::lock_events(&mut *c).await?;
                if let Some(scope) =
                    Self::covering_scope(&mut *c, &old_jti, issuer.as_deref()).await?
                {
                    return Ok(Rotation::Revoked(scope));
                }
                let replaced_by = new_tokens
                    .iter()
                    .find(|t| t.kind == TokenKind::Refresh)
                    .map(|t| t.jti.as_str());
                let spent = sqlx::query::<D>(sql::SPEND_REFRESH)
                    .bind(now)
                    .bind(replaced_by)
                    .bind(old_jti.as_str())
                    .execute(&mut *c)
                    .await?;
                if D::rows_affected(&spent) == 1 {
                    Self::insert_tokens(c, &new_tokens).await?;
                    return Ok(Rotation::Rotated);
                }
                let fid: Option<Option<String>> =
                    sqlx::query_scalar::<D, Option<String>>(sql::REFRESH_FAMILY)
                        .bind(old_jti.as_str())
                        .fetch_optional(&mut *c)
                        .await?;
                let Some(fid) = fid else {
                    return Ok(Rotation::Unknown);
                };
                // Spent before: revoke the family (or, without one, the token itself).
                let revocation = match &fid {
                    Some(f) => Revocation {
                        scope: Scope::Family,
                        key: f.clone(),
                        issuer: None,
                        ..on_reuse.clone()
                    },
                    None => Revocation {
                        scope: Scope::Jti,
                        key: old_jti.clone(),
                        issuer: None,
                        ..on_reuse.clone()
                    },
                };
                let family_key = fid.clone().unwrap_or_default();
                let events = Self::revoke_in(
                    c,
                    std::slice::from_ref(&revocation),
                    Some((family_key.as_str(), old_jti.as_str())),
                    None,
                    at_ms,
                )
                .await?
                .into_iter()
                .flatten()
                .collect();
                Ok(Rotation::Reused { fid, events })
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", name = "store.snapshot", skip_all, fields(backend = D::BACKEND.as_str(), cursor = tracing::field::Empty, revocations = tracing::field::Empty))]
    async fn snapshot_into(&self, now: i64, sink: &mut dyn SnapshotSink) -> Result<i64> {
        use sqlx::Row;
        // Cursor first: with events committed in id order, every event up to it is
        // reflected in the rows read next; later ones are replayed (idempotently).
        let cursor: i64 =
            sqlx::query_scalar::<D, i64>("SELECT COALESCE(MAX(id), 0) FROM revoke_events")
                .fetch_one(&self.pool)
                .await?;
        // Sizes for the sink, so a large set is built without growing; expired rows
        // not yet pruned are counted too (cheaper than filtering, and only a hint).
        let counts: Vec<(String, i64)> = sqlx::query_as::<D, (String, i64)>(
            "SELECT scope, COUNT(*) FROM revoke_revocations GROUP BY scope",
        )
        .fetch_all(&self.pool)
        .await?;
        for (scope, n) in counts {
            if let Ok(scope) = scope.parse::<Scope>() {
                sink.expect(scope, usize::try_from(n).unwrap_or(0));
            }
        }
        // Only what the set needs: reason and actor stay out. One buffer for every
        // row: the key is borrowed from the row and copied into it.
        let mut rows = sqlx::query::<D>(
            "SELECT scope, key, cutoff, expires_at, revoked_at, iss \
             FROM revoke_revocations WHERE expires_at IS NULL OR expires_at >= $1",
        )
        .bind(now)
        .fetch(&self.pool);
        let mut rev = Revocation {
            scope: Scope::Jti,
            key: String::new(),
            issuer: None,
            cutoff: None,
            expires_at: None,
            reason: None,
            actor: None,
            revoked_at: 0,
        };
        let mut n = 0_usize;
        while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
            let scope: &str = row.try_get("scope")?;
            rev.scope = scope.parse().map_err(corrupt)?;
            rev.key.clear();
            rev.key.push_str(row.try_get::<&str, _>("key")?);
            rev.cutoff = row.try_get("cutoff")?;
            rev.expires_at = row.try_get("expires_at")?;
            rev.revoked_at = row.try_get("revoked_at")?;
            let iss: &str = row.try_get("iss")?;
            // No allocation for the unscoped rows (every single-issuer app's).
            match &mut rev.issuer {
                _ if iss.is_empty() => rev.issuer = None,
                Some(held) => {
                    held.clear();
                    held.push_str(iss);
                }
                None => rev.issuer = Some(iss.to_owned()),
            }
            sink.push(&rev);
            n += 1;
        }
        let span = tracing::Span::current();
        span.record("cursor", cursor);
        span.record("revocations", n);
        Ok(cursor)
    }

    #[tracing::instrument(level = "debug", name = "store.events_after", skip_all, fields(backend = D::BACKEND.as_str(), cursor, limit, events = tracing::field::Empty))]
    async fn events_after(&self, cursor: i64, limit: u32) -> Result<Vec<Event>> {
        let sql = format!(
            "SELECT {} FROM revoke_events WHERE id > $1 ORDER BY id LIMIT $2",
            sql::EVENT_COLUMNS
        );
        let rows = sqlx::query_as::<D, EventRow>(&sql)
            .bind(cursor)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        tracing::Span::current().record("events", rows.len());
        rows.into_iter().map(Event::try_from).collect()
    }

    async fn first_event_id(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar::<D, i64>("SELECT COALESCE(MIN(id), 0) FROM revoke_events")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn listen(&self) -> Result<Option<Box<dyn ChangeFeed>>> {
        D::listen(self).await
    }

    #[tracing::instrument(level = "debug", name = "store.prune", skip_all, fields(backend = D::BACKEND.as_str(), now, retention))]
    async fn prune(&self, now: i64, retention: i64) -> Result<PruneReport> {
        let horizon = now.saturating_sub(retention);
        let mut report = PruneReport::default();
        // Small transactions, one table at a time and revocations first (their events
        // become prunable once they are gone), so no prune holds the write lock long.
        for (sql, bound) in [
            (sql::PRUNE_REVOCATIONS, now),
            (sql::PRUNE_TOKENS, horizon),
            (sql::PRUNE_EVENTS, horizon.saturating_mul(1000)),
        ] {
            loop {
                let n = self
                    .write(move |c| {
                        Box::pin(async move {
                            if sql == sql::PRUNE_REVOCATIONS {
                                D::lock_events(&mut *c).await?;
                            }
                            Self::delete_some(c, sql, bound, PRUNE_BATCH).await
                        })
                    })
                    .await?;
                if sql == sql::PRUNE_REVOCATIONS {
                    report.revocations += n;
                } else if sql == sql::PRUNE_TOKENS {
                    report.tokens += n;
                } else {
                    report.events += n;
                }
                if n < u64::from(PRUNE_BATCH) {
                    break;
                }
            }
        }
        Ok(report)
    }
}
