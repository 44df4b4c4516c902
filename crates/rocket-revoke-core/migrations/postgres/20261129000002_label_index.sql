-- Prefix search over labels.
CREATE INDEX IF NOT EXISTS revoke_tokens_label_prefix ON revoke_tokens (label text_pattern_ops);
