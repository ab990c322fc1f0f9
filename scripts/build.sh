#!/usr/bin/env bash
# Configures and builds everything into ${BUILD_DIR:-build} (Release-like
# RelWithDebInfo by default; BUILD_TYPE=Release for benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
