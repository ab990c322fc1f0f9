#!/usr/bin/env bash
# Builds the fuzzers with clang, libFuzzer, ASan and UBSan in BUILD_DIR and
# runs each for SECONDS from the seed corpus in tests/fuzz/corpus/<name>
# (new inputs are kept in BUILD_DIR/corpus/<name>). Exits non-zero on any
# finding; the reproducer is left in BUILD_DIR/artifacts/.
#
#   tests/fuzz/run_fuzzers.sh SOURCE_DIR BUILD_DIR [SECONDS]
set -euo pipefail
source_dir=$(cd "$1" && pwd)
build_dir=$2
seconds=${3:-30}
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)

generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  CC=clang CXX=clang++ cmake -S "$source_dir" -B "$build_dir" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGE_FUZZ=ON -DEDGE_SANITIZE=address,undefined \
    -DEDGE_BUILD_BENCH=OFF -DEDGE_BUILD_EXAMPLES=OFF >"$build_dir/configure.log" ||
    { cat "$build_dir/configure.log"; exit 1; }
fi
fuzzers=(command_decoder peer_message)
cmake --build "$build_dir" --parallel "$(nproc)" \
  --target "${fuzzers[@]/#/fuzz_}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for name in "${fuzzers[@]}"; do
  corpus="$build_dir/corpus/$name"
  artifacts="$build_dir/artifacts"
  mkdir -p "$corpus" "$artifacts"
  echo "== fuzz_$name for ${seconds}s"
  if ! "$build_dir/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$name-" \
      "$corpus" "$source_dir/tests/fuzz/corpus/$name" 2>"$build_dir/fuzz_$name.log"; then
    tail -n 80 "$build_dir/fuzz_$name.log"
    echo "fuzz_$name found a problem; reproducer in $artifacts" >&2
    status=1
  else
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+.*DONE)" \
      "$build_dir/fuzz_$name.log" || true
  fi
done
exit $status
