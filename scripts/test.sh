#!/usr/bin/env bash
# test.sh — everything CI runs: dependencies, build, C unit tests (make check),
# the integration suite and the real-client suite (pytest against a throwaway
# PostgreSQL the tests start themselves). Exits non-zero if anything failed and
# ends with one line: "N passed, N failed".
#
# Environment:
#   BUILD_DIR=DIR      build out of tree (default: in the source tree)
#   SKIP_DEPS=1        do not run scripts/install-deps.sh
#   PYTEST_ARGS="..."  extra pytest arguments, e.g. "-x" or "-k reload"
#   PGW_TEST_TIMEOUT=N per-test time limit in seconds (default 60)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$repo}
python=/usr/bin/python3  # Debian's python: the one with psycopg and pytest
results=$(mktemp -d /tmp/pgwarden-test.XXXXXX)
trap 'rm -rf "$results"' EXIT

passed=0
failed=0
skipped=0
status=0

step() { printf '\n=== %s\n' "$*"; }

finish() {
    echo
    [ "$skipped" -gt 0 ] && echo "($skipped skipped)"
    echo "$passed passed, $failed failed"
    exit "$status"
}

# Add one Check program's counts (or count the program as one test when it
# died before printing its summary).
count_unit_results() {
    local trs log line checks failures errors
    for trs in "$build_dir"/tests/unit/*.trs; do
        [ -e "$trs" ] || continue
        log=${trs%.trs}.log
        line=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" 2>/dev/null \
               | tail -n 1)
        if [ -n "$line" ]; then
            read -r checks failures errors <<<"$(echo "$line" | tr -dc '0-9 ' | tr -s ' ')"
            passed=$((passed + checks - failures - errors))
            failed=$((failed + failures + errors))
        elif grep -q ':test-result: PASS' "$trs"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
}

# Add pytest's counts from its JUnit XML report.
count_pytest_results() {
    local xml=$1
    if [ ! -s "$xml" ]; then
        failed=$((failed + 1))  # pytest itself died (or hit the outer timeout)
        return
    fi
    read -r p f s <<<"$("$python" - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skip = sum(int(s.get("skipped", 0)) for s in suites)
print(tests - bad - skip, bad, skip)
PY
)"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}

run_pytest() {
    local name=$1 budget=$2
    shift 2
    step "pytest: $name"
    local before=$failed ok=yes
    # The outer timeout is a backstop; each test has its own limit (conftest.py).
    # PYTEST_ARGS is split into words on purpose.
    # shellcheck disable=SC2086
    if ! (cd "$repo" && PGWARDEN_BIN="$build_dir/pgwarden" \
            timeout --kill-after=30 "$budget" "$python" -m pytest -q -p no:cacheprovider \
            --junitxml="$results/$name.xml" ${PYTEST_ARGS:-} "$@"); then
        status=1
        ok=no
    fi
    count_pytest_results "$results/$name.xml"
    # a failing run must show up in the count even if no test was reported failed
    if [ "$ok" = no ] && [ "$failed" -eq "$before" ]; then
        failed=$((failed + 1))
    fi
}

if [ "${SKIP_DEPS:-0}" != 1 ]; then
    step "install dependencies"
    if ! bash "$repo/scripts/install-deps.sh"; then
        echo "test: installing dependencies failed" >&2
        status=1
        failed=$((failed + 1))
        finish
    fi
fi

step "build"
if ! BUILD_DIR="$build_dir" bash "$repo/scripts/build.sh"; then
    echo "test: build failed" >&2
    status=1
    failed=$((failed + 1))
    finish
fi

# Source rules every change must keep: the pinned format (.clang-format),
# and the structure (no include cycle, layers, file length: check-source.py).
step "source checks"
if bash "$repo/scripts/format.sh" --check; then
    passed=$((passed + 1))
else
    echo "test: source checks failed" >&2
    failed=$((failed + 1))
    status=1
fi
if "$python" "$repo/scripts/check-source.py" "$repo/src"; then
    passed=$((passed + 1))
else
    echo "test: source structure checks failed" >&2
    failed=$((failed + 1))
    status=1
fi

step "unit tests (make check)"
before=$failed
unit_ok=yes
if ! make -C "$build_dir" -j"$(nproc)" check; then
    status=1
    unit_ok=no
    cat "$build_dir"/tests/unit/*.log 2>/dev/null | grep -E 'FAIL|Failures|Error' | head -n 50
fi
count_unit_results
if [ "$unit_ok" = no ] && [ "$failed" -eq "$before" ]; then
    failed=$((failed + 1))  # e.g. a unit test that does not compile
fi

run_pytest integration 900 tests/integration --ignore=tests/integration/test_clients.py
run_pytest clients 300 tests/integration/test_clients.py

# The README's first command must keep working: start the demo (throwaway
# PostgreSQL, stand-in LLM, pgwarden), run a few queries and an ASK, stop.
step "demo smoke test"
if SKIP_DEPS=1 PGWARDEN_BIN="$build_dir/pgwarden" timeout 300 bash "$repo/scripts/demo.sh" --smoke; then
    passed=$((passed + 1))
else
    echo "test: demo smoke test failed" >&2
    failed=$((failed + 1))
    status=1
fi

finish
