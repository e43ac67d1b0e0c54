#!/usr/bin/env bash
# demo.sh — try pgwarden on one machine: installs what is missing, builds,
# starts a throwaway PostgreSQL with two tenants' data (contrib/demo/schema.sql),
# the stand-in LLM when contrib/fake-llm exists, and pgwarden with
# contrib/demo/pgwarden.ini; prints how to connect and runs until Ctrl-C.
# Everything lives in one temp directory that is removed on exit.
#
#   bash scripts/demo.sh            # interactive: runs until Ctrl-C
#   bash scripts/demo.sh --smoke    # start, run a few queries, stop (for CI)
#
# Environment: SKIP_DEPS=1 skips install-deps; BUILD_DIR as for build.sh;
# PGWARDEN_BIN runs that binary instead of building;
# PGW_DEMO_PORT (default 6432) and PGW_DEMO_PGPORT (default 55432) pick ports,
# falling back to a free one when taken. Without contrib/fake-llm, ASK uses
# OPENAI_BASE_URL / OPENAI_API_KEY / OPENAI_MODEL if set.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$repo}
pgbin=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
smoke=no
[ "${1:-}" = "--smoke" ] && smoke=yes

if [ "${SKIP_DEPS:-0}" != 1 ]; then
    bash "$repo/scripts/install-deps.sh"
fi
if [ -n "${PGWARDEN_BIN:-}" ]; then
    pgwarden_bin=$PGWARDEN_BIN  # a binary built elsewhere: no build here
else
    BUILD_DIR="$build_dir" bash "$repo/scripts/build.sh"
    pgwarden_bin=$build_dir/pgwarden
fi

work=$(mktemp -d /tmp/pgwarden-demo.XXXXXX)
chmod 755 "$work"
pgwarden_pid=
llm_pid=
pg_started=no

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cleanup() {
    trap - EXIT INT TERM
    set +e
    echo
    echo "demo: stopping"
    [ -n "$pgwarden_pid" ] && kill -TERM "$pgwarden_pid" 2>/dev/null && wait "$pgwarden_pid" 2>/dev/null
    [ -n "$llm_pid" ] && kill -TERM "$llm_pid" 2>/dev/null && wait "$llm_pid" 2>/dev/null
    [ "$pg_started" = yes ] && as_postgres "$pgbin/pg_ctl" -D "$work/pgdata" -m fast stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
    local port=$1
    while port_in_use "$port"; do port=$((port + 1)); done
    echo "$port"
}
wait_for_port() {
    local port=$1 what=$2 pid=${3:-}
    for _ in $(seq 1 200); do
        port_in_use "$port" && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            echo "demo: $what exited during start-up" >&2
            return 1
        fi
        sleep 0.05
    done
    echo "demo: $what did not start listening on port $port" >&2
    return 1
}

# -- PostgreSQL --------------------------------------------------------------
export PGW_DEMO_PGPORT PGW_DEMO_PORT
PGW_DEMO_PGPORT=$(pick_port "${PGW_DEMO_PGPORT:-55432}")
PGW_DEMO_PORT=$(pick_port "${PGW_DEMO_PORT:-6432}")

[ "$(id -u)" -eq 0 ] && chown postgres: "$work"
echo "demo: PostgreSQL (data in $work/pgdata)"
as_postgres "$pgbin/initdb" -D "$work/pgdata" -U postgres --auth=trust -E UTF8 --no-locale \
    --no-sync >"$work/initdb.log"
# A port can look free and still fail to bind (an outgoing connection may hold
# it as its ephemeral port), so try a few.
for attempt in 1 2 3 4 5; do
    if as_postgres "$pgbin/pg_ctl" -D "$work/pgdata" -l "$work/postgres.log" -w -o \
        "-p $PGW_DEMO_PGPORT -k $work -c listen_addresses=127.0.0.1" start >"$work/pg_ctl.log" 2>&1; then
        pg_started=yes
        break
    fi
    if [ "$attempt" -eq 5 ]; then
        echo "demo: PostgreSQL did not start:" >&2
        tail -n 5 "$work/postgres.log" >&2
        exit 1
    fi
    PGW_DEMO_PGPORT=$(pick_port $((PGW_DEMO_PGPORT + 1)))
    echo "demo: retrying PostgreSQL on port $PGW_DEMO_PGPORT"
done
psql_super=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGW_DEMO_PGPORT" -U postgres)
echo "demo: PostgreSQL on port $PGW_DEMO_PGPORT"
"${psql_super[@]}" -d postgres -c "CREATE DATABASE demo"
"${psql_super[@]}" -d demo -f "$repo/contrib/demo/schema.sql" >/dev/null
echo "demo: loaded contrib/demo/schema.sql (tenants acme and globex)"

# -- the LLM -----------------------------------------------------------------
export PGW_DEMO_LLM_URL PGW_DEMO_LLM_MODEL PGW_DEMO_LLM_KEY
PGW_DEMO_LLM_URL=${OPENAI_BASE_URL:-https://api.openai.com/v1}
PGW_DEMO_LLM_MODEL=${OPENAI_MODEL:-gpt-4o-mini}
PGW_DEMO_LLM_KEY=${OPENAI_API_KEY:-}
fake_llm=
for candidate in "$repo/contrib/fake-llm/fake-llm" "$repo/contrib/fake-llm/fake_llm.py" \
                 "$repo/contrib/fake-llm/server.py"; do
    if [ -f "$candidate" ]; then fake_llm=$candidate; break; fi
done
if [ -n "$fake_llm" ]; then
    llm_port=$(pick_port 18080)
    llm_args=(--port "$llm_port")
    # canned answers for the questions the demo suggests
    llm_args+=(--script "$repo/contrib/fake-llm/demo-script.json")
    case "$fake_llm" in
        *.py) /usr/bin/python3 "$fake_llm" "${llm_args[@]}" >"$work/fake-llm.log" 2>&1 & ;;
        *) "$fake_llm" "${llm_args[@]}" >"$work/fake-llm.log" 2>&1 & ;;
    esac
    llm_pid=$!
    wait_for_port "$llm_port" "the stand-in LLM ($fake_llm)" "$llm_pid"
    PGW_DEMO_LLM_URL="http://127.0.0.1:$llm_port/v1"
    PGW_DEMO_LLM_MODEL=fake
    PGW_DEMO_LLM_KEY=fake
    echo "demo: stand-in LLM on port $llm_port"
elif [ -z "$PGW_DEMO_LLM_KEY" ]; then
    echo "demo: no contrib/fake-llm and no OPENAI_API_KEY: ASK will report the LLM unreachable"
fi

# -- pgwarden ----------------------------------------------------------------
"$pgwarden_bin" "$repo/contrib/demo/pgwarden.ini" >"$work/pgwarden.log" 2>&1 &
pgwarden_pid=$!
if ! wait_for_port "$PGW_DEMO_PORT" pgwarden "$pgwarden_pid"; then
    cat "$work/pgwarden.log" >&2
    exit 1
fi

conn() { echo "host=127.0.0.1 port=$PGW_DEMO_PORT user=$1 dbname=$2 password=$1"; }

if [ "$smoke" = yes ]; then
    echo "demo: smoke test"
    PGCONNECT_TIMEOUT=10 psql -X -v ON_ERROR_STOP=1 -d "$(conn alice acme)" \
        -c "SELECT count(*) AS acme_customers FROM customers"
    PGCONNECT_TIMEOUT=10 psql -X -v ON_ERROR_STOP=1 -d "$(conn bob globex)" \
        -c "SELECT name, category, price FROM products ORDER BY id LIMIT 3"
    if [ -n "$fake_llm" ]; then
        ask_out=$(PGCONNECT_TIMEOUT=10 psql -X -v ON_ERROR_STOP=1 -d "$(conn alice acme)" \
            -c "ASK which five customers spent the most" 2>&1)
        echo "$ask_out"
        grep -q "NOTICE:  ask: SELECT" <<<"$ask_out" || { echo "demo: ASK gave no NOTICE" >&2; exit 1; }
    fi
    echo "demo: smoke test passed"
    exit 0
fi

echo
echo "pgwarden is running on port $PGW_DEMO_PORT. Connect as one of the demo users:"
echo
printf '  %-76s # %s\n' \
    "psql \"$(conn alice acme)\"" "tenant acme" \
    "psql \"$(conn bob globex)\"" "tenant globex" \
    "psql \"$(conn carol globex)\"" "carol may pick acme or globex" \
    "psql \"$(conn admin pgwarden)\"" "admin console: SHOW POOLS;"
cat <<EOT

Things to try:
  SELECT name, email, ssn FROM customers LIMIT 5;     -- own rows only, email hashed, ssn partial
  SELECT * FROM internal_notes;                       -- hidden table: 42P01
  DELETE FROM orders;                                 -- refused: 42501
  ASK which five customers spent the most in 2024;
  EXPLAIN ASK revenue by product category;

Logs: $work/pgwarden.log. Press Ctrl-C to stop everything.
EOT
wait "$pgwarden_pid" || true
echo "demo: pgwarden exited; last log lines:"
tail -n 20 "$work/pgwarden.log"
