#!/usr/bin/env bash
# Builds the benchmarks in Release and runs every measurement of
# docs/performance.md on this machine, each against a fresh server:
#   echo     edge_echo_server: a bare gRPC callback server (the raw limit)
#   memory   edge_bench_edge: the edge core + GrpcPeerTransport + LocalTracker
#            on an in-memory bus (FakeMessageBus), commands fed over TCP
#   kafka    edged on its embedded Kafka broker (librdkafka's mock cluster)
# then prints one table. Every run is bounded in peers and time.
#
#   bench/run.sh            the full set (about 10 minutes)
#   bench/run.sh --quick    small peer counts and short runs, no overflow run
#
# Environment: BUILD_DIR (default build-bench), OUT_DIR (default
# $BUILD_DIR/bench-results), PEERS (default 1000: routing runs), RAMP_PEERS
# (default 5000: admission runs), IDLE_PEERS (default 19500), DURATION
# (default 10s), LOADGEN_NICE (default 0: the load generator's nice value).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
OUT=${OUT_DIR:-$BUILD/bench-results}
PEERS=${PEERS:-1000}
RAMP_PEERS=${RAMP_PEERS:-5000}
IDLE_PEERS=${IDLE_PEERS:-19500}
DURATION=${DURATION:-10s}
RAMP_CONCURRENCY=${RAMP_CONCURRENCY:-64}
# The load generator shares the cores with the server it measures. A nice
# value above 0 lowers its priority; measured at 10 (docs/performance.md)
# the servers then batched less and spent about twice the CPU per message,
# so the default leaves both at the same priority.
LOADGEN_NICE=${LOADGEN_NICE:-0}
CHECKPOINTS=1000,2000,5000,10000,15000
QUICK=0
if [[ "${1:-}" == "--quick" ]]; then
  QUICK=1 PEERS=200 RAMP_PEERS=1000 IDLE_PEERS=2000 DURATION=3s CHECKPOINTS=500,1000
fi
# Distinct loopback destinations: each has its own ephemeral port range.
HOSTS=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
ninja -C "$BUILD" edged edge_loadgen edge_echo_server edge_bench_edge core_bench > /dev/null
BIN=$BUILD/bench/loadgen
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: > "$RESULTS"

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2> /dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2> /dev/null || break; sleep 0.2; done
    kill -0 "$SERVER_PID" 2> /dev/null && kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2> /dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT

# wait_for FILE REGEX: waits up to 30 s for a line of FILE to match.
wait_for() {
  for _ in $(seq 300); do
    grep -qE "$2" "$1" 2> /dev/null && return 0
    sleep 0.1
  done
  echo "run.sh: timed out waiting for /$2/ in $1" >&2
  cat "$1" >&2
  return 1
}

# start_server echo|memory|kafka: sets SERVER_PID, PORT, SINK (loadgen flags
# that reach the server's command topic).
start_server() {
  local log=$OUT/server-$1-$RANDOM.log
  case $1 in
    echo)
      "$BIN/edge_echo_server" --port=0 --max_seconds=900 > "$log" 2>&1 &
      SERVER_PID=$!
      wait_for "$log" 'listening port='
      PORT=$(sed -n 's/.*listening port=\([0-9]*\).*/\1/p' "$log")
      SINK=()
      ;;
    memory)
      "$BIN/edge_bench_edge" --port=0 --feed_port=0 --max_seconds=900 > "$log" 2>&1 &
      SERVER_PID=$!
      wait_for "$log" 'listening port='
      PORT=$(sed -n 's/.*listening port=\([0-9]*\).*/\1/p' "$log")
      SINK=(--feed=127.0.0.1:$(sed -n 's/.* feed=\([0-9]*\).*/\1/p' "$log"))
      ;;
    kafka)
      # The mock cluster answers an empty fetch only after fetch.wait.max.ms:
      # keep it short so that command latency is the edge's, not the wait.
      printf 'consumer.fetch.wait.max.ms=5\n' > "$OUT/kafka.properties"
      EDGE_ID=bench GRPC_SERVER_ADDRESS=0.0.0.0:0 METRICS_ADDRESS= MAX_PEERS=20000 \
        KAFKA_CONFIG_FILE=$OUT/kafka.properties LOG_LEVEL=info \
        "$BUILD/edged/edged" > "$log" 2>&1 &
      SERVER_PID=$!
      wait_for "$log" 'Kafka partitions assigned'
      PORT=$(sed -n 's/.*edged listening .* grpc=[^ ]*:\([0-9]*\) .*/\1/p' "$log")
      SINK=(--kafka="$(sed -n 's/.*edged listening .* kafka=\([^ ]*\).*/\1/p' "$log")"
            --command_topic=edge-commands-bench)
      ;;
  esac
}

# run LABEL SERVER LOADGEN-FLAGS...: one loadgen run against a fresh server.
run() {
  local label=$1 server=$2
  shift 2
  start_server "$server"
  echo "== $label ($server)"
  nice -n "$LOADGEN_NICE" "$BIN/edge_loadgen" --port="$PORT" --hosts=$HOSTS --server_pid="$SERVER_PID" \
    --label="$label" "${SINK[@]}" "$@" | tee "$OUT/$label.txt" | grep -v '^RESULT' | sed 's/^/   /'
  grep '^RESULT' "$OUT/$label.txt" >> "$RESULTS"
  stop_server
}

# field LABEL KEY: a value of a run's RESULT line ("-" if absent).
field() {
  local v
  v=$(grep " label=$1 " "$RESULTS" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1)
  echo "${v:--}"
}

# 1. Connection ramp: admission rate and latency, RSS per peer.
for s in echo memory kafka; do
  run "ramp-$s" $s --peers="$RAMP_PEERS" --workload=ramp --ramp_concurrency="$RAMP_CONCURRENCY"
done
# 2. Routing: peer messages -> events -> acks, closed loop, 4 in flight per peer.
for s in echo memory kafka; do
  run "messages-$s" $s --peers="$PEERS" --workload=messages --window=4 --duration="$DURATION"
done
# 3. Commands -> peers: the maximum (offered above it), then half of it.
for s in memory kafka; do
  run "commands-max-$s" $s --peers="$PEERS" --workload=commands --command_rate=40000 \
    --duration="$DURATION" --answer_commands=false
  max=$(field "commands-max-$s" cmds_per_s)
  half=$(( ${max%.*} / 2 ))
  run "commands-half-$s" $s --peers="$PEERS" --workload=commands --command_rate="$half" \
    --duration="$DURATION" --answer_commands=false
done
# 4. Mix at moderate rates.
for s in memory kafka; do
  run "mix-$s" $s --peers="$PEERS" --workload=mix --message_rate=5000 --command_rate=2000 \
    --duration="$DURATION"
done
# 5. Idle peers up to the descriptor limit, memory sampled on the way.
for s in echo memory kafka; do
  run "idle-$s" $s --peers="$IDLE_PEERS" --workload=idle --duration=5s --checkpoints=$CHECKPOINTS \
    --ramp_concurrency="$RAMP_CONCURRENCY" --connect_timeout=60s
done
# 6. Beyond the limit: the edge refuses with RESOURCE_EXHAUSTED (not in --quick).
if [[ $QUICK == 0 ]]; then
  run "overflow-kafka" kafka --peers=19900 --workload=ramp --ramp_concurrency="$RAMP_CONCURRENCY" \
    --connect_timeout=60s --settle=1s
fi

echo "== core microbenchmarks"
"$BUILD/bench/core/core_bench" --benchmark_min_time=0.5 2>&1 | tee "$OUT/core_bench.txt" |
  grep -E '^(BM_|Benchmark|-)' | sed 's/^/   /'

ratio() {  # ratio A B: A/B as a percentage
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.0f %%", 100 * a / b }'
}
echo
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load generator at nice $LOADGEN_NICE; commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
printf '| %-44s | %-12s | %-12s | %-12s | %-22s |\n' figure "edge memory" "edge kafka" "echo" "edge/echo (mem, kafka)"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..24})"
row() {  # row TITLE RUNPREFIX KEY [ratio]
  local m k e
  m=$(field "$2-memory" "$3"); k=$(field "$2-kafka" "$3"); e=$(field "$2-echo" "$3")
  local r="-"
  [[ "${4:-}" == ratio ]] && r="$(ratio "$m" "$e"), $(ratio "$k" "$e")"
  printf '| %-44s | %-12s | %-12s | %-12s | %-22s |\n' "$1" "$m" "$k" "$e" "$r"
}
row "admission, peers/s ($RAMP_PEERS peers)" ramp ramp_peers_per_s ratio
row "admission: server CPU ms per peer" ramp ramp_cpu_ms_per_peer
row "admission p50 ms" ramp admission_p50_ms
row "admission p99 ms" ramp admission_p99_ms
row "messages -> acks, msg/s ($PEERS peers)" messages msgs_per_s ratio
row "ack p50 ms" messages ack_p50_ms
row "ack p99 ms" messages ack_p99_ms
row "ack p99.9 ms" messages ack_p999_ms
row "messages: server CPU us per message" messages cpu_us_per_msg
row "messages: server CPU, % of a core" messages server_cpu_pct
row "commands max, cmd/s" commands-max cmds_per_s
row "commands max: server CPU us per command" commands-max cpu_us_per_msg
row "commands at half max: rate, cmd/s" commands-half cmds_per_s
row "commands at half max: p50 ms" commands-half command_p50_ms
row "commands at half max: p99 ms" commands-half command_p99_ms
row "commands at half max: p99.9 ms" commands-half command_p999_ms
row "mix: msg/s" mix msgs_per_s
row "mix: cmd/s" mix cmds_per_s
row "mix: ack p99 ms" mix ack_p99_ms
row "mix: command p99 ms" mix command_p99_ms
row "idle peers held" idle admitted
row "idle: KiB RSS per peer (whole ramp)" idle rss_per_peer_kib ratio
for c in ${CHECKPOINTS//,/ }; do
  row "idle: KiB/peer slope up to $c peers" idle "kib_per_peer_slope_to_$c"
done
row "idle: descriptors per peer" idle fds_per_peer
echo
[[ $QUICK == 0 ]] && echo "Beyond the limit (edged, 19900 asked): admitted $(field overflow-kafka admitted), refused $(field overflow-kafka refused_codes), never settled $(field overflow-kafka unsettled)"
echo "Raw results: $RESULTS"
