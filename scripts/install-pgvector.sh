#!/usr/bin/env bash
# Installs the pgvector extension for the PostgreSQL server in use, when it is
# missing. Idempotent: exits at once when `vector.control` is already present.
#
# Order of preference:
#   1. the distribution's own package (`postgresql-NN-pgvector`), when apt has it;
#   2. Debian's source package, built against the local server (bookworm has no
#      pgvector binary package, and installing a newer suite's binary would drag
#      in a newer libc). The deb-src entry is derived from the machine's own
#      Debian source list, so no mirror is named here.
#
# Usage: scripts/install-pgvector.sh            (needs root for apt/make install)
#        PG_CONFIG=/path/to/pg_config scripts/install-pgvector.sh
set -euo pipefail

find_pg_config() {
    if [[ -n "${PG_CONFIG:-}" ]]; then echo "$PG_CONFIG"; return; fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -n1 || true)
    if [[ -n "$newest" ]]; then echo "$newest"; return; fi
    command -v pg_config || true
}

PG_BIN_DIR=""
if [[ -n "${PG_CONFIG:-}" ]]; then
    PG_BIN_DIR=$(dirname "$PG_CONFIG")
else
    PG_BIN_DIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
fi
if [[ -z "$PG_BIN_DIR" || ! -x "$PG_BIN_DIR/postgres" ]]; then
    echo "install-pgvector: no PostgreSQL server found under /usr/lib/postgresql" >&2
    exit 1
fi
PG_MAJOR=$(basename "$(dirname "$PG_BIN_DIR")")
SHAREDIR="/usr/share/postgresql/$PG_MAJOR"
if [[ -f "$SHAREDIR/extension/vector.control" ]]; then
    echo "install-pgvector: pgvector already installed for PostgreSQL $PG_MAJOR"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "install-pgvector: pgvector missing for PostgreSQL $PG_MAJOR and not root; install it by hand" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq

# 1. A packaged build, where the distribution has one.
if apt-cache show "postgresql-$PG_MAJOR-pgvector" >/dev/null 2>&1; then
    apt-get install -y -qq "postgresql-$PG_MAJOR-pgvector"
    [[ -f "$SHAREDIR/extension/vector.control" ]] && { echo "install-pgvector: installed package"; exit 0; }
fi

# 2. Build Debian's source package against the local server.
apt-get install -y -qq "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev >/dev/null
SRC_LIST=/etc/apt/sources.list.d/facegate-pgvector-src.sources
if ! apt-cache showsrc pgvector >/dev/null 2>&1 || [[ -z "$(apt-cache showsrc pgvector 2>/dev/null)" ]]; then
    DEB_SOURCES=/etc/apt/sources.list.d/debian.sources
    if [[ ! -f "$DEB_SOURCES" ]]; then
        echo "install-pgvector: no $DEB_SOURCES to derive a source entry from" >&2
        exit 1
    fi
    awk 'BEGIN{RS="";ORS="\n\n"} NR==1' "$DEB_SOURCES" \
        | sed -e 's/^Types: deb$/Types: deb-src/' -e 's/^Suites: .*/Suites: trixie/' > "$SRC_LIST"
    apt-get update -qq
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
cd "$WORK"
apt-get source -qq pgvector >/dev/null
SRC_DIR=$(find . -maxdepth 1 -type d -name 'pgvector-*' | head -n1)
cd "$SRC_DIR"
make -s PG_CONFIG="$PG_BIN_DIR/pg_config" OPTFLAGS="" >/dev/null
make -s PG_CONFIG="$PG_BIN_DIR/pg_config" install >/dev/null
if [[ -f "$SHAREDIR/extension/vector.control" ]]; then
    echo "install-pgvector: built and installed pgvector from source for PostgreSQL $PG_MAJOR"
else
    echo "install-pgvector: build finished but vector.control is missing" >&2
    exit 1
fi
