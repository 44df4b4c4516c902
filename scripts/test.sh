#!/usr/bin/env bash
# The whole test suite: every crate's tests on SQLite and PostgreSQL, doctests, and the
# revokectl end-to-end run in tmux. Starts PostgreSQL if needed.
#
#   bash scripts/test.sh              # all of it
#   bash scripts/test.sh unit doc     # some steps: unit (unit and integration tests),
#                                     # doc (doctests), e2e (revokectl in tmux)
#
# Unit and integration tests run under cargo-nextest (each test its own process, in
# parallel; .config/nextest.toml groups the heavy ones) when it is installed, else under
# `cargo test`. Extra arguments for nextest go in NEXTEST_ARGS (e.g. "--no-fail-fast").
set -euo pipefail
cd "$(dirname "$0")/.."

steps=("$@")
((${#steps[@]})) || steps=(unit doc e2e)
for step in "${steps[@]}"; do
    case $step in
    unit | doc | e2e) ;;
    *)
        echo "unknown step $step (unit, doc, e2e)" >&2
        exit 2
        ;;
    esac
done

bash scripts/ensure-postgres.sh

for step in "${steps[@]}"; do
    case $step in
    unit)
        if cargo nextest --version >/dev/null 2>&1; then
            # shellcheck disable=SC2086 # NEXTEST_ARGS is a list of words
            cargo nextest run --workspace --all-features ${NEXTEST_ARGS:-}
        else
            echo "cargo-nextest is not installed (cargo install cargo-nextest --locked):"
            echo "running the tests with cargo test instead"
            cargo test --workspace --all-features --lib --bins --tests --examples
        fi
        ;;
    doc)
        cargo test --workspace --all-features --doc
        ;;
    e2e)
        # revokectl end to end: the real binary driven in tmux on a seeded database.
        bash scripts/xtask.sh e2e
        ;;
    esac
done
