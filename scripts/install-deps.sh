#!/usr/bin/env bash
# install-deps.sh — install everything pgwarden needs to build, test and run
# its demo on Debian 12, then node-postgres for the client tests. clang,
# libclang-rt-14-dev (libFuzzer and the sanitizer runtimes) and llvm-14
# (llvm-symbolizer, which sanitizer suppressions need) are for
# scripts/fuzz.sh and scripts/sanitize.sh; python3-pytest-xdist runs the
# integration suite on every CPU (scripts/pytest.sh).
#
# Runs as root without questions (CI and fresh machines); as another user it
# uses sudo. Safe to run again: apt-get install -y does nothing for packages
# already present, and the npm step only runs when tests/clients changed.
# It starts no system services (the tests and demo run their own PostgreSQL).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
    build-essential autoconf automake libtool pkg-config clang-format
    libevent-dev libssl-dev libcurl4-openssl-dev libjansson-dev libpq-dev
    libhiredis-dev libpg-query-dev libprotobuf-c-dev libstemmer-dev check
    postgresql redis-server pgbouncer
    python3-psycopg python3-pytest python3-pytest-xdist
    odbc-postgresql unixodbc python3-pyodbc python3-sqlalchemy python3-psycopg2
    libpostgresql-jdbc-java default-jdk-headless
    openssl ca-certificates procps
    clang libclang-rt-14-dev llvm-14
)
# Node.js: use whatever node is already installed (nodesource, nvm, ...);
# only fall back to Debian's packages when there is none.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    sudo=(sudo)
fi

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d keeps package scripts from starting postgresql/redis services
    # on machines without a running init (containers, CI).
    policy=/usr/sbin/policy-rc.d
    created_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        created_policy=yes
    fi
    cleanup_policy() { [ "$created_policy" = yes ] && "${sudo[@]}" rm -f "$policy"; return 0; }
    trap cleanup_policy EXIT
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "${missing[@]}"
else
    echo "install-deps: all Debian packages present"
fi

# node-postgres for tests/clients, pinned by package-lock.json.
clients="$repo/tests/clients"
stamp="$clients/node_modules/.pgwarden-installed"
if [ ! -f "$stamp" ] || [ "$clients/package-lock.json" -nt "$stamp" ]; then
    echo "install-deps: installing node modules in tests/clients"
    (cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
else
    echo "install-deps: node modules present"
fi
