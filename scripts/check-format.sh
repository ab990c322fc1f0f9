#!/usr/bin/env bash
# Fails when a C++ source differs from what clang-format (.clang-format) makes
# of it, listing the files. `scripts/check-format.sh --fix` rewrites them.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/clang-format.$$; then
  grep -o '^[^:]*:[0-9]*:[0-9]*: error' /tmp/clang-format.$$ | cut -d: -f1 | sort -u \
    | sed 's/^/not formatted: /' >&2
  rm -f /tmp/clang-format.$$
  echo "run: bash scripts/check-format.sh --fix" >&2
  exit 1
fi
rm -f /tmp/clang-format.$$
