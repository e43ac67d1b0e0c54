#!/usr/bin/env bash
# test.sh — everything CI runs: dependencies, build, C unit tests (make check),
# the integration suite and the real-client suite (pytest against a throwaway
# PostgreSQL the tests start themselves), the demo smoke test, then the
# reliability stages: a 60-second smoke run of each libFuzzer target, the unit
# tests and the integration suite against an ASan+UBSan build, and a one-minute
# soak. The integration suites run on every CPU (scripts/pytest.sh), and the
# two clang builds of the reliability stages are made ahead, at idle
# priority, while they run. Exits non-zero if anything failed and ends with
# one line: "N passed, N failed".
#
# Environment:
#   BUILD_DIR=DIR      build out of tree (default: in the source tree)
#   SKIP_DEPS=1        do not run scripts/install-deps.sh
#   PYTEST_ARGS="..."  extra pytest arguments, e.g. "-x" or "-k reload"
#   PGW_TEST_TIMEOUT=N per-test time limit in seconds (default 60)
#   PGW_TEST_JOBS=N    pytest-xdist workers for the integration suites (default:
#                      the number of CPUs; 1 = one plain pytest run), scripts/pytest.sh
#   FUZZ_SMOKE_SECONDS=N  seconds per fuzz target (default 60)
#   SKIP_FUZZ=1, SKIP_SANITIZE=1, SKIP_SOAK=1  leave a reliability stage out
#                      (for quick local runs; CI runs them all)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$repo}
python=/usr/bin/python3  # Debian's python: the one with psycopg and pytest
results=$(mktemp -d /tmp/pgwarden-test.XXXXXX)
prebuild_pid=
trap '[ -n "$prebuild_pid" ] && kill -- "$prebuild_pid" 2>/dev/null; rm -rf "$results"' EXIT

passed=0
failed=0
skipped=0
status=0

# Each stage's wall time, printed at the end (the CI budget is ~15 minutes).
stage_names=()
stage_starts=()
step() {
    stage_names+=("$*")
    stage_starts+=("$SECONDS")
    printf '\n=== %s\n' "$*"
}

stage_times() {
    local i n=${#stage_names[@]} end
    [ "$n" -gt 0 ] || return 0
    echo "stage times:"
    for ((i = 0; i < n; i++)); do
        end=$SECONDS
        [ $((i + 1)) -lt "$n" ] && end=${stage_starts[$((i + 1))]}
        printf '  %5d s  %s\n' $((end - stage_starts[i])) "${stage_names[i]}"
    done
    printf '  %5d s  in all\n' "$SECONDS"
}

finish() {
    echo
    stage_times
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
    # scripts/pytest.sh runs the tests on PGW_TEST_JOBS workers, then the
    # `serial` ones alone (their report: NAME-serial.xml).
    # PYTEST_ARGS is split into words on purpose.
    # shellcheck disable=SC2086
    if ! PGWARDEN_BIN="$build_dir/pgwarden" timeout --kill-after=30 "$budget" \
            bash "$repo/scripts/pytest.sh" "$results/$name.xml" ${PYTEST_ARGS:-} "$@"; then
        status=1
        ok=no
    fi
    count_pytest_results "$results/$name.xml"
    if [ -e "$results/$name-serial.xml" ]; then
        count_pytest_results "$results/$name-serial.xml"
    fi
    # a failing run must show up in the count even if no test was reported failed
    if [ "$ok" = no ] && [ "$failed" -eq "$before" ]; then
        failed=$((failed + 1))
    fi
}

# A stage that prints "N passed, N failed" as its last such line: its counts
# join the totals (a stage that failed without saying so counts as one
# failure, one that printed nothing but passed as one test).
run_counted() {
    local name=$1 budget=$2
    shift 2
    step "$name"
    local log=$results/$name.log rc line p f
    timeout --kill-after=30 "$budget" "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        read -r p f <<<"$(echo "$line" | tr -dc '0-9 ' | tr -s ' ')"
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            failed=$((failed + 1))
        fi
    elif [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
    if [ "$rc" -ne 0 ]; then
        echo "test: stage $name failed (exit $rc)" >&2
        status=1
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

# Reliability (DEVELOPERS.md, "Fuzzing, sanitizers and soak"). Their build
# directories sit beside BUILD_DIR when it is set, in /tmp otherwise.
if [ -n "${BUILD_DIR:-}" ]; then
    export FUZZ_DIR=${FUZZ_DIR:-$BUILD_DIR-fuzz} SAN_BUILD_DIR=${SAN_BUILD_DIR:-$BUILD_DIR-asan}
fi

# Their two clang builds (the fuzz targets, the ASan tree) need nothing but
# CPU time, and the integration suites leave some of it idle while their
# tests wait on sockets, timers and child processes. So both are built
# ahead, in the background, at SCHED_IDLE priority (nice 19 where chrt
# cannot): the kernel gives such a process a CPU only when no other process
# wants one, so the tests beside it run as they would alone. The fuzz and
# sanitizer stages wait for it, then run their own make, which finds nothing
# left to do (or, had the build ahead failed, builds and reports as before).
prebuild_pid=
if [ "${SKIP_FUZZ:-0}" != 1 ] || [ "${SKIP_SANITIZE:-0}" != 1 ]; then
    idle=(chrt --idle 0)
    "${idle[@]}" true 2>/dev/null || idle=(nice -n 19)
    (
        [ "${SKIP_FUZZ:-0}" = 1 ] || "${idle[@]}" bash "$repo/scripts/fuzz.sh" --build
        [ "${SKIP_SANITIZE:-0}" = 1 ] || "${idle[@]}" bash "$repo/scripts/sanitize.sh" --build
    ) >"$results/prebuild.log" 2>&1 &
    prebuild_pid=$!
fi

run_pytest integration 900 tests/integration --ignore=tests/integration/test_clients.py
# one module: nothing to run beside it
PGW_TEST_JOBS=1 run_pytest clients 300 tests/integration/test_clients.py

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

if [ -n "$prebuild_pid" ]; then
    step "fuzz and ASan builds (what the background build had left)"
    wait "$prebuild_pid"
    prebuild_pid=
    grep -E 'took|failed' "$results/prebuild.log"
fi
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    run_counted fuzz-smoke 900 bash "$repo/scripts/fuzz.sh" --smoke "${FUZZ_SMOKE_SECONDS:-60}"
fi
if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
    run_counted sanitizers 1500 bash "$repo/scripts/sanitize.sh"
fi
if [ "${SKIP_SOAK:-0}" != 1 ]; then
    run_counted soak-smoke 300 env PGWARDEN_BIN="$build_dir/pgwarden" \
        "$python" "$repo/contrib/bench/soak.py" --smoke --summary
fi

finish
