-- Prefix search over labels.
CREATE INDEX IF NOT EXISTS revoke_tokens_label ON revoke_tokens (label);
