-- Revocations scoped by issuer: subject "42" at one identity provider is not subject "42" at
-- another. `iss` is the issuer a revocation applies to; '' (every existing row) applies to
-- tokens of every issuer, exactly as before, so single-issuer apps see no change. The key
-- (scope, key, iss) keeps lookups by scope and key on the primary key's prefix.
ALTER TABLE revoke_revocations ADD COLUMN IF NOT EXISTS iss TEXT NOT NULL DEFAULT '';
ALTER TABLE revoke_revocations DROP CONSTRAINT IF EXISTS revoke_revocations_pkey;
ALTER TABLE revoke_revocations ADD CONSTRAINT revoke_revocations_pkey PRIMARY KEY (scope, key, iss);

-- Events record the scope of the revocation they assert or lift.
ALTER TABLE revoke_events ADD COLUMN IF NOT EXISTS iss TEXT NOT NULL DEFAULT '';
DROP INDEX IF EXISTS revoke_events_key;
CREATE INDEX IF NOT EXISTS revoke_events_key ON revoke_events (scope, key, iss, id);
