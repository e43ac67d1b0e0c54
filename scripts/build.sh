#!/usr/bin/env bash
# build.sh — configure and build pgwarden.
#
# By default builds in the source tree, leaving ./pgwarden. Set BUILD_DIR to
# build out of tree instead (the source tree must then be unconfigured), e.g.
#   BUILD_DIR=/tmp/build bash scripts/build.sh
# Extra arguments go to configure. Re-running only redoes what changed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-$repo}

cd "$repo"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
    echo "build: autoreconf"
    autoreconf -fi
fi

mkdir -p "$build_dir"
cd "$build_dir"
if [ ! -f Makefile ] || [ "$repo/configure" -nt config.status ] || [ $# -gt 0 ]; then
    echo "build: configure $*"
    "$repo/configure" -q "$@"
fi
echo "build: make"
make -j"$(nproc)"
echo "build: $build_dir/pgwarden"
