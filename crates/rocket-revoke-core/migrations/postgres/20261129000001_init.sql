-- rocket-revoke schema, PostgreSQL. Times are seconds since the epoch unless named *_ms.
-- Privileges the application role needs: USAGE on the schema; SELECT, INSERT, UPDATE,
-- DELETE on these tables; USAGE on the events sequence; CREATE on the schema only to
-- run migrations.

CREATE TABLE IF NOT EXISTS revoke_tokens (
    jti         TEXT   NOT NULL PRIMARY KEY,
    sub         TEXT   NOT NULL,
    fid         TEXT,
    kind        TEXT   NOT NULL CHECK (kind IN ('access', 'refresh', 'external')),
    iat         BIGINT NOT NULL,
    exp         BIGINT NOT NULL,
    label       TEXT,
    last_seen   BIGINT,
    spent_at    BIGINT,
    replaced_by TEXT
);

CREATE INDEX IF NOT EXISTS revoke_tokens_iat ON revoke_tokens (iat DESC, jti);
CREATE INDEX IF NOT EXISTS revoke_tokens_sub ON revoke_tokens (sub, iat DESC);
CREATE INDEX IF NOT EXISTS revoke_tokens_fid ON revoke_tokens (fid);
CREATE INDEX IF NOT EXISTS revoke_tokens_exp ON revoke_tokens (exp);
-- jti prefix search with LIKE 'abc%' under any collation.
CREATE INDEX IF NOT EXISTS revoke_tokens_jti_prefix ON revoke_tokens (jti text_pattern_ops);
CREATE INDEX IF NOT EXISTS revoke_tokens_sub_prefix ON revoke_tokens (sub text_pattern_ops);

CREATE TABLE IF NOT EXISTS revoke_revocations (
    scope      TEXT   NOT NULL CHECK (scope IN ('jti', 'subject', 'family', 'global')),
    key        TEXT   NOT NULL,
    cutoff     BIGINT,
    expires_at BIGINT,
    reason     TEXT,
    actor      TEXT,
    revoked_at BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE INDEX IF NOT EXISTS revoke_revocations_expires ON revoke_revocations (expires_at);

-- Writers take a transaction-level advisory lock just before appending here, so ids
-- become visible in id order and a reader's cursor never skips a late commit.
CREATE TABLE IF NOT EXISTS revoke_events (
    id         BIGSERIAL PRIMARY KEY,
    at_ms      BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    scope      TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    cutoff     BIGINT,
    expires_at BIGINT,
    reason     TEXT,
    actor      TEXT
);

CREATE INDEX IF NOT EXISTS revoke_events_at ON revoke_events (at_ms);
