//! The SQL both backends run, as text and as builders of dynamic queries; `generic.rs` runs it.
//!
//! Placeholders are `$1, $2, ...` in order of first use: PostgreSQL reads them as positions and
//! SQLite as named parameters numbered by first appearance, so one text serves both.

use super::Backend;

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

/// The `revoke` event of `r` whose row, once written, has `cutoff` and `expires_at`.
pub(super) fn revoke_event(
    r: crate::Revocation,
    id: i64,
    at_ms: i64,
    cutoff: Option<i64>,
    expires_at: Option<i64>,
) -> crate::Event {
    crate::Event {
        id,
        at_ms,
        kind: crate::EventKind::Revoke,
        scope: r.scope,
        key: r.key,
        issuer: r.issuer,
        cutoff,
        expires_at,
        reason: r.reason,
        actor: r.actor,
    }
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

/// Builds the `list` query: returns SQL and its arguments (`$1` is now).
pub(super) fn list_query(
    backend: Backend,
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
        let c = prefix_cond(backend, "t.jti", prefix, &mut args, &mut push);
        conds.push(c);
    }
    if let Some(text) = q.text.as_deref().filter(|p| !p.is_empty()) {
        let a = prefix_cond(backend, "t.sub", text, &mut args, &mut push);
        let b = prefix_cond(backend, "t.jti", text, &mut args, &mut push);
        let c = prefix_cond(backend, "t.label", text, &mut args, &mut push);
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
    let order = if backend == Backend::Sqlite && sparse {
        "+t.iat"
    } else {
        "t.iat"
    };
    if backend == Backend::Sqlite && has_prefix && !sparse {
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
        let cond = prefix_cond(Backend::Sqlite, column, prefix, args, &mut push);
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
    backend: Backend,
    column: &str,
    prefix: &str,
    args: &mut Vec<Arg>,
    push: &mut impl FnMut(&mut Vec<Arg>, Arg) -> String,
) -> String {
    match backend {
        // A half-open range on the binary collation; LIKE would be case-insensitive and
        // could not use the index.
        Backend::Sqlite => {
            let lo = push(args, Arg::Text(prefix.to_owned()));
            let hi = push(args, Arg::Text(format!("{prefix}\u{10FFFF}")));
            format!("({column} >= {lo} AND {column} < {hi})")
        }
        // LIKE with text_pattern_ops indexes; escape the pattern characters.
        Backend::Postgres => {
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
