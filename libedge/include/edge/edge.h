// Edge: the edge service itself, independent of gRPC, Kafka and etcd.
//
// It admits peer streams (contract §2), turns peer messages into events
// (§3, §5), routes commands from the bus to peers (§4), relays WebRTC
// negotiation (§6), and ends peers that go quiet, and all of them on
// shutdown (§7). It talks to the world only through the interfaces it is
// given, which it borrows: they must outlive the Edge.
//
//   auto edge = edge::Edge::Create(options, {&transport, &bus, &tracker, &clock, &log});
//   if (!edge.ok()) return edge.status();
//   (*edge)->Start();
//   ...
//   (*edge)->Shutdown(clock.Now() + absl::Seconds(15));
#ifndef EDGE_EDGE_H_
#define EDGE_EDGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/clock.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "edge/metrics.h"
#include "edge/peer_transport.h"
#include "edge/tracker.h"

namespace edge {

enum class DuplicatePolicy { kReject, kReplace };

// Topic names of contract §5 and the command topics of §4, already resolved
// for this edge (no `{edge_id}` left).
struct Topics {
  std::string commands;
  std::string deadletter;
  std::string lifecycle = "peer-lifecycle-events";
  std::string catalog_updates = "peer-catalog-updates";
  std::string file_delete_responses = "file-delete-responses";
  std::string file_hash_responses = "file-hash-responses";
  std::string file_offers = "peer-file-offers";
  std::string webrtc_signaling = "webrtc-signaling";
};

struct EdgeOptions {
  std::string edge_id;
  Topics topics;
  // `{edge_id}` (or `{}`) is replaced by another edge's id to forward a
  // command to the edge that holds its peer.
  std::string commands_topic_pattern = "edge-commands-{edge_id}";
  int max_peers = 10000;
  DuplicatePolicy duplicate_policy = DuplicatePolicy::kReject;
  absl::Duration peer_timeout = absl::Seconds(120);
  size_t peer_send_queue_max = 1024;
  // PEER_SEND_QUEUE_MAX_BYTES: the same bound in bytes (each queued command
  // counts its message and its Kafka record). A command that would pass it,
  // unless the queue is empty, makes the peer slow (§4).
  size_t peer_send_queue_max_bytes = 16 * 1024 * 1024;
  // GRPC_MAX_MESSAGE_BYTES: a command that would not fit is dead-lettered.
  size_t max_message_bytes = 4 * 1024 * 1024;
  bool catalog_pull_on_connect = true;
  bool peer_id_from_cert = false;
  bool tracker_fail_open = false;
  absl::Duration tracker_timeout = absl::Seconds(5);
  absl::Duration webrtc_reply_timeout = absl::Seconds(10);
  absl::Duration webrtc_session_ttl = absl::Seconds(300);
  // WebRTC sessions one peer may have open at once; one more
  // stream_session_request is refused with RESOURCE_EXHAUSTED.
  int webrtc_max_sessions_per_peer = 32;
  // Peer messages per second, token bucket with one second of burst; 0: off.
  double peer_max_messages_per_sec = 1000;
  // Largest event record the bus accepts (value bytes; 0: no limit). A
  // catalog update over it is split into several records (docs/protocol.md);
  // any other peer message whose event would exceed it ends the peer's
  // stream with RESOURCE_EXHAUSTED rather than fail unseen at the bus.
  size_t max_event_bytes = 0;
  // New streams admitted per second across the edge (a reconnect storm is
  // refused with UNAVAILABLE rather than taken all at once), token bucket
  // with one second of burst; 0: off.
  double max_new_streams_per_sec = 0;
  // Streams ended per second by Drain().
  int drain_rate_per_sec = 500;
  // Contract §4: how long a command for a peer no edge holds waits for it
  // (0: not at all), and how many commands wait across the edge at most
  // (per peer, peer_send_queue_max).
  absl::Duration command_hold = absl::Seconds(30);
  size_t command_hold_max = 100000;
  // Row 5 of §2: false when the process has too few descriptors left to
  // take one more peer. Unset: always enough.
  std::function<bool()> has_descriptor_headroom;
};

// The parts the edge talks through; borrowed, not owned.
struct EdgeParts {
  PeerTransport* transport = nullptr;
  MessageBus* bus = nullptr;
  Tracker* tracker = nullptr;
  Clock* clock = nullptr;
  Logger* logger = nullptr;    // null: Logger::Null()
  Metrics* metrics = nullptr;  // null: NullMetrics()
};

// Counters for tests, logs and metrics; a consistent-enough snapshot.
struct EdgeStats {
  int64_t peers = 0;
  int64_t admitted = 0;
  int64_t rejected = 0;
  int64_t messages_in = 0;
  int64_t messages_unknown = 0;
  int64_t events_published = 0;
  int64_t commands_delivered = 0;
  int64_t commands_deadlettered = 0;
  int64_t commands_forwarded = 0;
  int64_t commands_held = 0;  // waiting for their peer now
  int64_t keepalives = 0;
};

// A peer held by this edge, as the operator sees it (contract §10).
struct PeerInfo {
  std::string peer_id;
  absl::Time connected_at;
  // Its last message (or admission).
  absl::Time last_activity;
  // The claim's epoch (§9); absent with a tracker that knows only this edge.
  std::optional<int64_t> epoch;
};

class Edge {
 public:
  static absl::StatusOr<std::unique_ptr<Edge>> Create(EdgeOptions options, EdgeParts parts);
  Edge(const Edge&) = delete;
  Edge& operator=(const Edge&) = delete;
  virtual ~Edge() = default;

  // Subscribes to the command topic, starts the bus, tracker and transport.
  virtual absl::Status Start() = 0;

  // Stops admitting (UNAVAILABLE) and ends peer streams with UNAVAILABLE at
  // drain_rate_per_sec. Returns at once.
  virtual void Drain() = 0;
  virtual bool draining() const = 0;

  // Contract §7: stop admitting, end every stream with UNAVAILABLE, publish
  // every `disconnected` (reason `shutdown`), finish command outcomes,
  // commit, flush, release claims; all by `deadline`. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;

  // Ready: started, not draining, bus not saturated, and the bus reads its
  // command topic (MessageBus::Reading).
  virtual bool Ready() const = 0;
  virtual EdgeStats stats() const = 0;

  // The operator's view of this edge's peers (contract §10). Only admitted
  // streams that are not ending count as held here.
  // NOT_FOUND when `peer_id` is not held here.
  virtual absl::StatusOr<PeerInfo> FindPeer(const std::string& peer_id) = 0;
  // Up to `limit` peers with a peer_id greater than `after` (byte order), in
  // peer_id order: pages through the peers with the last id of a page.
  virtual std::vector<PeerInfo> ListPeers(const std::string& after, size_t limit) = 0;
  // Ends the peer's stream with ABORTED(`why`), `disconnected` reason
  // `kicked`, as the `disconnect` command does; NOT_FOUND when not held here.
  virtual absl::Status Kick(const std::string& peer_id, const std::string& why) = 0;

 protected:
  Edge() = default;
};

}  // namespace edge

#endif  // EDGE_EDGE_H_
