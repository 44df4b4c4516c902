-- A revocation's life: the lifetime bounds every writer reads, and the audit trail by key.

-- One row (id = 1): the largest bounds any app on this database has declared. Revocations
-- are kept in force for max_token_ttl_secs + leeway_secs + clock_skew_secs past the last
-- token they can cover; revokectl and every other writer read them from here.
CREATE TABLE IF NOT EXISTS revoke_settings (
    id                 INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    max_token_ttl_secs INTEGER NOT NULL,
    leeway_secs        INTEGER NOT NULL,
    clock_skew_secs    INTEGER NOT NULL,
    retention_secs     INTEGER NOT NULL,
    -- when an instance last claimed the scheduled database prune (ms), so one runs at a time
    prune_lease_ms     INTEGER NOT NULL DEFAULT 0,
    updated_ms         INTEGER NOT NULL
);

-- History of one key (revokectl show / events --key), and the prune that keeps the events
-- of revocations still in force.
CREATE INDEX IF NOT EXISTS revoke_events_key ON revoke_events (scope, key, id);
CREATE INDEX IF NOT EXISTS revoke_events_actor ON revoke_events (actor, id);
