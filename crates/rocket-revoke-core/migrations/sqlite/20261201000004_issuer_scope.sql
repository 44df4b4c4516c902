-- Revocations scoped by issuer: subject "42" at one identity provider is not subject "42" at
-- another. `iss` is the issuer a revocation applies to; '' (every existing row) applies to
-- tokens of every issuer, exactly as before, so single-issuer apps see no change. The key
-- (scope, key, iss) keeps lookups by scope and key on the primary key's prefix.
--
-- SQLite cannot change a primary key in place: the table is rebuilt with (scope, iss, key)
-- and every row carried over, inside the migration's transaction.
CREATE TABLE revoke_revocations_v4 (
    scope      TEXT    NOT NULL CHECK (scope IN ('jti', 'subject', 'family', 'global')),
    iss        TEXT    NOT NULL DEFAULT '',
    key        TEXT    NOT NULL,
    cutoff     INTEGER,
    expires_at INTEGER,
    reason     TEXT,
    actor      TEXT,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (scope, key, iss)
) WITHOUT ROWID;

INSERT INTO revoke_revocations_v4 (scope, iss, key, cutoff, expires_at, reason, actor, revoked_at)
    SELECT scope, '', key, cutoff, expires_at, reason, actor, revoked_at FROM revoke_revocations;

DROP TABLE revoke_revocations;
ALTER TABLE revoke_revocations_v4 RENAME TO revoke_revocations;
CREATE INDEX IF NOT EXISTS revoke_revocations_expires ON revoke_revocations (expires_at);

-- Events record the scope of the revocation they assert or lift.
ALTER TABLE revoke_events ADD COLUMN iss TEXT NOT NULL DEFAULT '';
DROP INDEX IF EXISTS revoke_events_key;
CREATE INDEX IF NOT EXISTS revoke_events_key ON revoke_events (scope, key, iss, id);
