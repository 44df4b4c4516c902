-- rocket-revoke schema, SQLite. Times are seconds since the epoch unless named *_ms.

-- The registry of issued (or first-seen) tokens.
CREATE TABLE IF NOT EXISTS revoke_tokens (
    jti         TEXT    NOT NULL PRIMARY KEY,
    sub         TEXT    NOT NULL,
    fid         TEXT,
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'refresh', 'external')),
    iat         INTEGER NOT NULL,
    exp         INTEGER NOT NULL,
    label       TEXT,
    last_seen   INTEGER,
    -- refresh tokens: when it was spent by a rotation, and the refresh token that replaced it
    spent_at    INTEGER,
    replaced_by TEXT
) WITHOUT ROWID;

-- Newest-first paging, and the per-subject / per-family / expiry lookups.
CREATE INDEX IF NOT EXISTS revoke_tokens_iat ON revoke_tokens (iat DESC, jti);
CREATE INDEX IF NOT EXISTS revoke_tokens_sub ON revoke_tokens (sub, iat DESC);
CREATE INDEX IF NOT EXISTS revoke_tokens_fid ON revoke_tokens (fid);
CREATE INDEX IF NOT EXISTS revoke_tokens_exp ON revoke_tokens (exp);

-- Current revocations: one row per (scope, key); global uses key ''.
CREATE TABLE IF NOT EXISTS revoke_revocations (
    scope      TEXT    NOT NULL CHECK (scope IN ('jti', 'subject', 'family', 'global')),
    key        TEXT    NOT NULL,
    cutoff     INTEGER,
    expires_at INTEGER,
    reason     TEXT,
    actor      TEXT,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS revoke_revocations_expires ON revoke_revocations (expires_at);

-- Append-only event log; sync reads it by id. AUTOINCREMENT: ids are never reused,
-- and SQLite's single writer hands them out in commit order.
CREATE TABLE IF NOT EXISTS revoke_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    cutoff     INTEGER,
    expires_at INTEGER,
    reason     TEXT,
    actor      TEXT
);

CREATE INDEX IF NOT EXISTS revoke_events_at ON revoke_events (at_ms);
