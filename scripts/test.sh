#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (ctest on both cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Formatting first: drift from .clang-format fails the run before any build.
bash scripts/check-format.sh
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j "$(nproc)" "$@"

# --- Sanitizer stage -------------------------------------------------------
# The whole suite again (except the fuzz test, which has its own ASan build),
# built with clang, ASan + UBSan and the thread-safety analysis
# (-Werror=thread-safety: a wrong or missing ABSL_GUARDED_BY /
# ABSL_EXCLUSIVE_LOCKS_REQUIRED fails the build) in
# ${ASAN_BUILD_DIR:-build-asan}; any report fails the run.
# EDGE_SKIP_SANITIZE=1 skips it. Measured on the 2-core CI machine with
# other builds running: the normal stage builds in 8 min (7 min of CPU) and
# tests in 2.3 min plus 5 min for the fuzz test; this one (clang) builds in
# about 15 min of CPU, as the gcc ASan build did (load made its wall time
# 40-60 min), and tests in 3.2 min. Both stages
# together stay inside CI's 90 minutes.
if [ "${EDGE_SKIP_SANITIZE:-0}" != 1 ]; then
  cd "$OLDPWD"  # back to the repository root, where the script started
  asan_dir="${ASAN_BUILD_DIR:-build-asan}"
  # A directory configured with another compiler keeps it: start it afresh.
  if [ -f "$asan_dir/CMakeCache.txt" ] &&
     ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' "$asan_dir/CMakeCache.txt"; then
    rm -rf "$asan_dir/CMakeCache.txt" "$asan_dir/CMakeFiles"
  fi
  CC=clang CXX=clang++ BUILD_DIR="$asan_dir" bash scripts/build.sh \
    -DEDGE_SANITIZE=address,undefined -DEDGE_THREAD_SAFETY=ON
  cd "$asan_dir"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure --timeout 900 -j "$(nproc)" -LE fuzz
fi
