//! SQL shared by both backends, and the macro that implements [`Store`](super::Store) over it.
//!
//! Placeholders are `$1, $2, ...` in order of first use: PostgreSQL reads them as positions and
//! SQLite as named parameters numbered by first appearance, so one text serves both.

/// Registers a token unless its jti exists.
pub(super) const INSERT_TOKEN: &str =
    "INSERT INTO revoke_tokens (jti, sub, fid, kind, iat, exp, label) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (jti) DO NOTHING";

/// Registers a token if unknown and moves its `last_seen` forward.
pub(super) const OBSERVE_TOKEN: &str =
    "INSERT INTO revoke_tokens (jti, sub, fid, kind, iat, exp, label, last_seen) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (jti) DO UPDATE SET last_seen = \
     CASE WHEN revoke_tokens.last_seen IS NULL OR revoke_tokens.last_seen < excluded.last_seen \
     THEN excluded.last_seen ELSE revoke_tokens.last_seen END";

/// What a repeated revocation does to its row, shared by every form of the upsert. It never
/// moves a cut-off or an expiry backwards (that would silently un-revoke tokens; lifting one
/// is `restore`'s job), never overwrites the first revocation's reason, actor and time (the
/// event log keeps each later one), and changes the row only when the new revocation is
/// stronger: a later cut-off, or a later end of its time in force. A family already revoked
/// is already covered (its tokens can no longer be rotated) unless its time in force has
/// ended. `RETURNING` lists only rows inserted or changed, so a revocation already in force
/// writes no event.
macro_rules! upsert_revocation_tail {
    () => {
        " ON CONFLICT (scope, iss, key) DO UPDATE SET \
     cutoff = CASE WHEN revoke_revocations.cutoff IS NULL OR excluded.cutoff > revoke_revocations.cutoff \
       THEN excluded.cutoff ELSE revoke_revocations.cutoff END, \
     expires_at = CASE WHEN revoke_revocations.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL \
       WHEN excluded.expires_at > revoke_revocations.expires_at THEN excluded.expires_at \
       ELSE revoke_revocations.expires_at END \
     WHERE excluded.cutoff > revoke_revocations.cutoff \
       OR (revoke_revocations.cutoff IS NULL AND excluded.cutoff IS NOT NULL) \
       OR (revoke_revocations.expires_at IS NOT NULL AND (excluded.expires_at IS NULL \
         OR (excluded.expires_at > revoke_revocations.expires_at \
           AND (revoke_revocations.scope <> 'family' OR revoke_revocations.expires_at < excluded.revoked_at)))) \
     RETURNING scope, iss, key, cutoff, expires_at"
    };
}

/// Columns of an upserted revocation, in bind order (the issuer scope last: `''` for none).
const REVOCATION_INSERT: &str =
    "INSERT INTO revoke_revocations (scope, key, cutoff, expires_at, reason, actor, revoked_at, iss)";

/// PostgreSQL: upserts revocations from eight parallel arrays (one fixed statement whatever
/// the batch size, so it is prepared once per connection). The (scope, issuer, key) triples
/// must be distinct: one statement cannot update a row twice.
pub(super) const PG_UPSERT_REVOCATIONS: &str = concat!(
    "INSERT INTO revoke_revocations (scope, key, cutoff, expires_at, reason, actor, revoked_at, iss) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[], $7::int8[], $8::text[])",
    upsert_revocation_tail!()
);

/// PostgreSQL: takes the event lock (`$10`), appends events from parallel arrays with ids in
/// array order (`$1` is `at_ms`, `$11` the issuer scopes), and queues the NOTIFY on channel `$9` with the last id
/// (delivered at commit), all in one statement: the lock is then held for one round trip and
/// the commit instead of three round trips and the commit.
///
/// The lock still comes first: `lk` is joined to every row, so no row reaches the insert (and
/// draws an id from the sequence) before `pg_advisory_xact_lock` has returned; the ordinality
/// keeps the ids in array order.
pub(super) const PG_INSERT_EVENTS: &str = "WITH lk AS (SELECT pg_advisory_xact_lock($10)), \
     ins AS (INSERT INTO revoke_events \
     (at_ms, kind, scope, key, cutoff, expires_at, reason, actor, iss) \
     SELECT $1, u.kind, u.scope, u.key, u.cutoff, u.expires_at, u.reason, u.actor, u.iss \
     FROM lk, UNNEST($2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[], \
     $11::text[]) WITH ORDINALITY AS u(kind, scope, key, cutoff, expires_at, reason, actor, iss, n) \
     ORDER BY u.n RETURNING id), \
     note AS (SELECT pg_notify($9, MAX(id)::text) FROM ins) \
     SELECT ins.id FROM ins, note";

/// PostgreSQL: a whole revocation batch with distinct (scope, issuer, key) triples as one
/// statement, committed on its own (no explicit transaction): takes the event lock (`$10`),
/// upserts the rows (`$11` holds the issuer scopes), appends one event per row with the row as
/// it now stands, in input order (`$8` is `at_ms`), and queues the NOTIFY (`$9` channel).
/// Returns `(id, scope, iss, key, cutoff, expires_at)` by id, for the rows the upsert changed only (a revocation already in force
/// writes nothing).
///
/// The event lock comes before any row lock, as in every PostgreSQL transaction that writes
/// `revoke_revocations` (see [`super::postgres::EVENT_LOCK`]): a rotation that detects reuse
/// holds the lock and then upserts its family's row, so a batch that locked that row first
/// and waited for the lock would deadlock with it. The order inside the statement is forced
/// by data dependencies: every input row is joined to `lk` before it reaches the upsert, and
/// every event row is joined to `lk` (and sorted by input position) before it draws an id.
/// The statement commits when it ends, with no round trip to the client in between.
pub(super) const PG_REVOKE_BATCH: &str = concat!(
    "WITH lk AS (SELECT pg_advisory_xact_lock($10)), \
     input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], \
     $5::text[], $6::text[], $7::int8[], $11::text[]) \
     WITH ORDINALITY AS t(scope, key, cutoff, expires_at, reason, actor, revoked_at, iss, n)), \
     up AS (INSERT INTO revoke_revocations (scope, key, cutoff, expires_at, reason, actor, revoked_at, iss) \
     SELECT i.scope, i.key, i.cutoff, i.expires_at, i.reason, i.actor, i.revoked_at, i.iss \
     FROM lk, input i ORDER BY i.scope, i.iss, i.key",
    upsert_revocation_tail!(),
    "), ins AS (INSERT INTO revoke_events (at_ms, kind, scope, key, cutoff, expires_at, reason, actor, iss) \
     SELECT $8, 'revoke', i.scope, i.key, up.cutoff, up.expires_at, i.reason, i.actor, i.iss \
     FROM lk, input i JOIN up ON up.scope = i.scope AND up.iss = i.iss AND up.key = i.key \
     ORDER BY i.n RETURNING id, scope, iss, key, cutoff, expires_at), \
     note AS (SELECT pg_notify($9, MAX(id)::text) FROM ins HAVING COUNT(*) > 0) \
     SELECT ins.id, ins.scope, ins.iss, ins.key, ins.cutoff, ins.expires_at FROM ins, note ORDER BY ins.id"
);

/// SQLite: upserts `rows` revocations with one multi-row `VALUES` (8 parameters a row). The
/// (scope, issuer, key) triples must be distinct, as on PostgreSQL, so both backends get the
/// same rounds.
pub(super) fn sqlite_upsert_revocations(rows: usize) -> String {
    format!(
        "{REVOCATION_INSERT} VALUES {}{}",
        values(rows, 8),
        upsert_revocation_tail!()
    )
}

/// SQLite: appends `rows` events with one multi-row `VALUES` (9 parameters a row, in the
/// column order of [`INSERT_EVENT`]); ids are assigned in row order.
pub(super) fn sqlite_insert_events(rows: usize) -> String {
    format!(
        "INSERT INTO revoke_events (at_ms, kind, scope, key, cutoff, expires_at, reason, actor, iss) \
         VALUES {} RETURNING id",
        values(rows, 9)
    )
}

/// `($1, $2), ($3, $4)` for `rows` rows of `columns` placeholders.
fn values(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * columns + c + 1));
        }
        out.push(')');
    }
    out
}

/// Most rows of one SQLite multi-row statement.
const SQLITE_MAX_ROWS: usize = 64;

/// Sizes of the SQLite statements that write `n` rows: powers of two up to
/// [`SQLITE_MAX_ROWS`], largest first, so a handful of distinct statements serve every batch
/// size (each is prepared once and cached) and none comes near SQLite's parameter limit.
pub(super) fn sqlite_chunks(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let size = if n >= SQLITE_MAX_ROWS {
            SQLITE_MAX_ROWS
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        n -= size;
        Some(size)
    })
}

/// Checks revocations before anything is written (every scope but global needs a key) and
/// normalizes them (a global revocation's key is empty).
pub(super) fn checked_rows(
    revocations: impl Iterator<Item = crate::Revocation>,
) -> crate::Result<Vec<crate::Revocation>> {
    revocations
        .map(|mut r| {
            if r.scope == crate::Scope::Global {
                r.key.clear();
            } else if r.key.is_empty() {
                return Err(crate::Error::Invalid(format!(
                    "a {} revocation needs a key",
                    r.scope
                )));
            }
            Ok(r)
        })
        .collect()
}

/// Gives `events` the ids one multi-row insert returned: sorted, since `RETURNING` may list
/// rows in any order while ids are allocated in row order (under the write lock).
pub(super) fn assign_ids(events: &mut [crate::Event], ids: &mut [i64]) -> crate::Result<()> {
    if ids.len() != events.len() {
        return Err(crate::Error::Corrupt(format!(
            "{} events inserted, {} ids returned",
            events.len(),
            ids.len()
        )));
    }
    ids.sort_unstable();
    for (e, id) in events.iter_mut().zip(ids.iter()) {
        e.id = *id;
    }
    Ok(())
}

/// Splits revocations into upsert rounds: the k-th revocation of a (scope, issuer, key) goes into round
/// k, so a round has distinct keys (one multi-row upsert) and running the rounds in order
/// leaves every row, and returns every intermediate value, exactly as upserting the
/// revocations one by one would. Within a round, indices are sorted by (scope, issuer, key) so that
/// concurrent transactions lock rows in one order and cannot deadlock on each other.
pub(super) fn upsert_rounds(rows: &[crate::Revocation]) -> Vec<Vec<usize>> {
    // Borrowed from the rows: no copy of a key or an issuer per revocation.
    fn id(r: &crate::Revocation) -> (crate::Scope, &str, &str) {
        (
            r.scope,
            crate::types::issuer_column(r.issuer.as_deref()),
            r.key.as_str(),
        )
    }
    let mut seen: std::collections::HashMap<(crate::Scope, &str, &str), usize> =
        std::collections::HashMap::with_capacity(rows.len());
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let k = seen.entry(id(r)).or_insert(0);
        if rounds.len() <= *k {
            rounds.push(Vec::new());
        }
        rounds[*k].push(i);
        *k += 1;
    }
    for round in &mut rounds {
        round.sort_by_key(|&i| id(&rows[i]));
    }
    rounds
}

/// A revocation row's identity as an upsert returns it: scope, issuer scope (`""` for none),
/// key.
pub(super) type RowId = (String, String, String);

/// The [`RowId`] of `r`.
pub(super) fn row_id(r: &crate::Revocation) -> RowId {
    (
        r.scope.as_str().to_owned(),
        crate::types::issuer_column(r.issuer.as_deref()).to_owned(),
        r.key.clone(),
    )
}

/// The scope of a revocation that covers the registered token `$1` of issuer `$2` (`''` when
/// it has none): its jti, its family, a subject or global cut-off at or after its `iat`,
/// unscoped or scoped to that issuer. Eight primary-key lookups.
pub(super) const COVERING_SCOPE: &str = "SELECT r.scope FROM revoke_tokens t \
     JOIN revoke_revocations r ON r.scope = 'jti' AND r.iss IN ('', $2) AND r.key = t.jti \
     WHERE t.jti = $1 \
     UNION ALL SELECT r.scope FROM revoke_tokens t \
     JOIN revoke_revocations r ON r.scope = 'family' AND r.iss IN ('', $2) AND r.key = t.fid \
     WHERE t.jti = $1 \
     UNION ALL SELECT r.scope FROM revoke_tokens t \
     JOIN revoke_revocations r ON r.scope = 'subject' AND r.iss IN ('', $2) AND r.key = t.sub \
     AND r.cutoff >= t.iat WHERE t.jti = $1 \
     UNION ALL SELECT r.scope FROM revoke_tokens t \
     JOIN revoke_revocations r ON r.scope = 'global' AND r.iss IN ('', $2) AND r.key = '' \
     AND r.cutoff >= t.iat WHERE t.jti = $1 LIMIT 1";

/// Prune: up to `$2` revocations whose time in force ended before `$1`.
pub(super) const PRUNE_REVOCATIONS: &str = "DELETE FROM revoke_revocations WHERE (scope, iss, key) IN \
     (SELECT scope, iss, key FROM revoke_revocations WHERE expires_at IS NOT NULL AND expires_at < $1 LIMIT $2)";

/// Prune: up to `$2` registry rows that expired before `$1`.
pub(super) const PRUNE_TOKENS: &str = "DELETE FROM revoke_tokens WHERE jti IN \
     (SELECT jti FROM revoke_tokens WHERE exp < $1 LIMIT $2)";

/// Prune: up to `$2` events written before `$1` (ms) whose revocation is no longer in the
/// table (history stays while a revocation is in force), keeping the newest event so ids
/// (and every reader's cursor) stay monotonic.
pub(super) const PRUNE_EVENTS: &str = "DELETE FROM revoke_events WHERE id IN \
     (SELECT e.id FROM revoke_events e WHERE e.at_ms < $1 \
      AND e.id < (SELECT MAX(id) FROM revoke_events) \
      AND NOT EXISTS (SELECT 1 FROM revoke_revocations r WHERE r.scope = e.scope AND r.iss = e.iss AND r.key = e.key) \
      LIMIT $2)";

/// The recorded bounds.
pub(super) const SELECT_SETTINGS: &str =
    "SELECT max_token_ttl_secs, leeway_secs, clock_skew_secs, retention_secs FROM revoke_settings WHERE id = 1";

/// Records the first bounds (no-op when a row exists).
pub(super) const INSERT_SETTINGS: &str = "INSERT INTO revoke_settings \
     (id, max_token_ttl_secs, leeway_secs, clock_skew_secs, retention_secs, updated_ms) \
     VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";

/// Replaces the bounds.
pub(super) const UPDATE_SETTINGS: &str = "UPDATE revoke_settings SET max_token_ttl_secs = $1, \
     leeway_secs = $2, clock_skew_secs = $3, retention_secs = $4, updated_ms = $5 WHERE id = 1";

/// Extends standing revocations when the bounds grow: `jti` ones by `$1` (the grace grew),
/// the others by `$2` (lifetime and grace).
pub(super) const EXTEND_REVOCATIONS: &str =
    "UPDATE revoke_revocations SET expires_at = expires_at + \
     CASE WHEN scope = 'jti' THEN $1 ELSE $2 END \
     WHERE expires_at IS NOT NULL AND (CASE WHEN scope = 'jti' THEN $1 ELSE $2 END) > 0";

/// Gives global cut-offs of earlier versions (which never ended) an end: `$1` past the cut-off.
pub(super) const END_GLOBAL_CUTOFFS: &str =
    "UPDATE revoke_revocations SET expires_at = cutoff + $1 \
     WHERE scope = 'global' AND expires_at IS NULL AND cutoff IS NOT NULL";

/// Claims the scheduled prune: succeeds when the last claim is older than `$2` (ms).
pub(super) const CLAIM_PRUNE: &str =
    "UPDATE revoke_settings SET prune_lease_ms = $1 WHERE id = 1 AND prune_lease_ms <= $2";

/// Builds the audit-trail query for `q`: SQL and arguments.
pub(super) fn events_query(q: &super::EventQuery) -> (String, Vec<Arg>) {
    let mut args = Vec::new();
    let mut conds = Vec::new();
    let push = |args: &mut Vec<Arg>, a: Arg| -> String {
        args.push(a);
        format!("${}", args.len())
    };
    if let Some(scope) = q.scope {
        let p = push(&mut args, Arg::Text(scope.as_str().to_owned()));
        conds.push(format!("scope = {p}"));
    }
    if let Some(key) = &q.key {
        let p = push(&mut args, Arg::Text(key.clone()));
        conds.push(format!("key = {p}"));
    }
    if let Some(issuer) = &q.issuer {
        let p = push(&mut args, Arg::Text(issuer.clone()));
        conds.push(format!("iss = {p}"));
    }
    if let Some(actor) = &q.actor {
        let p = push(&mut args, Arg::Text(actor.clone()));
        conds.push(format!("actor = {p}"));
    }
    if let Some(since) = q.since_ms {
        let p = push(&mut args, Arg::Int(since));
        conds.push(format!("at_ms >= {p}"));
    }
    if let Some(before) = q.before_id {
        let p = push(&mut args, Arg::Int(before));
        conds.push(format!("id < {p}"));
    }
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM revoke_events");
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    let limit = if q.limit == 0 { 100 } else { q.limit };
    let p = push(&mut args, Arg::Int(i64::from(limit)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {p}"));
    (sql, args)
}

/// Lifts a revocation: scope, key, issuer scope (`''` for none).
pub(super) const DELETE_REVOCATION: &str =
    "DELETE FROM revoke_revocations WHERE scope = $1 AND key = $2 AND iss = $3";

/// Appends an event.
pub(super) const INSERT_EVENT: &str = "INSERT INTO revoke_events \
     (at_ms, kind, scope, key, cutoff, expires_at, reason, actor, iss) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     RETURNING id";

/// Spends an unspent refresh token.
pub(super) const SPEND_REFRESH: &str = "UPDATE revoke_tokens SET spent_at = $1, replaced_by = $2 \
     WHERE jti = $3 AND kind = 'refresh' AND spent_at IS NULL";

/// Looks up a refresh token's family and whether it exists.
pub(super) const REFRESH_FAMILY: &str =
    "SELECT fid FROM revoke_tokens WHERE jti = $1 AND kind = 'refresh'";

/// Columns of an event row.
pub(super) const EVENT_COLUMNS: &str =
    "id, at_ms, kind, scope, key, cutoff, expires_at, reason, actor, iss";

/// Columns that give a registry row its status; `$1` is now.
pub(super) const TOKEN_COLUMNS: &str =
    "SELECT t.jti, t.sub, t.fid, t.kind, t.iat, t.exp, t.label, \
     t.last_seen, t.spent_at, \
     COALESCE(rj.scope, rf.scope, rs.scope, rg.scope) AS r_scope, \
     COALESCE(rj.revoked_at, rf.revoked_at, rs.revoked_at, rg.revoked_at) AS r_at, \
     CASE WHEN rj.scope IS NOT NULL THEN rj.reason WHEN rf.scope IS NOT NULL THEN rf.reason \
       WHEN rs.scope IS NOT NULL THEN rs.reason ELSE rg.reason END AS r_reason, \
     CASE WHEN rj.scope IS NOT NULL THEN rj.actor WHEN rf.scope IS NOT NULL THEN rf.actor \
       WHEN rs.scope IS NOT NULL THEN rs.actor ELSE rg.actor END AS r_actor, \
     t.exp < $1 AS expired_flag ";

/// The joins behind [`TOKEN_COLUMNS`]. The registry does not record a token's issuer, so a
/// row's status reflects the unscoped revocations (every single-issuer app's); revocations
/// scoped to an issuer are enforced by the set and listed by `revokectl revocations`.
pub(super) const TOKEN_FROM: &str = "FROM revoke_tokens t \
     LEFT JOIN revoke_revocations rj ON rj.scope = 'jti' AND rj.iss = '' AND rj.key = t.jti \
     LEFT JOIN revoke_revocations rf ON rf.scope = 'family' AND rf.iss = '' AND rf.key = t.fid \
     LEFT JOIN revoke_revocations rs ON rs.scope = 'subject' AND rs.iss = '' AND rs.key = t.sub \
     AND rs.cutoff >= t.iat \
     LEFT JOIN revoke_revocations rg ON rg.scope = 'global' AND rg.iss = '' AND rg.key = '' \
     AND rg.cutoff >= t.iat";

/// `SELECT` of registry rows with status columns; `$1` is now.
pub(super) fn token_select() -> String {
    format!("{TOKEN_COLUMNS}{TOKEN_FROM}")
}

/// The condition "some revocation covers t" in terms of [`TOKEN_FROM`]'s joins.
pub(super) const REVOKED_COND: &str =
    "COALESCE(rj.scope, rf.scope, rs.scope, rg.scope) IS NOT NULL";

/// A bind value for dynamically built queries.
#[derive(Debug, Clone)]
pub(super) enum Arg {
    /// An integer.
    Int(i64),
    /// A string.
    Text(String),
}

/// How the two SQL dialects differ in the few places they do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// Builds the `list` query: returns SQL and its arguments (`$1` is now).
pub(super) fn list_query(
    dialect: Dialect,
    q: &super::ListQuery,
    now: i64,
    sparse: bool,
) -> (String, Vec<Arg>) {
    use super::TokenStatus;
    let mut sql = token_select();
    let mut args = vec![Arg::Int(now)];
    let mut conds: Vec<String> = Vec::new();
    let mut push = |args: &mut Vec<Arg>, a: Arg| -> String {
        args.push(a);
        format!("${}", args.len())
    };
    match q.status {
        Some(TokenStatus::Revoked) => conds.push(REVOKED_COND.to_owned()),
        Some(TokenStatus::Expired) => conds.push(format!("NOT ({REVOKED_COND}) AND t.exp < $1")),
        Some(TokenStatus::Active) => conds.push(format!("NOT ({REVOKED_COND}) AND t.exp >= $1")),
        None => {}
    }
    if let Some(sub) = &q.subject {
        let p = push(&mut args, Arg::Text(sub.clone()));
        conds.push(format!("t.sub = {p}"));
    }
    if let Some(fid) = &q.family {
        let p = push(&mut args, Arg::Text(fid.clone()));
        conds.push(format!("t.fid = {p}"));
    }
    if let Some(prefix) = q.jti_prefix.as_deref().filter(|p| !p.is_empty()) {
        let c = prefix_cond(dialect, "t.jti", prefix, &mut args, &mut push);
        conds.push(c);
    }
    if let Some(text) = q.text.as_deref().filter(|p| !p.is_empty()) {
        let a = prefix_cond(dialect, "t.sub", text, &mut args, &mut push);
        let b = prefix_cond(dialect, "t.jti", text, &mut args, &mut push);
        let c = prefix_cond(dialect, "t.label", text, &mut args, &mut push);
        conds.push(format!("({a} OR {b} OR {c})"));
    }
    if let Some((iat, jti)) = &q.after {
        let pi = push(&mut args, Arg::Int(*iat));
        let pj = push(&mut args, Arg::Text(jti.clone()));
        conds.push(format!("(t.iat < {pi} OR (t.iat = {pi} AND t.jti > {pj}))"));
    }
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    let limit = if q.limit == 0 { 100 } else { q.limit };
    let pl = push(&mut args, Arg::Int(i64::from(limit)));
    let po = push(
        &mut args,
        Arg::Int(i64::try_from(q.offset).unwrap_or(i64::MAX)),
    );
    // SQLite plans without statistics and would walk the iat index for every query: right
    // when matches are dense (the first page fills after a few rows), a full scan when they
    // are rare. For a sparse prefix, `+t.iat` keeps that index out of ORDER BY, so SQLite
    // looks the prefix up in the jti/sub/label indexes and sorts the few matches.
    let has_prefix = [&q.text, &q.jti_prefix]
        .iter()
        .any(|p| p.as_deref().is_some_and(|p| !p.is_empty()));
    let order = if dialect == Dialect::Sqlite && sparse {
        "+t.iat"
    } else {
        "t.iat"
    };
    if dialect == Dialect::Sqlite && has_prefix && !sparse {
        // Dense: its estimates would still pick the prefix indexes and sort them all.
        sql = sql.replacen(
            "FROM revoke_tokens t ",
            "FROM revoke_tokens t INDEXED BY revoke_tokens_iat ",
            1,
        );
    }
    sql.push_str(&format!(
        " ORDER BY {order} DESC, t.jti ASC LIMIT {pl} OFFSET {po}"
    ));
    (sql, args)
}

/// Above this many prefix matches a search is "dense": scanning newest-first fills a page
/// sooner than sorting every match.
pub(super) const SPARSE_LIMIT: i64 = 10_000;

/// For SQLite: SQL counting (up to [`SPARSE_LIMIT`] per column, from the indexes alone) the
/// rows a query's prefixes match, or `None` when it has no prefix filter.
pub(super) fn density_probe(q: &super::ListQuery) -> Option<(String, Vec<Arg>)> {
    let mut args = Vec::new();
    let mut push = |args: &mut Vec<Arg>, a: Arg| -> String {
        args.push(a);
        format!("${}", args.len())
    };
    let mut parts = Vec::new();
    let mut probe = |column: &str, prefix: &str, args: &mut Vec<Arg>| {
        let cond = prefix_cond(Dialect::Sqlite, column, prefix, args, &mut push);
        parts.push(format!(
            "(SELECT COUNT(*) FROM (SELECT 1 FROM revoke_tokens t WHERE {cond} LIMIT {SPARSE_LIMIT}))"
        ));
    };
    if let Some(p) = q.jti_prefix.as_deref().filter(|p| !p.is_empty()) {
        probe("t.jti", p, &mut args);
    }
    if let Some(p) = q.text.as_deref().filter(|p| !p.is_empty()) {
        for column in ["t.sub", "t.jti", "t.label"] {
            probe(column, p, &mut args);
        }
    }
    (!parts.is_empty()).then(|| (format!("SELECT {}", parts.join(" + ")), args))
}

/// "column starts with prefix", in a form each backend serves from a b-tree index.
fn prefix_cond(
    dialect: Dialect,
    column: &str,
    prefix: &str,
    args: &mut Vec<Arg>,
    push: &mut impl FnMut(&mut Vec<Arg>, Arg) -> String,
) -> String {
    match dialect {
        // A half-open range on the binary collation; LIKE would be case-insensitive and
        // could not use the index.
        Dialect::Sqlite => {
            let lo = push(args, Arg::Text(prefix.to_owned()));
            let hi = push(args, Arg::Text(format!("{prefix}\u{10FFFF}")));
            format!("({column} >= {lo} AND {column} < {hi})")
        }
        // LIKE with text_pattern_ops indexes; escape the pattern characters.
        Dialect::Postgres => {
            let mut pat = String::with_capacity(prefix.len() + 1);
            for ch in prefix.chars() {
                if matches!(ch, '%' | '_' | '\\') {
                    pat.push('\\');
                }
                pat.push(ch);
            }
            pat.push('%');
            let p = push(args, Arg::Text(pat));
            format!("{column} LIKE {p}")
        }
    }
}

/// Implements [`Store`](super::Store) for a backend struct that provides:
/// `self.pool`, `async fn write(&self, f)` (one transaction, started so that it holds the
/// write lock it needs), `async fn before_events(c)` and `async fn after_events(c, last_id)`,
/// `async fn revoke_rows(&self, revocations, joiners)` (commits a revocation batch, normally
/// through `revoke_in`), and the two multi-row writes of `revoke_in`:
/// `async fn upsert_revocations(c, rows)`
/// (distinct (scope, key) pairs; returns `(scope, key, cutoff, expires_at)` of each row as it
/// now stands, in any order) and `async fn insert_events(c, events)` (takes the event lock as
/// `before_events` would, appends the events, sets their ids, ascending in slice order, and
/// announces them as `after_events` would).
macro_rules! impl_store {
    ($store:ident, $db:ty, $conn:ty, $backend:expr, $dialect:expr, $migrator:expr) => {
        impl $store {
            fn decode_event(row: &<$db as sqlx::Database>::Row) -> $crate::Result<$crate::Event> {
                use sqlx::Row;
                let kind: String = row.try_get("kind")?;
                let scope: String = row.try_get("scope")?;
                Ok($crate::Event {
                    id: row.try_get("id")?,
                    at_ms: row.try_get("at_ms")?,
                    kind: kind
                        .parse()
                        .map_err(|e| $crate::Error::Corrupt(format!("{e}")))?,
                    scope: scope
                        .parse()
                        .map_err(|e| $crate::Error::Corrupt(format!("{e}")))?,
                    key: row.try_get("key")?,
                    issuer: $crate::types::issuer_from_column(row.try_get("iss")?),
                    cutoff: row.try_get("cutoff")?,
                    expires_at: row.try_get("expires_at")?,
                    reason: row.try_get("reason")?,
                    actor: row.try_get("actor")?,
                })
            }

            fn decode_token(
                row: &<$db as sqlx::Database>::Row,
            ) -> $crate::Result<$crate::store::TokenInfo> {
                use sqlx::Row;
                let kind: String = row.try_get("kind")?;
                let r_scope: Option<String> = row.try_get("r_scope")?;
                let expired: bool = row.try_get("expired_flag")?;
                let revocation = match r_scope {
                    Some(scope) => Some($crate::store::RevocationInfo {
                        scope: scope
                            .parse()
                            .map_err(|e| $crate::Error::Corrupt(format!("{e}")))?,
                        revoked_at: row.try_get("r_at")?,
                        reason: row.try_get("r_reason")?,
                        actor: row.try_get("r_actor")?,
                    }),
                    None => None,
                };
                let status = if revocation.is_some() {
                    $crate::store::TokenStatus::Revoked
                } else if expired {
                    $crate::store::TokenStatus::Expired
                } else {
                    $crate::store::TokenStatus::Active
                };
                Ok($crate::store::TokenInfo {
                    token: $crate::store::TokenRecord {
                        jti: row.try_get("jti")?,
                        sub: row.try_get("sub")?,
                        fid: row.try_get("fid")?,
                        kind: kind
                            .parse()
                            .map_err(|e| $crate::Error::Corrupt(format!("{e}")))?,
                        iat: row.try_get("iat")?,
                        exp: row.try_get("exp")?,
                        label: row.try_get("label")?,
                    },
                    last_seen: row.try_get("last_seen")?,
                    spent_at: row.try_get("spent_at")?,
                    status,
                    revocation,
                })
            }

            /// A query on `sql` with `args` bound in order (the dynamically built queries).
            fn with_args(
                sql: &str,
                args: Vec<super::sql::Arg>,
            ) -> sqlx::query::Query<'_, $db, <$db as sqlx::database::HasArguments<'_>>::Arguments>
            {
                let mut q = sqlx::query::<$db>(sql);
                for a in args {
                    q = match a {
                        super::sql::Arg::Int(v) => q.bind(v),
                        super::sql::Arg::Text(v) => q.bind(v),
                    };
                }
                q
            }

            /// A query on `sql` with a token's seven columns bound as `$1..$7`.
            fn token_query<'q>(
                sql: &'q str,
                t: &'q $crate::store::TokenRecord,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::database::HasArguments<'q>>::Arguments>
            {
                sqlx::query::<$db>(sql)
                    .bind(t.jti.as_str())
                    .bind(t.sub.as_str())
                    .bind(t.fid.as_deref())
                    .bind(t.kind.as_str())
                    .bind(t.iat)
                    .bind(t.exp)
                    .bind(t.label.as_deref())
            }

            /// Registers tokens (existing jtis are left alone) inside the caller's transaction.
            async fn insert_tokens(
                c: &mut $conn,
                tokens: &[$crate::store::TokenRecord],
            ) -> $crate::Result<()> {
                for t in tokens {
                    Self::token_query(super::sql::INSERT_TOKEN, t)
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
            async fn revoke_in(
                c: &mut $conn,
                revocations: &[$crate::Revocation],
                extra: Option<(&str, &str)>,
                joiners: Option<&mut $crate::store::Joiners>,
                at_ms: i64,
            ) -> $crate::Result<Vec<Option<$crate::Event>>> {
                // Revocations that arrived while the transaction was being opened join it now,
                // before any row is written (so rows are still locked in one sorted order).
                let joined = joiners.map(|j| j()).unwrap_or_default();
                let rows = super::sql::checked_rows(revocations.iter().chain(&joined).cloned())?;
                // The event lock before any row lock (PostgreSQL; see `EVENT_LOCK`).
                Self::before_events(&mut *c).await?;
                let mut applied: Vec<Option<(Option<i64>, Option<i64>)>> = vec![None; rows.len()];
                for round in super::sql::upsert_rounds(&rows) {
                    let batch: Vec<&$crate::Revocation> = round.iter().map(|&i| &rows[i]).collect();
                    let got = Self::upsert_revocations(&mut *c, &batch).await?;
                    let got: std::collections::HashMap<super::sql::RowId, (Option<i64>, Option<i64>)> =
                        got.into_iter().map(|(id, cutoff, exp)| (id, (cutoff, exp))).collect();
                    // A row the upsert did not return was already in force: no event.
                    for &i in &round {
                        applied[i] = got.get(&super::sql::row_id(&rows[i])).copied();
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
                    events.push($crate::Event {
                        id: 0,
                        at_ms,
                        kind: $crate::EventKind::Revoke,
                        scope: r.scope,
                        key: r.key,
                        issuer: r.issuer,
                        cutoff,
                        expires_at,
                        reason: r.reason,
                        actor: r.actor,
                    });
                }
                if let Some((fid, jti)) = extra {
                    slots.push(Some(events.len()));
                    events.push($crate::Event {
                        id: 0,
                        at_ms,
                        kind: $crate::EventKind::ReuseDetected,
                        scope: $crate::Scope::Family,
                        key: fid.to_owned(),
                        issuer: None,
                        cutoff: None,
                        expires_at: None,
                        reason: Some(format!("refresh token {jti} was presented after it was spent")),
                        actor: Some("system".to_owned()),
                    });
                }
                // Appends and announces (NOTIFY at commit), as an insert per event and
                // `after_events` would. Nothing changed: nothing to append, nobody to wake.
                if !events.is_empty() {
                    Self::insert_events(&mut *c, &mut events).await?;
                }
                let mut events: Vec<Option<$crate::Event>> = events.into_iter().map(Some).collect();
                Ok(slots
                    .into_iter()
                    .map(|slot| slot.and_then(|i| events[i].take()))
                    .collect())
            }

            /// The scope of a revocation row that covers the refresh token `jti` (by its
            /// registry row: jti, family, subject cut-off, global cut-off), read inside the
            /// caller's transaction; `None` when none does or the token is unknown.
            async fn covering_scope(
                c: &mut $conn,
                jti: &str,
                issuer: Option<&str>,
            ) -> $crate::Result<Option<$crate::Scope>> {
                let scope: Option<String> = sqlx::query_scalar::<$db, String>(super::sql::COVERING_SCOPE)
                    .bind(jti)
                    .bind($crate::types::issuer_column(issuer))
                    .fetch_optional(&mut *c)
                    .await?;
                scope
                    .map(|s| s.parse().map_err(|e| $crate::Error::Corrupt(format!("{e}"))))
                    .transpose()
            }

            /// Deletes at most `limit` rows that `sql` selects by key, in the caller's
            /// transaction; returns how many.
            async fn delete_some(
                c: &mut $conn,
                sql: &str,
                a: i64,
                limit: u32,
            ) -> $crate::Result<u64> {
                Ok(sqlx::query::<$db>(sql)
                    .bind(a)
                    .bind(i64::from(limit))
                    .execute(&mut *c)
                    .await?
                    .rows_affected())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                $backend
            }

            fn clock(&self) -> $crate::SharedClock {
                self.clock.clone()
            }

            async fn settings(&self) -> $crate::Result<Option<$crate::Bounds>> {
                let row: Option<(i64, i64, i64, i64)> =
                    sqlx::query_as::<$db, (i64, i64, i64, i64)>(super::sql::SELECT_SETTINGS)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.map(|(max_token_ttl_secs, leeway_secs, clock_skew_secs, retention_secs)| {
                    $crate::Bounds { max_token_ttl_secs, leeway_secs, clock_skew_secs, retention_secs }
                }))
            }

            #[tracing::instrument(level = "debug", name = "store.publish_settings", skip_all, fields(backend = $backend.as_str()))]
            async fn publish_settings(&self, mine: &$crate::Bounds) -> $crate::Result<$crate::Bounds> {
                mine.validate()?;
                let mine = *mine;
                let now_ms = self.clock.now_ms();
                self.write(move |c| {
                    Box::pin(async move {
                        // It may extend every revocation row: the event lock first.
                        Self::before_events(&mut *c).await?;
                        let created = sqlx::query::<$db>(super::sql::INSERT_SETTINGS)
                            .bind(mine.max_token_ttl_secs)
                            .bind(mine.leeway_secs)
                            .bind(mine.clock_skew_secs)
                            .bind(mine.retention_secs)
                            .bind(now_ms)
                            .execute(&mut *c)
                            .await?
                            .rows_affected() == 1;
                        if created {
                            // Rows of earlier versions ended at `exp` (or cut-off + lifetime):
                            // give them the grace they lacked, and global cut-offs an end.
                            let grace = mine.grace_secs();
                            sqlx::query::<$db>(super::sql::EXTEND_REVOCATIONS)
                                .bind(grace)
                                .bind(grace)
                                .execute(&mut *c)
                                .await?;
                            sqlx::query::<$db>(super::sql::END_GLOBAL_CUTOFFS)
                                .bind(mine.issued_until(0))
                                .execute(&mut *c)
                                .await?;
                            return Ok(mine);
                        }
                        let lock = if $dialect == super::sql::Dialect::Postgres { " FOR UPDATE" } else { "" };
                        let (ttl, leeway, skew, retention) = sqlx::query_as::<$db, (i64, i64, i64, i64)>(
                            &format!("{}{lock}", super::sql::SELECT_SETTINGS),
                        )
                        .fetch_one(&mut *c)
                        .await?;
                        let stored = $crate::Bounds {
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
                        sqlx::query::<$db>(super::sql::EXTEND_REVOCATIONS)
                            .bind(grace_grew)
                            .bind(grace_grew + ttl_grew)
                            .execute(&mut *c)
                            .await?;
                        sqlx::query::<$db>(super::sql::UPDATE_SETTINGS)
                            .bind(merged.max_token_ttl_secs)
                            .bind(merged.leeway_secs)
                            .bind(merged.clock_skew_secs)
                            .bind(merged.retention_secs)
                            .bind(now_ms)
                            .execute(&mut *c)
                            .await?;
                        tracing::info!(?stored, ?merged, "lifetime bounds raised; standing revocations extended");
                        Ok(merged)
                    })
                })
                .await
            }

            async fn claim_prune(&self, now_ms: i64, interval_ms: i64) -> $crate::Result<bool> {
                // A tenth of the interval of slack, so an instance whose timer fires a little
                // early still gets its turn.
                let stale_before = now_ms.saturating_sub(interval_ms - interval_ms / 10);
                let done = sqlx::query::<$db>(super::sql::CLAIM_PRUNE)
                    .bind(now_ms)
                    .bind(stale_before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn events(
                &self,
                query: &$crate::store::EventQuery,
            ) -> $crate::Result<Vec<$crate::Event>> {
                let (sql, args) = super::sql::events_query(query);
                let rows = Self::with_args(&sql, args).fetch_all(&self.pool).await?;
                rows.iter().map(Self::decode_event).collect()
            }

            async fn migrate(&self) -> $crate::Result<()> {
                // Up to date: touch nothing, so a role without CREATE on the schema can
                // launch on a database its owner migrated (sqlx's `run` would first issue
                // `CREATE TABLE IF NOT EXISTS _sqlx_migrations`, which needs CREATE).
                let applied: Result<Vec<(i64, Vec<u8>, bool)>, sqlx::Error> = sqlx::query_as(
                    "SELECT version, checksum, success FROM _sqlx_migrations",
                )
                .fetch_all(&self.pool)
                .await;
                if let Ok(applied) = applied {
                    let current = $migrator.iter().all(|m| {
                        applied.iter().any(|(version, checksum, success)| {
                            *version == m.version && *success && checksum[..] == m.checksum[..]
                        })
                    });
                    if current {
                        return Ok(());
                    }
                }
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", name = "store.register", skip_all, fields(backend = $backend.as_str(), tokens = tokens.len()))]
            async fn register(&self, tokens: &[$crate::store::TokenRecord]) -> $crate::Result<()> {
                if tokens.is_empty() {
                    return Ok(());
                }
                let tokens = tokens.to_vec();
                self.write(move |c| {
                    Box::pin(async move {
                        Self::insert_tokens(c, &tokens).await
                    })
                })
                .await
            }

            async fn observe(
                &self,
                seen: &[($crate::store::TokenRecord, i64)],
            ) -> $crate::Result<()> {
                if seen.is_empty() {
                    return Ok(());
                }
                let seen = seen.to_vec();
                self.write(move |c| {
                    Box::pin(async move {
                        for (t, at) in &seen {
                            Self::token_query(super::sql::OBSERVE_TOKEN, t)
                                .bind(*at)
                                .execute(&mut *c)
                                .await?;
                        }
                        Ok(())
                    })
                })
                .await
            }

            async fn token(
                &self,
                jti: &str,
                now: i64,
            ) -> $crate::Result<Option<$crate::store::TokenInfo>> {
                let sql = format!("{} WHERE t.jti = $2", super::sql::token_select());
                let row = sqlx::query::<$db>(&sql)
                    .bind(now)
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::decode_token).transpose()
            }

            async fn list(
                &self,
                query: &$crate::store::ListQuery,
                now: i64,
            ) -> $crate::Result<Vec<$crate::store::TokenInfo>> {
                let mut sparse = false;
                if $dialect == super::sql::Dialect::Sqlite {
                    if let Some((probe, args)) = super::sql::density_probe(query) {
                        let mut q = sqlx::query_scalar::<$db, i64>(&probe);
                        for a in args {
                            q = match a {
                                super::sql::Arg::Int(v) => q.bind(v),
                                super::sql::Arg::Text(v) => q.bind(v),
                            };
                        }
                        sparse = q.fetch_one(&self.pool).await? < super::sql::SPARSE_LIMIT;
                    }
                }
                let (sql, args) = super::sql::list_query($dialect, query, now, sparse);
                let rows = Self::with_args(&sql, args).fetch_all(&self.pool).await?;
                rows.iter().map(Self::decode_token).collect()
            }

            async fn stats(&self, now: i64) -> $crate::Result<$crate::store::Stats> {
                use sqlx::Row;
                let sql = format!(
                    "SELECT COUNT(*) AS n, \
                     CAST(COALESCE(SUM(CASE WHEN {rev} THEN 1 ELSE 0 END), 0) AS BIGINT) AS revoked, \
                     CAST(COALESCE(SUM(CASE WHEN NOT ({rev}) AND t.exp < $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS expired \
                     {from}",
                    rev = super::sql::REVOKED_COND,
                    from = super::sql::TOKEN_FROM,
                );
                let row = sqlx::query::<$db>(&sql).bind(now).fetch_one(&self.pool).await?;
                let tokens: i64 = row.try_get("n")?;
                let revoked: i64 = row.try_get("revoked")?;
                let expired: i64 = row.try_get("expired")?;
                let row = sqlx::query::<$db>(
                    "SELECT (SELECT COUNT(*) FROM revoke_revocations) AS r, \
                     (SELECT COUNT(*) FROM revoke_events) AS e, \
                     (SELECT COALESCE(MAX(id), 0) FROM revoke_events) AS m",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok($crate::store::Stats {
                    tokens,
                    active: tokens - revoked - expired,
                    revoked,
                    expired,
                    revocations: row.try_get("r")?,
                    events: row.try_get("e")?,
                    last_event_id: row.try_get("m")?,
                })
            }

            #[tracing::instrument(level = "debug", name = "store.revoke", skip_all, fields(backend = $backend.as_str(), revocations = revocations.len()))]
            async fn revoke(
                &self,
                revocations: &[$crate::Revocation],
            ) -> $crate::Result<Vec<Option<$crate::Event>>> {
                if revocations.is_empty() {
                    return Ok(Vec::new());
                }
                self.revoke_rows(revocations.to_vec(), None).await
            }

            #[tracing::instrument(level = "debug", name = "store.revoke_batch", skip_all, fields(backend = $backend.as_str(), revocations = revocations.len()))]
            async fn revoke_batch(
                &self,
                revocations: Vec<$crate::Revocation>,
                joiners: $crate::store::Joiners,
            ) -> $crate::Result<Vec<Option<$crate::Event>>> {
                self.revoke_rows(revocations, Some(joiners)).await
            }

            #[tracing::instrument(level = "debug", name = "store.restore", skip_all, fields(backend = $backend.as_str(), scope = scope.as_str()))]
            async fn restore(
                &self,
                scope: $crate::Scope,
                issuer: Option<&str>,
                key: &str,
                reason: Option<&str>,
                actor: Option<&str>,
            ) -> $crate::Result<Option<$crate::Event>> {
                let key = if scope == $crate::Scope::Global { String::new() } else { key.to_owned() };
                let issuer = issuer.filter(|i| !i.is_empty()).map(str::to_owned);
                let reason = reason.map(str::to_owned);
                let actor = actor.map(str::to_owned);
                let at_ms = self.clock.now_ms();
                self.write(move |c| {
                    Box::pin(async move {
                        Self::before_events(&mut *c).await?;
                        let done = sqlx::query::<$db>(super::sql::DELETE_REVOCATION)
                            .bind(scope.as_str())
                            .bind(key.as_str())
                            .bind($crate::types::issuer_column(issuer.as_deref()))
                            .execute(&mut *c)
                            .await?;
                        if done.rows_affected() == 0 {
                            return Ok(None);
                        }
                        let id: i64 = sqlx::query_scalar::<$db, i64>(super::sql::INSERT_EVENT)
                            .bind(at_ms)
                            .bind($crate::EventKind::Restore.as_str())
                            .bind(scope.as_str())
                            .bind(key.as_str())
                            .bind(None::<i64>)
                            .bind(None::<i64>)
                            .bind(reason.as_deref())
                            .bind(actor.as_deref())
                            .bind($crate::types::issuer_column(issuer.as_deref()))
                            .fetch_one(&mut *c)
                            .await?;
                        Self::after_events(&mut *c, id).await?;
                        Ok(Some($crate::Event {
                            id,
                            at_ms,
                            kind: $crate::EventKind::Restore,
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

            #[tracing::instrument(level = "debug", name = "store.rotate", skip_all, fields(backend = $backend.as_str(), new_tokens = new_tokens.len()))]
            async fn rotate(
                &self,
                old_jti: &str,
                issuer: Option<&str>,
                now: i64,
                new_tokens: &[$crate::store::TokenRecord],
                on_reuse: &$crate::Revocation,
            ) -> $crate::Result<$crate::store::Rotation> {
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
                        Self::before_rotate(&mut *c).await?;
                        if let Some(scope) = Self::covering_scope(&mut *c, &old_jti, issuer.as_deref()).await? {
                            return Ok($crate::store::Rotation::Revoked(scope));
                        }
                        let replaced_by = new_tokens
                            .iter()
                            .find(|t| t.kind == $crate::TokenKind::Refresh)
                            .map(|t| t.jti.as_str());
                        let spent = sqlx::query::<$db>(super::sql::SPEND_REFRESH)
                            .bind(now)
                            .bind(replaced_by)
                            .bind(old_jti.as_str())
                            .execute(&mut *c)
                            .await?;
                        if spent.rows_affected() == 1 {
                            Self::insert_tokens(c, &new_tokens).await?;
                            return Ok($crate::store::Rotation::Rotated);
                        }
                        let fid: Option<Option<String>> =
                            sqlx::query_scalar::<$db, Option<String>>(super::sql::REFRESH_FAMILY)
                                .bind(old_jti.as_str())
                                .fetch_optional(&mut *c)
                                .await?;
                        let Some(fid) = fid else {
                            return Ok($crate::store::Rotation::Unknown);
                        };
                        // Spent before: revoke the family (or, without one, the token itself).
                        let revocation = match &fid {
                            Some(f) => $crate::Revocation {
                                scope: $crate::Scope::Family,
                                key: f.clone(),
                                issuer: None,
                                ..on_reuse.clone()
                            },
                            None => $crate::Revocation {
                                scope: $crate::Scope::Jti,
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
                        Ok($crate::store::Rotation::Reused { fid, events })
                    })
                })
                .await
            }

            #[tracing::instrument(level = "debug", name = "store.snapshot", skip_all, fields(backend = $backend.as_str(), cursor = tracing::field::Empty, revocations = tracing::field::Empty))]
            async fn snapshot_into(
                &self,
                now: i64,
                sink: &mut dyn $crate::store::SnapshotSink,
            ) -> $crate::Result<i64> {
                use sqlx::Row;
                // Cursor first: with events committed in id order, every event up to it is
                // reflected in the rows read next; later ones are replayed (idempotently).
                let cursor: i64 = sqlx::query_scalar::<$db, i64>(
                    "SELECT COALESCE(MAX(id), 0) FROM revoke_events",
                )
                .fetch_one(&self.pool)
                .await?;
                // Sizes for the sink, so a large set is built without growing; expired rows
                // not yet pruned are counted too (cheaper than filtering, and only a hint).
                let counts: Vec<(String, i64)> = sqlx::query_as::<$db, (String, i64)>(
                    "SELECT scope, COUNT(*) FROM revoke_revocations GROUP BY scope",
                )
                .fetch_all(&self.pool)
                .await?;
                for (scope, n) in counts {
                    if let Ok(scope) = scope.parse::<$crate::Scope>() {
                        sink.expect(scope, usize::try_from(n).unwrap_or(0));
                    }
                }
                // Only what the set needs: reason and actor stay out. One buffer for every
                // row: the key is borrowed from the row and copied into it.
                let mut rows = sqlx::query::<$db>(
                    "SELECT scope, key, cutoff, expires_at, revoked_at, iss \
                     FROM revoke_revocations WHERE expires_at IS NULL OR expires_at >= $1",
                )
                .bind(now)
                .fetch(&self.pool);
                let mut rev = $crate::Revocation {
                    scope: $crate::Scope::Jti,
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
                    rev.scope = scope
                        .parse()
                        .map_err(|e| $crate::Error::Corrupt(format!("{e}")))?;
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

            #[tracing::instrument(level = "debug", name = "store.events_after", skip_all, fields(backend = $backend.as_str(), cursor, limit, events = tracing::field::Empty))]
            async fn events_after(
                &self,
                cursor: i64,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Event>> {
                let sql = format!(
                    "SELECT {} FROM revoke_events WHERE id > $1 ORDER BY id LIMIT $2",
                    super::sql::EVENT_COLUMNS
                );
                let rows = sqlx::query::<$db>(&sql)
                    .bind(cursor)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                tracing::Span::current().record("events", rows.len());
                rows.iter().map(Self::decode_event).collect()
            }

            async fn first_event_id(&self) -> $crate::Result<i64> {
                Ok(sqlx::query_scalar::<$db, i64>(
                    "SELECT COALESCE(MIN(id), 0) FROM revoke_events",
                )
                .fetch_one(&self.pool)
                .await?)
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn listen(
                &self,
            ) -> $crate::Result<Option<Box<dyn $crate::store::ChangeFeed>>> {
                self.listen_impl().await
            }

            #[tracing::instrument(level = "debug", name = "store.prune", skip_all, fields(backend = $backend.as_str(), now, retention))]
            async fn prune(
                &self,
                now: i64,
                retention: i64,
            ) -> $crate::Result<$crate::store::PruneReport> {
                let horizon = now.saturating_sub(retention);
                let mut report = $crate::store::PruneReport::default();
                // Small transactions, one table at a time and revocations first (their events
                // become prunable once they are gone), so no prune holds the write lock long.
                for (sql, bound) in [
                    (super::sql::PRUNE_REVOCATIONS, now),
                    (super::sql::PRUNE_TOKENS, horizon),
                    (super::sql::PRUNE_EVENTS, horizon.saturating_mul(1000)),
                ] {
                    loop {
                        let n = self
                            .write(move |c| {
                                Box::pin(async move {
                                    if sql == super::sql::PRUNE_REVOCATIONS {
                                        Self::before_events(&mut *c).await?;
                                    }
                                    Self::delete_some(c, sql, bound, $crate::store::PRUNE_BATCH).await
                                })
                            })
                            .await?;
                        if sql == super::sql::PRUNE_REVOCATIONS {
                            report.revocations += n;
                        } else if sql == super::sql::PRUNE_TOKENS {
                            report.tokens += n;
                        } else {
                            report.events += n;
                        }
                        if n < u64::from($crate::store::PRUNE_BATCH) {
                            break;
                        }
                    }
                }
                Ok(report)
            }
        }
    };
}

pub(super) use impl_store;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Revocation, Scope};

    fn rev(scope: Scope, key: &str) -> Revocation {
        Revocation {
            scope,
            key: key.into(),
            issuer: None,
            cutoff: None,
            expires_at: None,
            reason: None,
            actor: None,
            revoked_at: 0,
        }
    }

    #[test]
    fn rounds_split_repeated_keys_and_sort_each_round() {
        let rows = [
            rev(Scope::Jti, "b"),
            rev(Scope::Subject, "a"),
            rev(Scope::Jti, "b"),
            rev(Scope::Jti, "a"),
            rev(Scope::Jti, "b"),
            rev(Scope::Subject, "b"),
            rev(Scope::Subject, "a"),
        ];
        assert_eq!(
            upsert_rounds(&rows),
            vec![vec![3, 0, 1, 5], vec![2, 6], vec![4]]
        );
        assert!(upsert_rounds(&[]).is_empty());
    }

    #[test]
    fn sqlite_chunks_are_powers_of_two_up_to_the_cap() {
        let sizes = |n| sqlite_chunks(n).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(13), [8, 4, 1]);
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(200), [64, 64, 64, 8]);
        for n in 0..600 {
            assert_eq!(sizes(n).iter().sum::<usize>(), n);
        }
    }

    #[test]
    fn multi_row_sql_numbers_placeholders_in_order() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        let sql = sqlite_insert_events(2);
        assert!(
            sql.contains("($10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING id"),
            "{sql}"
        );
        let sql = sqlite_upsert_revocations(1);
        assert!(
            sql.contains("VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT"),
            "{sql}"
        );
    }
}
