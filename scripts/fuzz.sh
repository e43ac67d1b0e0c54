#!/usr/bin/env bash
# fuzz.sh — build and run pgwarden's libFuzzer targets (tests/fuzz/fuzz_*.c).
#
#   bash scripts/fuzz.sh --smoke 60         each target 60 s, two at a time (test.sh)
#   bash scripts/fuzz.sh --time 3600 policy one target for an hour
#   bash scripts/fuzz.sh --runs 10000000    each target until 10M executions (the
#                                           benchmark in contrib/bench/README.md)
#   bash scripts/fuzz.sh --regress          every seed (and tests/fuzz/regress/) once
#   bash scripts/fuzz.sh --build            build only
#
# Targets default to all of them; name some (codec auth userlist config policy ask)
# to run only those. Builds with clang (-fsanitize=fuzzer,address,undefined) into
# FUZZ_DIR (default /tmp/pgwarden-fuzz): objects, binaries, each target's working
# corpus (new inputs the fuzzer found; the checked-in seeds in tests/fuzz/corpus/
# are only read) and crash artifacts. JOBS (default 2) targets run at once.
#
# Ends with one line per target (executions, executions per second, result)
# and "N passed, N failed" (one test per target); exits non-zero when any
# target crashed, leaked, hit UB or timed out; the crashing input's path and
# the sanitizer's report are printed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_dir=${FUZZ_DIR:-/tmp/pgwarden-fuzz}
jobs=${JOBS:-2}
mode=time
seconds=60
runs=0
targets=()

while [ $# -gt 0 ]; do
    case $1 in
        --smoke|--time) mode=time; seconds=$2; shift 2 ;;
        --runs) mode=runs; runs=$2; shift 2 ;;
        --regress) mode=regress; shift ;;
        --build) mode=build; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

# Symbolized reports (and function-name suppressions) need llvm-symbolizer.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]; then
    export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$repo"/tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets+=("${t#fuzz_}")
    done
fi

echo "fuzz: building into $fuzz_dir"
if ! make -s -f "$repo/tests/fuzz/fuzz.mk" SRC="$repo" O="$fuzz_dir" -j"$(nproc)"; then
    echo "fuzz: build failed" >&2
    exit 1
fi
echo "fuzz: build took $SECONDS s"
[ "$mode" = build ] && exit 0

# What a sanitizer report must look like to fail a run: every report aborts
# (fuzz builds use -fno-sanitize-recover), leaks are checked at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

mkdir -p "$fuzz_dir/work" "$fuzz_dir/artifacts" "$fuzz_dir/logs"

# run_one TARGET: one libFuzzer run, its log in logs/TARGET.log, its summary
# line in logs/TARGET.result.
run_one() {
    local t=$1 bin=$fuzz_dir/bin/fuzz_$1 log=$fuzz_dir/logs/$1.log
    local seeds=$repo/tests/fuzz/corpus/$t work=$fuzz_dir/work/$t
    local args=(-timeout=120 -rss_limit_mb=4096 -print_final_stats=1
                -artifact_prefix="$fuzz_dir/artifacts/$t-")
    [ -f "$repo/tests/fuzz/$t.dict" ] && args+=(-dict="$repo/tests/fuzz/$t.dict")
    rm -f "$log.result"
    mkdir -p "$work"
    local dirs=("$work" "$seeds")
    [ -d "$repo/tests/fuzz/regress/$t" ] && dirs+=("$repo/tests/fuzz/regress/$t")
    case $mode in
        time) args+=(-max_total_time="$seconds") ;;
        runs) args+=(-runs="$runs") ;;
        regress) args+=(-runs=0) ;;
    esac
    local start=$SECONDS rc
    "$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    rc=$?
    local elapsed=$((SECONDS - start)) execs
    execs=$(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+$')
    execs=${execs:-0}
    local rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    if [ $rc -eq 0 ]; then
        printf '%-9s %12s execs %8s/s %6ss  ok\n' "$t" "$execs" "$rate" "$elapsed" >"$log.result"
    else
        printf '%-9s %12s execs %8s/s %6ss  FAILED (exit %s, log %s)\n' \
            "$t" "$execs" "$rate" "$elapsed" "$rc" "$log" >"$log.result"
    fi
    return $rc
}

status=0
running=0
for t in "${targets[@]}"; do
    if [ ! -x "$fuzz_dir/bin/fuzz_$t" ]; then
        echo "fuzz: no target $t" >&2
        status=1
        continue
    fi
    echo "fuzz: $t ($mode)"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || status=1
    running=$((running - 1))
done

echo
passed=0
failed=0
for t in "${targets[@]}"; do
    log=$fuzz_dir/logs/$t.log
    if [ ! -f "$log.result" ]; then
        failed=$((failed + 1))
        continue
    fi
    cat "$log.result"
    if grep -q ' ok$' "$log.result"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "---- $t: the report (tail of $log)"
        grep -nE 'ERROR:|SUMMARY:|runtime error|Test unit written|^    #[0-9]+ ' "$log" | head -n 40
        echo "----"
    fi
done
echo "$passed passed, $failed failed"
exit $status
