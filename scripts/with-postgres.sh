#!/usr/bin/env bash
# Runs a command with DATABASE_URL pointing at a PostgreSQL server with
# pgvector. When DATABASE_URL is already set it is used as is; otherwise a
# throwaway cluster is created in a temporary directory (trust auth, a free
# port on 127.0.0.1, socket in the same directory), and stopped and removed
# when the command exits, whatever its outcome.
#
# Usage: scripts/with-postgres.sh cargo test -p face-store
#        FACEGATE_PG_OPTS="-c shared_buffers=2GB" scripts/with-postgres.sh ...  (extra server settings)
#
# PostgreSQL refuses to run as root; as root the cluster runs as the
# `postgres` user. Installs pgvector first when it is missing (needs root).
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi

if [[ -n "${DATABASE_URL:-}" ]]; then
    echo "with-postgres: using the DATABASE_URL already set"
    exec "$@"
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)}
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "with-postgres: installing the PostgreSQL server"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    else
        echo "with-postgres: no PostgreSQL server binaries (set PG_BIN)" >&2
        exit 1
    fi
fi
PG_CONFIG="$PG_BIN/pg_config" "$HERE/install-pgvector.sh"

RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
    RUN_AS=(runuser -u postgres --)
fi

PGTMP=$(mktemp -d /tmp/facegate-pg.XXXXXX)
chmod 755 "$PGTMP"
if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PGTMP"; fi

free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}
PORT=$(free_port)

cleanup() {
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGTMP"
}
trap cleanup EXIT INT TERM

"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" -w -t 30 \
    -o "-p $PORT -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 ${FACEGATE_PG_OPTS:-}" start >/dev/null

export DATABASE_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: throwaway PostgreSQL on port $PORT (data in $PGTMP)"
set +e
"$@"
status=$?
set -e
exit $status
