#!/usr/bin/env bash
# The whole test suite: every crate's tests on SQLite and PostgreSQL, doctests, and the
# revokectl end-to-end run in tmux. Starts PostgreSQL if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-postgres.sh
cargo test --workspace --all-features
# revokectl end to end: the real binary driven in tmux on a seeded database.
cargo xtask e2e
