#!/usr/bin/env bash
# Builds the benchmarks in Release and runs every measurement of
# docs/performance.md on this machine, each against a fresh server:
#   echo     edge_echo_server --push: a bare gRPC callback server (the raw
#            limit); it acknowledges messages and pushes the fed commands
#   memory   edge_bench_edge: the edge core + GrpcPeerTransport + LocalTracker
#            on an in-memory bus (FakeMessageBus), commands fed over TCP
#   kafka    edged on its embedded Kafka broker (librdkafka's mock cluster)
#   broker   edged on a Kafka-protocol broker in its own process
#            (edge_kafka_broker, librdkafka's mock cluster)
# then prints one table. Every run is bounded in peers and time.
#
#   bench/run.sh            the full set (about 12 minutes)
#   bench/run.sh --quick    small peer counts and short runs, no overflow run
#   bench/run.sh --commands commands in memory against the bare server's
#                           push (issue 15 item 2): for ROUNDS rounds (default
#                           3), the maximum (40,000/s offered) then half of it,
#                           edge_bench_edge and the echo server alternating
#   bench/run.sh --ratios   admission and messages against the bare server
#                           (issue 15 item 5): for ROUNDS rounds (default
#                           3) the 5,000-peer ramp and the messages run on
#                           the echo server, in memory and on edged, in an
#                           order that rotates; prints each round's ratios
#                           and their medians
#   bench/run.sh --broker   commands through a broker in its own process
#                           (issue 15 item 1): RUNS runs (default 3) of
#                           BROKER_RATE (default 20000) commands/s offered
#
# Environment: BUILD_DIR (default build-bench), OUT_DIR (default
# $BUILD_DIR/bench-results), PEERS (default 1000: routing runs), RAMP_PEERS
# (default 5000: admission runs), IDLE_PEERS (default 19500), DURATION
# (default 10s), WINDOW (default 4: messages in flight per peer in the
# messages runs), LOADGEN_NICE (default 0: the load generator's nice value),
# SERVER_CPUS and LOADGEN_CPUS (default unset: taskset CPU lists).
# --broker: COMMAND_PARTITIONS (default 8: the command topic's partitions),
# TOPIC_PARTITIONS (default 8: every other topic's), ANSWER_COMMANDS (default
# false: whether the peers answer, adding their answers as events).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-bench}
OUT=${OUT_DIR:-$BUILD/bench-results}
PEERS=${PEERS:-1000}
RAMP_PEERS=${RAMP_PEERS:-5000}
IDLE_PEERS=${IDLE_PEERS:-19500}
DURATION=${DURATION:-10s}
WINDOW=${WINDOW:-4}
RAMP_CONCURRENCY=${RAMP_CONCURRENCY:-64}
# The load generator shares the cores with the server it measures. A nice
# value above 0 lowers its priority; measured at 10 (docs/performance.md)
# the servers then batched less and spent about twice the CPU per message,
# so the default leaves both at the same priority.
LOADGEN_NICE=${LOADGEN_NICE:-0}
# SERVER_CPUS, LOADGEN_CPUS (default unset: both use every core): taskset
# CPU lists, e.g. SERVER_CPUS=0 LOADGEN_CPUS=1, so that the load generator
# cannot take the server's core (servers and brokers share SERVER_CPUS).
PIN_SERVER=() PIN_LOADGEN=()
[[ -n ${SERVER_CPUS:-} ]] && PIN_SERVER=(taskset -c "$SERVER_CPUS")
[[ -n ${LOADGEN_CPUS:-} ]] && PIN_LOADGEN=(taskset -c "$LOADGEN_CPUS")
CHECKPOINTS=1000,2000,5000,10000,15000
QUICK=0
MODE=full
case "${1:-}" in
  "") ;;
  --quick) QUICK=1 PEERS=200 RAMP_PEERS=1000 IDLE_PEERS=2000 DURATION=3s CHECKPOINTS=500,1000 ;;
  --commands) MODE=commands ;;
  --broker) MODE=broker ;;
  --ratios) MODE=ratios ;;
  *) echo "usage: bench/run.sh [--quick | --commands | --ratios | --broker]" >&2; exit 2 ;;
esac
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-3}
BROKER_RATE=${BROKER_RATE:-20000}
COMMAND_PARTITIONS=${COMMAND_PARTITIONS:-8}
TOPIC_PARTITIONS=${TOPIC_PARTITIONS:-8}
ANSWER_COMMANDS=${ANSWER_COMMANDS:-false}
# The peers connect from eight loopback addresses to one: like home peers,
# each connection has its own remote address:port (from one source the
# kernel may give the same client port to connections to two destinations,
# which edged's per-connection stream bound counts as one connection), and
# each source has its own ephemeral port range.
SOURCES=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7,127.0.0.8

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
case $MODE in
  full) ninja -C "$BUILD" edged edge_loadgen edge_echo_server edge_bench_edge core_bench > /dev/null ;;
  commands) ninja -C "$BUILD" edge_loadgen edge_echo_server edge_bench_edge > /dev/null ;;
  ratios) ninja -C "$BUILD" edged edge_loadgen edge_echo_server edge_bench_edge > /dev/null ;;
  # edge_kafka_broker is built with the tests (tests/support).
  broker) ninja -C "$BUILD" edged edge_loadgen edge_kafka_broker > /dev/null ;;
esac
BIN=$BUILD/bench/loadgen
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: > "$RESULTS"

SERVER_PID=""
BROKER_PID=""
# stop PID: SIGTERM, then SIGKILL after 20 s.
stop() {
  if [[ -n "$1" ]] && kill -0 "$1" 2> /dev/null; then
    kill -TERM "$1"
    for _ in $(seq 100); do kill -0 "$1" 2> /dev/null || break; sleep 0.2; done
    kill -0 "$1" 2> /dev/null && kill -KILL "$1"
    wait "$1" 2> /dev/null || true
  fi
}
stop_server() {
  stop "$SERVER_PID"
  SERVER_PID=""
  stop "$BROKER_PID"
  BROKER_PID=""
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
      # The edge's edge_id, so that acknowledgements and commands have the
      # edge's sizes.
      "${PIN_SERVER[@]}" "$BIN/edge_echo_server" --port=0 --push --feed_port=0 --edge_id=bench --max_seconds=900 \
        > "$log" 2>&1 &
      SERVER_PID=$!
      wait_for "$log" 'listening port='
      PORT=$(sed -n 's/.*listening port=\([0-9]*\).*/\1/p' "$log")
      SINK=(--feed=127.0.0.1:$(sed -n 's/.* feed=\([0-9]*\).*/\1/p' "$log"))
      ;;
    memory)
      "${PIN_SERVER[@]}" "$BIN/edge_bench_edge" --port=0 --feed_port=0 --max_seconds=900 > "$log" 2>&1 &
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
        "${PIN_SERVER[@]}" "$BUILD/edged/edged" > "$log" 2>&1 &
      SERVER_PID=$!
      wait_for "$log" 'Kafka partitions assigned'
      PORT=$(sed -n 's/.*edged listening .* grpc=[^ ]*:\([0-9]*\) .*/\1/p' "$log")
      SINK=(--kafka="$(sed -n 's/.*edged listening .* kafka=\([^ ]*\).*/\1/p' "$log")"
            --command_topic=edge-commands-bench)
      ;;
    broker)
      # The broker first, in its own process, with every topic edged uses.
      local blog=$OUT/broker-$RANDOM.log
      "${PIN_SERVER[@]}" "$BUILD/tests/support/edge_kafka_broker" "edge-commands-bench:$COMMAND_PARTITIONS" \
        "edge-commands-bench.deadletter:$TOPIC_PARTITIONS" \
        "peer-lifecycle-events:$TOPIC_PARTITIONS" "peer-catalog-updates:$TOPIC_PARTITIONS" \
        "file-delete-responses:$TOPIC_PARTITIONS" "file-hash-responses:$TOPIC_PARTITIONS" \
        "peer-file-offers:$TOPIC_PARTITIONS" "webrtc-signaling:$TOPIC_PARTITIONS" > "$blog" 2>&1 &
      BROKER_PID=$!
      wait_for "$blog" '^bootstrap='
      local bootstrap
      bootstrap=$(sed -n 's/^bootstrap=//p' "$blog")
      printf 'consumer.fetch.wait.max.ms=5\n' > "$OUT/kafka.properties"
      EDGE_ID=bench GRPC_SERVER_ADDRESS=0.0.0.0:0 METRICS_ADDRESS= MAX_PEERS=20000 TRACKER=local \
        KAFKA_BOOTSTRAP_SERVERS=$bootstrap KAFKA_CONFIG_FILE=$OUT/kafka.properties LOG_LEVEL=info \
        "${PIN_SERVER[@]}" "$BUILD/edged/edged" > "$log" 2>&1 &
      SERVER_PID=$!
      wait_for "$log" 'Kafka partitions assigned'
      PORT=$(sed -n 's/.*edged listening .* grpc=[^ ]*:\([0-9]*\) .*/\1/p' "$log")
      SINK=(--kafka="$bootstrap" --command_topic=edge-commands-bench)
      ;;
  esac
}

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# run LABEL SERVER LOADGEN-FLAGS...: one loadgen run against a fresh server.
# Besides the loadgen's RESULT fields, records the 1-minute load average at
# the start (load_start).
run() {
  local label=$1 server=$2
  shift 2
  local load_start
  load_start=$(loadavg)
  start_server "$server"
  echo "== $label ($server)"
  local broker=()
  [[ -n "$BROKER_PID" ]] && broker=(--broker_pid="$BROKER_PID")
  "${PIN_LOADGEN[@]}" nice -n "$LOADGEN_NICE" "$BIN/edge_loadgen" --port="$PORT" --hosts=127.0.0.1 --sources=$SOURCES --server_pid="$SERVER_PID" \
    --label="$label" "${SINK[@]}" "${broker[@]}" "$@" | tee "$OUT/$label.txt" |
    grep -v '^RESULT' | sed 's/^/   /'
  echo "$(grep '^RESULT' "$OUT/$label.txt") load_start=$load_start " >> "$RESULTS"
  stop_server
}

# field LABEL KEY: a value of a run's RESULT line ("-" if absent).
field() {
  local v
  v=$(grep " label=$1 " "$RESULTS" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1)
  echo "${v:--}"
}

ratio() {  # ratio A B: A/B as a percentage
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.0f %%", 100 * a / b }'
}
# median V...: the middle value (the lower middle of an even count).
median() { printf '%s\n' "$@" | grep -v '^-$' | sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : "-"}'; }
commit_line() {
  echo "Machine: $(nproc) cores, $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); load generator at nice $LOADGEN_NICE; CPUs: server ${SERVER_CPUS:-all}, load generator ${LOADGEN_CPUS:-all}; commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
}

if [[ $MODE == commands ]]; then
  # Issue 15 item 2: the edge's command path in memory against a bare gRPC
  # server pushing the same commands, alternating, fresh servers each run.
  for r in $(seq "$ROUNDS"); do
    order="memory echo"
    (( r % 2 == 0 )) && order="echo memory"
    for s in $order; do
      run "commands-max-$s-$r" $s --peers="$PEERS" --workload=commands --command_rate=40000 \
        --duration="$DURATION" --answer_commands=false
      max=$(field "commands-max-$s-$r" cmds_per_s)
      run "commands-half-$s-$r" $s --peers="$PEERS" --workload=commands \
        --command_rate="$(( ${max%.*} / 2 ))" --duration="$DURATION" --answer_commands=false
    done
  done
  echo
  commit_line
  echo
  echo "| run | server | load | max cmd/s | CPU us/cmd at max | loadgen CPU % at max | half: cmd/s | p50 ms | p99 ms | p99.9 ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for r in $(seq "$ROUNDS"); do
    for s in memory echo; do
      echo "| $r | $s | $(field "commands-max-$s-$r" load_start) | $(field "commands-max-$s-$r" cmds_per_s) | $(field "commands-max-$s-$r" cpu_us_per_msg) | $(field "commands-max-$s-$r" loadgen_cpu_pct) | $(field "commands-half-$s-$r" cmds_per_s) | $(field "commands-half-$s-$r" command_p50_ms) | $(field "commands-half-$s-$r" command_p99_ms) | $(field "commands-half-$s-$r" command_p999_ms) |"
    done
  done
  for s in memory echo; do
    maxes=() cpus=() p99s=()
    for r in $(seq "$ROUNDS"); do
      maxes+=("$(field "commands-max-$s-$r" cmds_per_s)")
      cpus+=("$(field "commands-max-$s-$r" cpu_us_per_msg)")
      p99s+=("$(field "commands-half-$s-$r" command_p99_ms)")
    done
    declare "MED_MAX_$s=$(median "${maxes[@]}")" "MED_CPU_$s=$(median "${cpus[@]}")"
    echo "median $s: max $(median "${maxes[@]}") cmd/s, CPU $(median "${cpus[@]}") us/cmd, p99 at half $(median "${p99s[@]}") ms"
  done
  echo "edge/echo, medians: max $(ratio "$MED_MAX_memory" "$MED_MAX_echo"), CPU per command $(awk -v a="$MED_CPU_memory" -v b="$MED_CPU_echo" 'BEGIN { if (b > 0) printf "%.2f x", a / b; else print "-" }')"
  echo "Raw results: $RESULTS"
  exit 0
fi

if [[ $MODE == ratios ]]; then
  # Issue 15 item 5: admission and messages of the edge (memory, kafka)
  # against the bare server, each round on fresh servers. Run to run these
  # move by a quarter on this host, so each ratio is taken within a round
  # and the medians are of those.
  servers=(echo memory kafka)
  for r in $(seq "$ROUNDS"); do
    for i in 0 1 2; do
      s=${servers[$(( (i + r - 1) % 3 ))]}
      run "ramp-$s-$r" $s --peers="$RAMP_PEERS" --workload=ramp --ramp_concurrency="$RAMP_CONCURRENCY"
      run "messages-$s-$r" $s --peers="$PEERS" --workload=messages --window="$WINDOW" --duration="$DURATION"
    done
  done
  echo
  commit_line
  echo
  echo "| round | admission peers/s echo / memory / kafka | memory, kafka of echo | messages msg/s echo / memory / kafka | memory, kafka of echo | µs per message echo / memory / kafka |"
  echo "|---|---|---|---|---|---|"
  adm_m=() adm_k=() msg_m=() msg_k=()
  pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.1f", 100 * a / b }'; }
  for r in $(seq "$ROUNDS"); do
    ae=$(field "ramp-echo-$r" ramp_peers_per_s) am=$(field "ramp-memory-$r" ramp_peers_per_s)
    ak=$(field "ramp-kafka-$r" ramp_peers_per_s)
    me=$(field "messages-echo-$r" msgs_per_s) mm=$(field "messages-memory-$r" msgs_per_s)
    mk=$(field "messages-kafka-$r" msgs_per_s)
    adm_m+=("$(pct "$am" "$ae")") adm_k+=("$(pct "$ak" "$ae")")
    msg_m+=("$(pct "$mm" "$me")") msg_k+=("$(pct "$mk" "$me")")
    echo "| $r | $ae / $am / $ak | ${adm_m[-1]} %, ${adm_k[-1]} % | $me / $mm / $mk | ${msg_m[-1]} %, ${msg_k[-1]} % | $(field "messages-echo-$r" cpu_us_per_msg) / $(field "messages-memory-$r" cpu_us_per_msg) / $(field "messages-kafka-$r" cpu_us_per_msg) |"
  done
  echo "medians of the rounds' ratios: admission $(median "${adm_m[@]}") % (memory), $(median "${adm_k[@]}") % (kafka); messages $(median "${msg_m[@]}") % (memory), $(median "${msg_k[@]}") % (kafka)"
  echo "Raw results: $RESULTS"
  exit 0
fi

if [[ $MODE == broker ]]; then
  # Issue 15 item 1: BROKER_RATE commands/s to PEERS peers through a broker in
  # its own process; kept up = >= 95 % delivered within the window, p99 <= 100 ms.
  for r in $(seq "$RUNS"); do
    run "broker-$r" broker --peers="$PEERS" --workload=commands --command_rate="$BROKER_RATE" \
      --duration="$DURATION" --answer_commands="$ANSWER_COMMANDS"
  done
  echo
  commit_line
  echo "Broker: edge_kafka_broker, command topic $COMMAND_PARTITIONS partitions, others $TOPIC_PARTITIONS; $PEERS peers; $BROKER_RATE commands/s offered for $DURATION; peers answer: $ANSWER_COMMANDS"
  echo
  echo "| run | load | produced | delivered in window | delivered % | p50 ms | p99 ms | p99.9 ms | edged CPU % | edged CPU us/cmd | broker CPU % | loadgen CPU % | kept up |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  kept=0
  for r in $(seq "$RUNS"); do
    l="broker-$r"
    ok=$(awk -v d="$(field "$l" delivered_pct)" -v p="$(field "$l" command_p99_ms)" \
      'BEGIN { print (d != "-" && p != "-" && d + 0 >= 95 && p + 0 <= 100) ? "yes" : "no" }')
    [[ $ok == yes ]] && kept=$((kept + 1))
    echo "| $r | $(field "$l" load_start) | $(field "$l" commands_produced) | $(field "$l" commands_in_window) | $(field "$l" delivered_pct) | $(field "$l" command_p50_ms) | $(field "$l" command_p99_ms) | $(field "$l" command_p999_ms) | $(field "$l" server_cpu_pct) | $(field "$l" cpu_us_per_msg) | $(field "$l" broker_cpu_pct) | $(field "$l" loadgen_cpu_pct) | $ok |"
  done
  echo "kept up in $kept of $RUNS runs"
  echo "Raw results: $RESULTS"
  exit 0
fi

# 1. Connection ramp: admission rate and latency, RSS per peer.
for s in echo memory kafka; do
  run "ramp-$s" $s --peers="$RAMP_PEERS" --workload=ramp --ramp_concurrency="$RAMP_CONCURRENCY"
done
# 2. Routing: peer messages -> events -> acks, closed loop, WINDOW in flight per peer.
for s in echo memory kafka; do
  run "messages-$s" $s --peers="$PEERS" --workload=messages --window="$WINDOW" --duration="$DURATION"
done
# 3. Commands -> peers: the maximum (offered above it), then half of it
# (the echo server pushes them: a bare server's limit).
for s in echo memory kafka; do
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
row "commands max, cmd/s" commands-max cmds_per_s ratio
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
