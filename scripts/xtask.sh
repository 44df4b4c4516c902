#!/usr/bin/env bash
# `cargo xtask ARGS`, but the xtask binary of the workspace's test build
# (`cargo test --workspace --all-features --no-run`, a no-op right after the tests):
# `cargo xtask` is `cargo run -p xtask`, which resolves features for xtask alone and builds
# sqlx, tokio and friends a second time. CI and scripts/test.sh use this; at a prompt,
# `cargo xtask` is the same thing.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -q --workspace --all-features --no-run
exec "${CARGO_TARGET_DIR:-target}/debug/xtask" "$@"
