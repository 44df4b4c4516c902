#!/usr/bin/env bash
# Starts the local PostgreSQL cluster when it is not accepting connections, and makes sure
# the test database exists. Used by .ci/run and scripts/test.sh.
set -euo pipefail

url="${REVOKE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

ready() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! ready; then
    echo "PostgreSQL is not running; starting it"
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql postgresql-client
    fi
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    # Trust auth on loopback for the test user, as the test URL expects.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
        sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
    for _ in $(seq 1 60); do ready && break; sleep 0.5; done
fi
ready || { echo "PostgreSQL did not come up" >&2; exit 1; }

db="${url##*/}"
db="${db%%\?*}"
if ! psql "${url%/*}/postgres" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql "${url%/*}/postgres" -qc "CREATE DATABASE \"$db\""
fi
echo "PostgreSQL ready at $url"
