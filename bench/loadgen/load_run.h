// LoadRun: one bounded run of the load generator against an edge (or the
// echo server): opens the peers, samples the server, runs a workload, closes
// the peers, and reports.
//
// Workloads (all open `peers` first, the connection ramp):
//   ramp      only the ramp: peers/s admitted, admission latency, RSS per peer
//   idle      the ramp, then the peers stay connected for `duration`
//             (keepalives only), sampling the server's memory
//   messages  peer messages → events: each ack means the event was stored;
//             open loop at `message_rate`/s, or closed loop with `window`
//             messages in flight per peer when the rate is 0
//   commands  backend commands → peers at `command_rate`/s through the sink
//   mix       messages (open loop) and commands at once
// Every phase is bounded in time; the run stops by itself.
#ifndef EDGE_BENCH_LOADGEN_LOAD_RUN_H_
#define EDGE_BENCH_LOADGEN_LOAD_RUN_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "command_sink.h"
#include "load_peer.h"

namespace edge::loadgen {

struct LoadRunOptions {
  // The server: every host in turn (distinct 127.0.0.x spread the
  // connections over several ephemeral port ranges), one port.
  std::vector<std::string> hosts = {"127.0.0.1"};
  int port = 0;
  // Local addresses the peers connect from, in turn (IPv4; empty: the
  // kernel picks, 127.0.0.1 for every loopback host). Distinct home peers
  // have distinct remote addresses; from one source the same client port
  // can serve connections to two hosts, and a server that tells
  // connections apart by remote address:port (edged's per-connection
  // stream bound) would count them as one.
  std::vector<std::string> sources;

  int peers = 100;
  std::string peer_prefix = "lg";
  // Ramp: at most this many peers connecting at once, and at most
  // `ramp_rate` started per second (0: no rate limit).
  int ramp_concurrency = 256;
  double ramp_rate = 0;
  absl::Duration connect_timeout = absl::Seconds(30);
  // Peer counts at which the ramp pauses to sample the server's memory.
  std::vector<int> checkpoints;
  absl::Duration settle = absl::Seconds(2);

  std::string workload = "ramp";
  absl::Duration duration = absl::Seconds(10);
  double message_rate = 0;
  int window = 1;
  double command_rate = 0;
  CommandSink* sink = nullptr;  // required for commands and mix
  absl::Duration keepalive_interval = absl::Seconds(30);
  absl::Duration drain_timeout = absl::Seconds(10);

  pid_t server_pid = 0;  // 0: no server samples
  // Another process whose CPU over the workload window is reported
  // (broker_cpu_pct): a broker in its own process. 0: none.
  pid_t broker_pid = 0;
  std::string label;  // echoed in the RESULT line
  LoadPeerOptions peer;
};

// What a run measured; Result() renders the machine-readable line.
struct LoadReport {
  std::map<std::string, std::string> fields;
  std::string Result() const;  // "RESULT key=value ..."
};

absl::StatusOr<LoadReport> RunLoad(const LoadRunOptions& options);

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_LOAD_RUN_H_
