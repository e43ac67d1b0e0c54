#!/usr/bin/env bash
# pytest.sh — one integration-suite run the way test.sh and sanitize.sh run
# it: the tests in parallel with pytest-xdist, then the tests marked
# `serial` alone.
#
#   bash scripts/pytest.sh XML [pytest arguments...]
#
# Pass 1 (PGW_TEST_SERIAL=skip): every test not marked `serial`, on JOBS
# workers (PGW_TEST_JOBS, default: the number of CPUs), `--dist loadfile` so
# that a module, its module-scoped gateways and the order of its tests stay
# in one worker; each worker has its own PostgreSQL and Redis (see "Parallel
# runs" in tests/integration/conftest.py). JUnit report: XML.
# Pass 2 (PGW_TEST_SERIAL=only): the `serial` tests, in one process, nothing
# beside them. JUnit report: XML with .xml replaced by -serial.xml (not
# written when no test is marked, or all are deselected).
#
# With PGW_TEST_JOBS=1, or without pytest-xdist (python3-pytest-xdist), it is
# one plain pytest run in collection order, serial tests included, report XML.
#
# Runs from the repository root; PGWARDEN_BIN, PYTEST_ARGS-style arguments
# and the harness's other variables pass through. Exits non-zero when either
# pass failed, 5 when neither had a test to run (pytest's "no tests
# collected"; one empty pass is not a failure).
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=/usr/bin/python3
xml=$1
shift
jobs=${PGW_TEST_JOBS:-$(nproc)}
serial_xml=${xml%.xml}-serial.xml
rm -f "$xml" "$serial_xml"
cd "$repo" || exit 1

if [ "$jobs" -le 1 ] || ! "$python" -c 'import xdist' 2>/dev/null; then
    exec "$python" -m pytest -q -p no:cacheprovider --junitxml="$xml" "$@"
fi

echo "pytest: $jobs workers (--dist loadfile), then the serial tests alone"
PGW_TEST_SERIAL=skip "$python" -m pytest -q -p no:cacheprovider -n "$jobs" --dist loadfile \
    --junitxml="$xml" "$@"
parallel=$?
PGW_TEST_SERIAL=only "$python" -m pytest -q -p no:cacheprovider --junitxml="$serial_xml" "$@"
serial=$?
# 5 is pytest's "no tests collected": fine for one pass, not for both.
[ "$serial" -eq 5 ] && rm -f "$serial_xml"
if [ "$parallel" -eq 5 ] && [ "$serial" -eq 5 ]; then
    exit 5
fi
for rc in "$parallel" "$serial"; do
    [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || exit 1
done
exit 0
