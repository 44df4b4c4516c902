#!/usr/bin/env bash
# `cargo deny check` (advisories, bans, licenses, sources; deny.toml) without network access
# other than crates.io: cargo-deny runs with --offline against a snapshot of the RustSec
# advisory database (deny/README.md says where it lives and how to refresh it).
#
#   bash scripts/deny.sh [CHECK OPTIONS]   # .ci/run passes --hide-inclusion-graph
#   REVOKE_ADVISORY_DB=/path/to/advisory-db bash scripts/deny.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# 0.20.2 needs rustc >= 1.88 and reads the deny.toml keys used here.
DENY_VERSION=0.20.2
if ! cargo deny --version >/dev/null 2>&1; then
    echo "installing cargo-deny $DENY_VERSION (a few minutes, once per machine)"
    # Thin LTO and parallel codegen: the release profile's fat LTO on one codegen unit makes
    # the install several times slower on 2 cores, for a tool that runs once.
    CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        cargo install cargo-deny --version "$DENY_VERSION" --locked
fi
cargo deny --version

# --offline also keeps cargo metadata offline, and that reads the manifest of every crate in
# Cargo.lock, the other platforms' too: fetch them first (crates.io only).
cargo fetch --locked --quiet

# The snapshot: crates/ (the advisories) and SNAPSHOT ("<commit> <ISO-8601 commit date>").
# The first directory that has both wins.
db=""
for candidate in "${REVOKE_ADVISORY_DB:-}" deny/advisory-db ../shared/advisory-db; do
    if [[ -n "$candidate" && -d "$candidate/crates" && -f "$candidate/SNAPSHOT" ]]; then
        db=$candidate
        break
    fi
done
if [[ -z "$db" ]]; then
    echo "WARNING: no advisory database snapshot (REVOKE_ADVISORY_DB, deny/advisory-db or"
    echo "WARNING: ../shared/advisory-db; see deny/README.md): advisories NOT checked"
    exec cargo deny --offline check "$@" bans licenses sources
fi
read -r commit date <"$db/SNAPSHOT"
echo "advisory database: $db, rustsec/advisory-db $commit of $date"

# cargo-deny opens <db-path>/<name>-<hash of the URL in deny.toml> and wants a git
# repository there: it reads the last fetch time from .git/FETCH_HEAD (else HEAD's commit
# date) and fails past maximum-db-staleness. Build a throwaway one whose fetch time is the
# snapshot's date, so that check measures the snapshot's real age.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
repo="$root/advisory-db-3157b0e258782691" # the name for https://github.com/rustsec/advisory-db
mkdir "$repo"
cp -R "$db/crates" "$repo/"
git -C "$repo" init -q -b main
git -C "$repo" add -A
GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date git -C "$repo" \
    -c user.name=snapshot -c user.email=snapshot@invalid -c commit.gpgsign=false \
    commit -q -m "rustsec/advisory-db $commit"
touch -d "$date" "$repo/.git/FETCH_HEAD"

DENY_ADVISORY_DB_ROOT=$root cargo deny --offline check "$@"
