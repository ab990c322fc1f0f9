#!/usr/bin/env bash
# One cluster on this host, all on loopback: a real etcd, E edged processes
# (TRACKER=etcd, each with its embedded Kafka broker) and L load generators
# (`edge_loadgen --workload=hold`, peers that reconnect when their stream
# ends), holding N peers at once (default 100,000). It measures:
#   - the time to admit all N (load generators started -> every peer
#     connected), and that etcd then holds exactly N `{prefix}peers/` claims;
#   - RSS per peer of the edges and of etcd (/proc VmRSS, before and after);
#   - CPU (utime+stime from /proc) of the edges and etcd holding them idle
#     for a window;
#   - after SIGKILL of one edge: the seconds until all its peers are
#     connected again on the others (their claims free after the dead edge's
#     lease, TRACKER_LEASE_TTL_SEC), and, when edged publishes `edge_lost`
#     events, the seconds until all of them are on the lifecycle topics;
#   - then every peer leaving at once (the load generators stopped): the
#     seconds until etcd holds no claim and no record, and whether any edge
#     lost its lease meanwhile.
# It builds nothing: build first, Release recommended:
#   BUILD_TYPE=Release BUILD_DIR=build-release bash scripts/build.sh
#   bench/cluster/hundred_thousand.sh --build=build-release
# Small check: bench/cluster/hundred_thousand.sh --peers=4000 --edges=2
#
# Options (all optional):
#   --build=DIR        build directory (default $BUILD_DIR, else build)
#   --edged=PATH       the edged binary (default DIR/edged/edged)
#   --peers=N          peers held at once (default 100000)
#   --edges=E          edged processes (default: enough at 19,500 peers each
#                      for all N, plus one, so that a dead edge's peers fit on
#                      the others)
#   --loadgens=L       load generators (default: 17,000 peers each at most)
#   --idle=S           the idle CPU window, seconds (default 30)
#   --admit-timeout=S  the longest wait for all peers (default 900)
#   --recover-timeout=S  the longest wait after the kill (default 180)
#   --leave-timeout=S  the longest wait, once every peer has left, for etcd
#                      to hold no claim and no record (default 120)
#   --lease-ttl=S      the edges' TRACKER_LEASE_TTL_SEC (default 10)
#   --backoff-max=S    the peers' longest wait between reconnection attempts
#                      (default 4; the first comes within 0.5 s, each failed
#                      one doubles the wait)
#   --out=DIR          logs (default a new /tmp/hundred_thousand.XXXXXX)
#   --etcd-data=DIR    etcd's data directory, created and removed (default
#                      OUT/etcd-data). etcd fsyncs every commit: on a disk
#                      busy with other work its WAL syncs take seconds and
#                      the edges' leases expire; a disk (or tmpfs, e.g.
#                      /dev/shm/etcd-bench) of its own stands in for the
#                      dedicated disk etcd has in production
#   --etcd-nice=N      run etcd at nice N (default 0; negative needs root).
#                      Here etcd shares two cores with the edges and load
#                      generators (load average ~40 while peers connect);
#                      starved, its apply loop lags, keepalives fail and
#                      leases expire. -10 stands in for the cores etcd has
#                      of its own in production
#   --port-range=LO-HI set net.ipv4.ip_local_port_range to LO-HI for the run
#                      and restore it at exit (root). All peers connect
#                      from 127.0.0.1 to 127.0.0.1; Linux's default range
#                      (32768-60999) leaves ~14,000 local ports per edge
#                      address for its ~14,000 connections, and each connect
#                      then probes for a free one (17 % of all CPU while a
#                      dead edge's peers reconnected). 1024-65535 stands in
#                      for peers that come from many addresses
# Environment: EDGE_LOG_LEVEL, the edges' LOG_LEVEL (default info; debug
# also logs each etcd batch: size, milliseconds, ops still queued).
# Each process stays under the 20,000-descriptor limit; every wait is
# bounded; everything started is stopped on exit (trap).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}
PEERS=100000
EDGES=0
LOADGENS=0
IDLE=30
ADMIT_TIMEOUT=900
RECOVER_TIMEOUT=180
LEAVE_TIMEOUT=120
LEASE_TTL=10
BACKOFF_MAX=4
OUT=""
EDGED=""
ETCD_DATA=""
ETCD_NICE=0
PORT_RANGE=""
PER_EDGE=19500     # peers one edge holds under the descriptor limit
PER_LOADGEN=17000  # peers one load generator opens (its descriptors too)

die() { echo "hundred_thousand.sh: $*" >&2; exit 2; }
for arg in "$@"; do
  case $arg in
    --build=*) BUILD=${arg#*=} ;;
    --edged=*) EDGED=${arg#*=} ;;
    --peers=*) PEERS=${arg#*=} ;;
    --edges=*) EDGES=${arg#*=} ;;
    --loadgens=*) LOADGENS=${arg#*=} ;;
    --idle=*) IDLE=${arg#*=} ;;
    --admit-timeout=*) ADMIT_TIMEOUT=${arg#*=} ;;
    --recover-timeout=*) RECOVER_TIMEOUT=${arg#*=} ;;
    --leave-timeout=*) LEAVE_TIMEOUT=${arg#*=} ;;
    --lease-ttl=*) LEASE_TTL=${arg#*=} ;;
    --backoff-max=*) BACKOFF_MAX=${arg#*=} ;;
    --out=*) OUT=${arg#*=} ;;
    --etcd-data=*) ETCD_DATA=${arg#*=} ;;
    --etcd-nice=*) ETCD_NICE=${arg#*=} ;;
    --port-range=*) PORT_RANGE=${arg#*=} ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d;s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $arg (see --help)" ;;
  esac
done
for v in PEERS EDGES LOADGENS IDLE ADMIT_TIMEOUT RECOVER_TIMEOUT LEASE_TTL BACKOFF_MAX; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v,,}: not a number: ${!v}"
done
[[ $ETCD_NICE =~ ^-?[0-9]+$ ]] || die "--etcd-nice: not a number: $ETCD_NICE"
[[ -z $PORT_RANGE || $PORT_RANGE =~ ^[0-9]+-[0-9]+$ ]] || die "--port-range: LO-HI, e.g. 1024-65535"
(( BACKOFF_MAX >= 1 )) || die "--backoff-max: at least 1"
(( PEERS > 0 )) || die "--peers: at least 1"
(( EDGES == 0 )) && EDGES=$(( (PEERS + PER_EDGE - 1) / PER_EDGE + 1 ))
(( LOADGENS == 0 )) && LOADGENS=$(( (PEERS + PER_LOADGEN - 1) / PER_LOADGEN ))
(( EDGES >= 2 )) || die "--edges: at least 2 (one is killed)"
(( EDGES <= 64 && LOADGENS >= 1 && LOADGENS <= 64 )) || die "--edges, --loadgens: 1 to 64"
(( (PEERS + EDGES - 2) / (EDGES - 1) <= PER_EDGE )) ||
  die "$PEERS peers do not fit on $((EDGES - 1)) edges after one is killed ($PER_EDGE each)"
# Every load generator has peers on the edge that is killed (its peers start
# on the edges in turn), so each reports their return.
(( PEERS / LOADGENS >= EDGES )) || die "each load generator needs at least $EDGES peers (one per edge)"
(( (PEERS + LOADGENS - 1) / LOADGENS <= PER_LOADGEN )) ||
  die "$PEERS peers need more than $LOADGENS load generators ($PER_LOADGEN each)"

[[ $BUILD = /* ]] || BUILD=$PWD/$BUILD
EDGED=${EDGED:-$BUILD/edged/edged}
LOADGEN=$BUILD/bench/loadgen/edge_loadgen
[[ -x $EDGED && -x $LOADGEN ]] ||
  die "$EDGED and $LOADGEN must be built first (BUILD_TYPE=Release bash scripts/build.sh)"
for tool in etcd etcdctl; do
  command -v $tool > /dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done
ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) >= PER_EDGE + 300 )) || echo "warning: descriptor limit $(ulimit -n)" >&2

OUT=${OUT:-$(mktemp -d /tmp/hundred_thousand.XXXXXX)}
mkdir -p "$OUT"
ETCD_DATA=${ETCD_DATA:-$OUT/etcd-data}
[[ ! -e $ETCD_DATA ]] || die "--etcd-data: $ETCD_DATA exists; name a new directory (it is removed at exit)"
PREFIX=/bench100k/
ETCD_PID="" EDGE_PIDS=() LG_PIDS=() KCAT_PIDS=() WATCH_PID="" LAG_PID=""
PORT_RANGE_FILE=/proc/sys/net/ipv4/ip_local_port_range
PORT_RANGE0=""
# running PID: the process exists and has not exited (an exited child of
# this shell stays a zombie, which `kill -0` still finds, until reaped).
running() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null) || return 1
  [[ -n $state && $state != Z ]]
}
# stop SECONDS PID...: SIGTERM, then SIGKILL what is left after SECONDS.
stop() {
  local seconds=$1 pid alive
  shift
  (( $# )) || return 0
  for pid in "$@"; do kill -TERM "$pid" 2> /dev/null || true; done
  for _ in $(seq $(( seconds * 10 ))); do
    alive=0
    for pid in "$@"; do running "$pid" && alive=1; done
    (( alive )) || break
    sleep 0.1
  done
  for pid in "$@"; do kill -KILL "$pid" 2> /dev/null || true; done
}
# Peers first, then the edges (which release their claims), then etcd.
cleanup() {
  [[ -n $WATCH_PID ]] && stop 1 "$WATCH_PID"
  [[ -n $LAG_PID ]] && stop 1 "$LAG_PID"
  stop 2 "${KCAT_PIDS[@]}"
  stop 15 "${LG_PIDS[@]}"
  stop 20 "${EDGE_PIDS[@]}"
  [[ -n $ETCD_PID ]] && stop 10 "$ETCD_PID"
  wait 2> /dev/null || true
  rm -rf "$ETCD_DATA"
  [[ -z $PORT_RANGE0 ]] || echo "$PORT_RANGE0" > "$PORT_RANGE_FILE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ -n $PORT_RANGE ]]; then
  old=$(tr -s '\t ' ' ' < "$PORT_RANGE_FILE")
  echo "${PORT_RANGE/-/ }" > "$PORT_RANGE_FILE" 2> /dev/null ||
    die "--port-range: cannot write $PORT_RANGE_FILE (root needed)"
  PORT_RANGE0=$old
fi

now_ms() { date +%s%3N; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
# wait_for FILE REGEX SECONDS
wait_for() {
  local deadline=$(( $(date +%s) + $3 ))
  until grep -qE "$2" "$1" 2> /dev/null; do
    (( $(date +%s) < deadline )) || { echo "timed out waiting for /$2/ in $1" >&2; tail -5 "$1" >&2; return 1; }
    sleep 0.1
  done
}
free_ports() {  # free_ports N: N loopback ports nothing listens on, below
  # the ephemeral range (the load generators' connections take those)
  local ports=() p
  for _ in $(seq 1000); do
    p=$(( 20000 + RANDOM % 12000 ))
    [[ " ${ports[*]} " == *" $p "* ]] && continue
    (exec 3<> "/dev/tcp/127.0.0.1/$p") 2> /dev/null && continue
    ports+=("$p")
    (( ${#ports[@]} == $1 )) && break
  done
  echo "${ports[*]}"
}

echo "== $PEERS peers, $EDGES edges, $LOADGENS load generators; logs in $OUT"
echo "   $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$ROOT" rev-parse --short HEAD 2> /dev/null || echo unknown)"

# etcd, on two free loopback ports.
read -r CPORT PPORT <<< "$(free_ports 2)"
ETCD_EP=127.0.0.1:$CPORT
nice -n "$ETCD_NICE" etcd --name=bench --data-dir="$ETCD_DATA" \
  --listen-client-urls="http://$ETCD_EP" --advertise-client-urls="http://$ETCD_EP" \
  --listen-peer-urls="http://127.0.0.1:$PPORT" --initial-advertise-peer-urls="http://127.0.0.1:$PPORT" \
  --initial-cluster="bench=http://127.0.0.1:$PPORT" --log-level=warn > "$OUT/etcd.log" 2>&1 &
ETCD_PID=$!
ctl() { etcdctl --endpoints="$ETCD_EP" --command-timeout=30s "$@"; }
for i in $(seq 100); do
  ctl endpoint health > /dev/null 2>&1 && break
  (( i < 100 )) || die "etcd did not become healthy (see $OUT/etcd.log)"
  sleep 0.2
done
claims() {  # claims: the number of {prefix}peers/ keys
  ctl get "${PREFIX}peers/" --prefix --keys-only --limit=1 -w json | sed -n 's/.*"count":\([0-9]*\).*/\1/p'
}

# The edges, each with its embedded Kafka broker and its own ports.
TARGETS=() KAFKAS=()
for e in $(seq 0 $((EDGES - 1))); do
  EDGE_ID=bench-e$e GRPC_SERVER_ADDRESS=127.0.0.1:0 METRICS_ADDRESS=127.0.0.1:0 MAX_PEERS=20000 \
    TRACKER=etcd ETCD_ENDPOINTS=$ETCD_EP TRACKER_KEY_PREFIX=$PREFIX TRACKER_LEASE_TTL_SEC=$LEASE_TTL \
    LOG_LEVEL=${EDGE_LOG_LEVEL:-info} "$EDGED" > "$OUT/edge-$e.log" 2>&1 &
  EDGE_PIDS+=($!)
done
for e in $(seq 0 $((EDGES - 1))); do
  wait_for "$OUT/edge-$e.log" 'Kafka partitions assigned' 60 || die "edge $e did not start"
  line=$(grep 'edged listening' "$OUT/edge-$e.log")
  TARGETS+=("$(sed -n 's/.* grpc=\([^ ]*\).*/\1/p' <<< "$line")")
  KAFKAS+=("$(sed -n 's/.* kafka=\([^ ]*\).*/\1/p' <<< "$line")")
  echo "   edge bench-e$e: pid ${EDGE_PIDS[$e]} grpc ${TARGETS[$e]} $(sed -n 's/.* \(metrics=[^ ]*\).*/\1/p' <<< "$line") kafka ${KAFKAS[$e]}"
done

sleep 2
rss_edges() { local s=0 p; for p in "$@"; do s=$(( s + $(rss_kib "$p") )); done; echo $s; }
EDGE_RSS0=$(rss_edges "${EDGE_PIDS[@]}")
ETCD_RSS0=$(rss_kib "$ETCD_PID")

# The load generators: peers <prefix>-<index>, each first on edge index % E.
# All connect from 127.0.0.1 to 127.0.0.1: edged tells connections apart
# by the client's address and port only (gRPC does not give it the local
# address), and one source port may serve connections to two local
# addresses. Linux then finds a connection's local port among the few left
# for one destination by probing (__inet_check_established: 17 % of all
# CPU while a dead edge's peers reconnected); a wider
# net.ipv4.ip_local_port_range makes that cheaper.
TARGET_LIST=$(IFS=,; echo "${TARGETS[*]}")
START_MS=$(now_ms)
for l in $(seq 0 $((LOADGENS - 1))); do
  n=$(( PEERS / LOADGENS + (l < PEERS % LOADGENS ? 1 : 0) ))
  "$LOADGEN" --workload=hold --targets="$TARGET_LIST" --peers=$n --peer_prefix=b$l \
    --ramp_concurrency=64 --reconnect_backoff_max=${BACKOFF_MAX}s --duration=$(( ADMIT_TIMEOUT + IDLE + RECOVER_TIMEOUT + 120 ))s \
    > "$OUT/loadgen-$l.log" 2>&1 &
  LG_PIDS+=($!)
done

# full_after MS: the latest "hold: full" time after MS over all load
# generators, or nothing while one of them has not been full since.
full_after() {
  local l t latest=0
  for l in $(seq 0 $((LOADGENS - 1))); do
    t=$(awk -v after="$1" '/^hold: full / { for (i = 1; i <= NF; i++) if ($i ~ /^unix_ms=/) { v = substr($i, 9); if (v + 0 > after + 0) { print v; exit } } }' "$OUT/loadgen-$l.log")
    [[ -n $t ]] || return 0
    (( t > latest )) && latest=$t
  done
  echo "$latest"
}
connected_now() {
  local l s=0 c
  for l in $(seq 0 $((LOADGENS - 1))); do
    c=$(grep '^hold: status' "$OUT/loadgen-$l.log" | tail -1 | sed -n 's/.* connected=\([0-9]*\).*/\1/p')
    s=$(( s + ${c:-0} ))
  done
  echo $s
}
# await_full AFTER_MS TIMEOUT_S: prints the time all were connected again.
await_full() {
  local deadline=$(( $(date +%s) + $2 )) t next=$(( $(date +%s) + 10 ))
  while :; do
    t=$(full_after "$1")
    [[ -n $t ]] && { echo "$t"; return 0; }
    for pid in "${LG_PIDS[@]}"; do running "$pid" || { echo "a load generator exited (see $OUT)" >&2; return 1; }; done
    (( $(date +%s) < deadline )) || { echo "timed out: $(connected_now) of $PEERS connected" >&2; return 1; }
    (( $(date +%s) >= next )) && { echo "   ... $(connected_now) of $PEERS connected" >&2; next=$(( next + 10 )); }
    sleep 0.2
  done
}

echo "== admission"
FULL_MS=$(await_full 0 "$ADMIT_TIMEOUT") || die "not all peers were admitted within ${ADMIT_TIMEOUT}s"
ADMIT_S=$(awk -v a="$FULL_MS" -v b="$START_MS" 'BEGIN { printf "%.2f", (a - b) / 1000 }')
CLAIMS=$(claims)
echo "   all $PEERS connected in $ADMIT_S s ($(awk -v n="$PEERS" -v s="$ADMIT_S" 'BEGIN { printf "%.0f", n / s }') peers/s); etcd holds $CLAIMS ${PREFIX}peers/ claims"
[[ $CLAIMS == "$PEERS" ]] || echo "   MISMATCH: $CLAIMS claims for $PEERS peers"

sleep 5  # keepalives and catalog updates settle
echo "== memory (VmRSS)"
EDGE_RSS1=$(rss_edges "${EDGE_PIDS[@]}")
ETCD_RSS1=$(rss_kib "$ETCD_PID")
for e in $(seq 0 $((EDGES - 1))); do
  echo "   edge bench-e$e: $(rss_kib "${EDGE_PIDS[$e]}") KiB, $(ls "/proc/${EDGE_PIDS[$e]}/fd" | wc -l) descriptors"
done
awk -v a="$EDGE_RSS0" -v b="$EDGE_RSS1" -v n="$PEERS" -v ea="$ETCD_RSS0" -v eb="$ETCD_RSS1" 'BEGIN {
  printf "   edges: %d -> %d KiB in all: %.2f KiB per peer\n", a, b, (b - a) / n
  printf "   etcd:  %d -> %d KiB: %.2f KiB per peer\n", ea, eb, (eb - ea) / n }'

echo "== idle CPU over ${IDLE}s"
declare -A T0
for p in "${EDGE_PIDS[@]}" "$ETCD_PID" "${LG_PIDS[@]}"; do T0[$p]=$(cpu_ticks "$p"); done
W0=$(now_ms)
sleep "$IDLE"
W1=$(now_ms)
EDGE_TICKS=0
LG_TICKS=0
for p in "${EDGE_PIDS[@]}"; do EDGE_TICKS=$(( EDGE_TICKS + $(cpu_ticks "$p") - T0[$p] )); done
for p in "${LG_PIDS[@]}"; do LG_TICKS=$(( LG_TICKS + $(cpu_ticks "$p") - T0[$p] )); done
ETCD_TICKS=$(( $(cpu_ticks "$ETCD_PID") - T0[$ETCD_PID] ))
awk -v et="$EDGE_TICKS" -v dt="$ETCD_TICKS" -v lt="$LG_TICKS" -v hz="$HZ" -v ms=$(( W1 - W0 )) -v n="$PEERS" 'BEGIN {
  w = ms / 1000
  printf "   edges: %.2f s CPU in %.1f s = %.1f %% of a core (%.2f %% per 1000 peers)\n", et / hz, w, 100 * et / hz / w, 100000 * et / hz / w / n
  printf "   etcd:  %.2f s CPU in %.1f s = %.1f %% of a core\n", dt / hz, w, 100 * dt / hz / w
  printf "   load generators (the peers): %.1f %% of a core\n", 100 * lt / hz / w }'
echo "   (connected now: $(connected_now) of $PEERS)"

echo "== SIGKILL of edge bench-e0"
VICTIM=${EDGE_PIDS[0]}
HELD=$(ctl get "${PREFIX}peers/" --prefix --print-value-only | grep -cw 'bench-e0' || true)
# From the kill on, in the background (each poll every 0.2 s, bounded):
# the dead edge's registration, under the same lease as its claims,
# vanishing is the lease's expiry; and, when edged publishes edge_lost
# events, one consumer per live edge keeps that edge's edge_lost events.
LOST=0
if grep -q 'edge_lost' "$EDGED" && command -v kcat > /dev/null; then
  LOST=1
  for e in $(seq 1 $((EDGES - 1))); do
    timeout $(( LEASE_TTL + RECOVER_TIMEOUT + 120 )) \
      kcat -C -b "${KAFKAS[$e]}" -t peer-lifecycle-events -o beginning -u -q -f '%s\n' \
      2> "$OUT/kcat-$e.log" > >(grep --line-buffered '"reason":"edge_lost"' > "$OUT/edge-lost-$e.txt") &
    KCAT_PIDS+=($!)
  done
fi
lost_events() { cat "$OUT"/edge-lost-*.txt 2> /dev/null | wc -l; }
(
  expired=0
  for _ in $(seq $(( (LEASE_TTL + RECOVER_TIMEOUT + 60) * 5 ))); do
    if (( !expired )) && [[ -z $(ctl get "${PREFIX}edges/bench-e0" --keys-only 2> /dev/null) ]]; then
      now_ms > "$OUT/lease-expired-ms"
      expired=1
    fi
    if (( LOST )) && (( $(lost_events) >= HELD )); then
      now_ms > "$OUT/edge-lost-ms"
      LOST=0
    fi
    (( expired && !LOST )) && break
    sleep 0.2
  done
) &
WATCH_PID=$!
KILL_MS=$(now_ms)
kill -KILL "$VICTIM"
wait "$VICTIM" 2> /dev/null || true  # reaped here, without the shell's "Killed" notice
echo "   it held $HELD claims; lease TTL ${LEASE_TTL}s"
BACK_MS=$(await_full "$KILL_MS" "$RECOVER_TIMEOUT") || die "its peers were not all re-admitted within ${RECOVER_TIMEOUT}s"
echo "   all $PEERS connected again $(awk -v a="$BACK_MS" -v b="$KILL_MS" 'BEGIN { printf "%.2f", (a - b) / 1000 }') s after the kill"
if [[ -s $OUT/lease-expired-ms ]]; then
  echo "   its lease expired $(awk -v a="$(cat "$OUT/lease-expired-ms")" -v b="$KILL_MS" 'BEGIN { printf "%.1f", (a - b) / 1000 }') s after the kill (polled every 0.2 s), all were back $(awk -v a="$BACK_MS" -v b="$(cat "$OUT/lease-expired-ms")" 'BEGIN { printf "%.1f", (a - b) / 1000 }') s after that (peers retry within 0.5 s, then with waits doubling up to ${BACKOFF_MAX} s, each on an edge not yet tried)"
fi
CLAIMS=$(claims)
LEFT=$(ctl get "${PREFIX}peers/" --prefix --print-value-only | grep -cw 'bench-e0' || true)
echo "   etcd holds $CLAIMS claims, $LEFT of them the dead edge's"

if (( LOST )); then
  deadline=$(( KILL_MS / 1000 + LEASE_TTL + 5 + 60 ))
  until [[ -s $OUT/edge-lost-ms ]] || (( $(date +%s) >= deadline )); do sleep 0.2; done
  if [[ -s $OUT/edge-lost-ms ]]; then
    echo "   $(lost_events) edge_lost events out $(awk -v a="$(cat "$OUT/edge-lost-ms")" -v b="$KILL_MS" 'BEGIN { printf "%.1f", (a - b) / 1000 }') s after the kill (contract: within TRACKER_LEASE_TTL_SEC + 5 s)"
  else
    echo "   only $(lost_events) of $HELD edge_lost events out by TTL + 65 s after the kill"
  fi
else
  echo "   edge_lost events: not available (this edged does not publish them, or kcat is missing)"
fi
echo "== every peer leaves at once (the load generators stopped)"
# As when a network cut takes all peers at once: every live edge ends all
# its streams and releases their claims together, while the same etcd
# answers every edge's keepalives. A lease lost here would end that edge's
# remaining claims as lost (edge_lost).
count_keys() {  # count_keys PREFIX: keys under it; fails when etcd does not answer
  local out n
  out=$(ctl get "$1" --prefix --keys-only --limit=1 -w json 2> /dev/null) || return 1
  [[ $out == *'"header"'* ]] || return 1
  n=$(sed -n 's/.*"count":\([0-9]*\).*/\1/p' <<< "$out")
  echo "${n:-0}"
}
log_count() { cat "$OUT"/edge-*.log | grep -c "$1" || true; }
LEASES_LOST0=$(log_count 'etcd lease lost')
RELEASE_FAILED0=$(log_count 'releasing a peer claim failed')
# etcd's apply lag (raft proposals committed, not yet applied) from its
# /metrics, every 0.5 s: whether etcd or the edges fall behind.
python3 - "$ETCD_EP" > "$OUT/leave-etcd-lag.txt" 2> /dev/null <<'PY' &
import sys, time, urllib.request
while True:
    try:
        text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=2).read().decode()
        m = {l.split()[0]: float(l.split()[1]) for l in text.splitlines()
             if l.startswith("etcd_server_proposals_")}
        print(int(time.time() * 1000), int(m["etcd_server_proposals_committed_total"]
              - m["etcd_server_proposals_applied_total"]), flush=True)
    except Exception:
        pass
    time.sleep(0.5)
PY
LAG_PID=$!
declare -A L0
SURVIVORS=("${EDGE_PIDS[@]:1}")
for p in "${SURVIVORS[@]}" "$ETCD_PID"; do L0[$p]=$(cpu_ticks "$p"); done
LEAVE_MS=$(now_ms)
stop 15 "${LG_PIDS[@]}"
LG_PIDS=()
CLEAR_MS=""
deadline=$(( LEAVE_MS / 1000 + LEAVE_TIMEOUT ))
while (( $(date +%s) < deadline )); do
  if [[ $(count_keys "${PREFIX}peers/") == 0 && $(count_keys "${PREFIX}claims/") == 0 ]]; then
    CLEAR_MS=$(now_ms)
    break
  fi
  sleep 0.2
done
if [[ -n $CLEAR_MS ]]; then
  echo "   etcd held no claim and no record $(awk -v a="$CLEAR_MS" -v b="$LEAVE_MS" 'BEGIN { printf "%.1f", (a - b) / 1000 }') s after the load generators were stopped"
else
  echo "   after ${LEAVE_TIMEOUT}s etcd still held $(count_keys "${PREFIX}peers/" || echo '?') claims and $(count_keys "${PREFIX}claims/" || echo '?') records"
fi
L1_MS=$(now_ms)
stop 1 "$LAG_PID"
EDGE_TICKS=0
for p in "${SURVIVORS[@]}"; do EDGE_TICKS=$(( EDGE_TICKS + $(cpu_ticks "$p") - L0[$p] )); done
ETCD_TICKS=$(( $(cpu_ticks "$ETCD_PID") - L0[$ETCD_PID] ))
awk -v et="$EDGE_TICKS" -v dt="$ETCD_TICKS" -v hz="$HZ" -v ms=$(( L1_MS - LEAVE_MS )) 'BEGIN {
  printf "   CPU over those %.1f s: edges %.0f %% of a core, etcd %.0f %%\n", ms / 1000, 100 * et / hz / (ms / 1000), 100 * dt / hz / (ms / 1000) }'
awk -v t0="$LEAVE_MS" '$1 >= t0 { n++; if ($2 > max) max = $2 } END {
  printf "   etcd apply lag (proposals committed, not applied; %d samples): at most %d\n", n, max }' "$OUT/leave-etcd-lag.txt"
echo "   leases lost meanwhile: $(( $(log_count 'etcd lease lost') - LEASES_LOST0 )) (edges: $((EDGES - 1))); releases etcd did not answer in time (each sent again): $(( $(log_count 'releasing a peer claim failed') - RELEASE_FAILED0 ))"
echo "== done; logs in $OUT"
