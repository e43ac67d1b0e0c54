#!/usr/bin/env bash
# format.sh — apply the pinned C style (.clang-format) to every C file of the
# project, or with --check list the files that differ and exit 1.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
clang_format=${CLANG_FORMAT:-clang-format}
mapfile -t files < <(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'contrib/*.c')

if [ "${1:-}" = --check ]; then
    bad=0
    for f in "${files[@]}"; do
        if ! "$clang_format" --style=file "$f" | cmp -s - "$f"; then
            echo "format: $f differs from .clang-format (run scripts/format.sh)"
            bad=1
        fi
    done
    exit "$bad"
fi
"$clang_format" --style=file -i "${files[@]}"
