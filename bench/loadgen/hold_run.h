// HoldRun: the `hold` workload of the load generator. It opens `peers` peers
// spread over several edges (`targets`), keeps them connected with
// keepalives, and reconnects every peer whose stream ends, as the existing
// peers do (contract §1: they reconnect when the stream ends with a non-OK
// status): after a jittered exponential backoff, on an edge chosen at random
// among those it has not tried since it was last connected. So when an edge
// dies its peers find their way to the others.
//
// It prints, for the cluster benchmark (bench/cluster/hundred_thousand.sh)
// to read:
//   hold: full connected=<n> unix_ms=<t> ...   each time every peer is
//                                              connected again
//   hold: status unix_ms=<t> connected=<n> ... every `status_interval`
// A peer counts as connected from its first EdgeMessage (sent only after
// admission, so after its claim) until its stream ends.
//
// The run ends after `duration` or on SIGTERM/SIGINT; it is bounded in
// peers, in connection attempts at once and in time.
#ifndef EDGE_BENCH_LOADGEN_HOLD_RUN_H_
#define EDGE_BENCH_LOADGEN_HOLD_RUN_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "load_peer.h"

namespace edge::loadgen {

struct HoldRunOptions {
  // The edges, "host:port" each (at most 64); a peer starts on target
  // (index % size).
  std::vector<std::string> targets;
  int peers = 100;
  std::string peer_prefix = "lg";  // peer ids are <prefix>-<index>
  int ramp_concurrency = 256;      // connection attempts at once, at most
  // An attempt not admitted or refused within this is cancelled, and retried.
  absl::Duration connect_timeout = absl::Seconds(30);
  absl::Duration duration = absl::Minutes(10);
  absl::Duration keepalive_interval = absl::Seconds(30);
  // Reconnection delay: a peer that was connected waits a random time up to
  // `backoff_initial`; each failed attempt after it doubles the bound, up to
  // `backoff_max`; the wait is drawn between half the bound and the bound.
  absl::Duration backoff_initial = absl::Milliseconds(500);
  absl::Duration backoff_max = absl::Seconds(4);
  absl::Duration status_interval = absl::Seconds(1);
  LoadPeerOptions peer;
};

// Runs until `duration` has passed or SIGTERM/SIGINT arrives (the handlers
// are installed here). InvalidArgument for bad options.
absl::Status RunHold(const HoldRunOptions& options);

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_HOLD_RUN_H_
