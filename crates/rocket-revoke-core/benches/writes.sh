#!/usr/bin/env bash
# The revocation write benchmark of `cargo xtask bench` (xtask/src/bench.rs `writes()`), alone
# and in about 20 s: wrk POSTs /bench/revoke on bench_app instances sharing one database (PG: 3
# instances, all writing, 32 connections split between them; SQLite: 2 instances, writes on
# the first) while `bench_app probe` times propagation from the first instance to the second.
# Needs wrk, curl, python3 and psql (PG); PostgreSQL at $REVOKE_TEST_PG_URL
# (default postgres://postgres@127.0.0.1:5432/test; a fresh schema is created and dropped).
#
#   cargo build --release -p revoke-tests --bin bench_app
#   crates/rocket-revoke-core/benches/writes.sh target/release/bench_app pg [SECS] [TOTAL_CONNS]
#   crates/rocket-revoke-core/benches/writes.sh target/release/bench_app sqlite
#
# Run from the repository root (bench_app reads Rocket.toml). Set STATS_DIR to keep the
# instances' stderr.
set -euo pipefail
BIN=${1:?bench_app binary}; BACKEND=${2:-pg}; SECS=${3:-15}; CONNS=${4:-32}
PG=${REVOKE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
tmp=$(mktemp -d); pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [ "$BACKEND" = pg ] && psql "$PG" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
schema=bench_w_$$
if [ "$BACKEND" = pg ]; then
  psql "$PG" -qc "CREATE SCHEMA $schema" >/dev/null
  URL="$PG?options=-csearch_path%3D$schema"; N=3; WRITERS=3; JITTER=20; SAMPLES=60
else
  URL="sqlite://$tmp/writes.db?mode=rwc"; N=2; WRITERS=1; JITTER=250; SAMPLES=40
fi
ports=()
for i in $(seq 1 $N); do
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  ROCKET_PORT=$port ROCKET_ADDRESS=127.0.0.1 ROCKET_DATABASES="{revoke={url=\"$URL\"}}" \
    ROCKET_LOG_LEVEL=off ROCKET_CLI_COLORS=false "$BIN" >/dev/null 2>>"${STATS_DIR:-$tmp}/app$i.err" &
  pids+=($!); ports+=($port)
  for _ in $(seq 1 2000); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.05; done
done
echo 'wrk.method = "POST"' > "$tmp/post.lua"
per=$(( CONNS / WRITERS )); [ $per -lt 4 ] && per=4
wrkpids=()
for i in $(seq 0 $((WRITERS-1))); do
  wrk -t1 -c$per -d${SECS}s -s "$tmp/post.lua" "http://127.0.0.1:${ports[$i]}/bench/revoke" > "$tmp/wrk$i.txt" &
  wrkpids+=($!)
done
sleep 0.5
"$BIN" probe --a "http://127.0.0.1:${ports[0]}" --b "http://127.0.0.1:${ports[1]}" \
  --samples $SAMPLES --jitter-ms $JITTER > "$tmp/probe.json" || echo "probe failed"
wait "${wrkpids[@]}"
total=0
for i in $(seq 0 $((WRITERS-1))); do
  r=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk$i.txt"); total=$(python3 -c "print($total+$r)")
  grep -q "Non-2xx" "$tmp/wrk$i.txt" && echo "FAILED WRITES: $(grep Non-2xx "$tmp/wrk$i.txt")"
  grep -E "Latency|Socket errors" "$tmp/wrk$i.txt" | sed "s/^/  wrk$i /"
done
sleep 2
counts=""
for p in "${ports[@]}"; do counts="$counts $(curl -s "http://127.0.0.1:$p/health" | python3 -c 'import json,sys;print(json.load(sys.stdin)["revocations"]["jtis"])')"; done
echo "backend=$BACKEND writers=$WRITERS conns/writer=$per secs=$SECS revocations/s=$total"
echo "probe: $(cat "$tmp/probe.json")"
echo "jtis per instance:$counts   load: $(cut -d' ' -f1-3 /proc/loadavg)"
