// ReconnectingPeers: many peers speaking to a cluster of edges like real
// Giggityflix peers: one AsyncOperations stream each (gRPC callback API, a
// connection of its own per peer and edge, no thread per peer), admitted
// once the edge's first message arrives; when a stream ends with a non-OK
// status the peer tries the next live edge after a jittered backoff that
// grows while it is refused (gRPC's reconnect backoff: x1.6, +-20 %, capped).
// An OK end is final, as for a real peer.
//
//   edge::testing::ReconnectingPeers peers({.count = 300, .addresses = addrs});
//   for (int i = 0; i < 300; ++i) peers.Connect(i, i % 3);
//   WaitFor([&] { return peers.AdmittedOn({0, 1, 2}) == 300; });
//
// Thread-safe.
#ifndef EDGE_TESTS_SUPPORT_RECONNECTING_PEERS_H_
#define EDGE_TESTS_SUPPORT_RECONNECTING_PEERS_H_

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"

namespace edge::testing {

class ReconnectingPeers {
 public:
  struct Options {
    int count = 0;
    // The edges' gRPC addresses ("host:port"), by edge index.
    std::vector<std::string> addresses;
    // Peer i is "<id_prefix><i>".
    std::string id_prefix = "peer-";
    absl::Duration first_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(5);
    // Called on gRPC's threads for every message an edge writes to peer
    // `peer` (index) on edge `edge`; must not block.
    std::function<void(int peer, int edge, const giggityflix_grpc_peer::EdgeMessage& message)>
        on_message;
  };

  explicit ReconnectingPeers(Options options);
  // Cancels every open stream and waits until all have ended.
  ~ReconnectingPeers();
  ReconnectingPeers(const ReconnectingPeers&) = delete;
  ReconnectingPeers& operator=(const ReconnectingPeers&) = delete;

  std::string PeerId(int peer) const;
  // Opens a stream for `peer` to edge `edge` now.
  void Connect(int peer, int edge);
  // The edges reconnecting peers go round (all of them at first).
  void SetLiveEdges(std::vector<int> edges);
  // Peers admitted on one of `edges`.
  int AdmittedOn(const std::vector<int>& edges);
  // The edge `peer` is admitted on; -1 when none.
  int AdmittedEdge(int peer);
  // Peers admitted nowhere, with the status their last stream ended with.
  std::vector<std::string> NotAdmitted();
  // Streams that ended with OK (the peer then stays away).
  int EndedOk();

 private:
  class Stream;

  void Admitted(int peer, int edge);
  void Ended(int peer, bool was_admitted, const grpc::Status& status);
  void Finished(Stream* stream);
  void RunReconnects();

  const Options options_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int ended_ok_ ABSL_GUARDED_BY(mu_) = 0;
  // Streams whose call runs, and those that ended (kept until the end).
  std::map<Stream*, std::unique_ptr<Stream>> open_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Stream>> done_ ABSL_GUARDED_BY(mu_);
  std::vector<int> admitted_on_ ABSL_GUARDED_BY(mu_);
  std::vector<int> live_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, int> due_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> backoff_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int, std::string> last_status_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<int, int>, std::unique_ptr<giggityflix_grpc_peer::PeerEdgeService::Stub>>
      stubs_ ABSL_GUARDED_BY(mu_);
  std::mt19937 random_ ABSL_GUARDED_BY(mu_){42};
  absl::flat_hash_map<int, int> attempts_ ABSL_GUARDED_BY(mu_);
  std::thread reconnector_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_RECONNECTING_PEERS_H_
