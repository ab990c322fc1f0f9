// LoadPeer: one simulated peer on its own HTTP/2 connection, driven by the
// gRPC callback client API (no thread per peer).
//
// It behaves like the existing Giggityflix peers (contract §1): sends the
// `peer_id` metadata, answers the edge's commands (catalog pull, file hash,
// file delete), sends keepalives, and awaits the acknowledgement of every
// message it sends by request_id. Request ids it makes up carry the time they
// were made, so that latencies are measured without per-message state:
//   "k<unix nanos>.<seq>"  keepalive (also the probe sent right after opening)
//   "m<unix nanos>.<seq>"  a load message (file_hash_response)
// Commands produced by the load generator carry "c<unix nanos>.<seq>"; the
// answer to such a command reuses its id, as real peers do.
//
// A peer counts as admitted when the first EdgeMessage arrives (the edge's
// catalog pull or the probe's acknowledgement: both come only after
// admission); refused when the stream ends before that.
//
// Threads: reactions run on gRPC's threads; Send* and Close from any thread.
#ifndef EDGE_BENCH_LOADGEN_LOAD_PEER_H_
#define EDGE_BENCH_LOADGEN_LOAD_PEER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "latency_histogram.h"

namespace edge::loadgen {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::PeerMessage;

// Counters and histograms shared by every peer of a run.
struct LoadStats {
  std::atomic<int64_t> started{0};
  std::atomic<int64_t> admitted{0};
  std::atomic<int64_t> refused{0};
  std::atomic<int64_t> refused_by_code[17] = {};
  std::atomic<int64_t> connect_failed{0};  // --sources: our own connect failed
  std::atomic<int64_t> ended{0};           // OnDone ran
  std::atomic<int64_t> ended_not_ok{0};    // after admission, with an error
  std::atomic<int64_t> messages_sent{0};
  std::atomic<int64_t> messages_acked{0};
  std::atomic<int64_t> keepalives_sent{0};
  std::atomic<int64_t> keepalives_acked{0};
  std::atomic<int64_t> commands_received{0};
  // Commands received again: a peer's commands carry rising sequence
  // numbers and keep their order, so one at or below the last seen is a
  // redelivery (at-least-once), not a new command.
  std::atomic<int64_t> commands_repeated{0};
  // The untimed warm-up before a window ('w' request ids): commands
  // received, and acknowledgements of a message or of a command's answer.
  std::atomic<int64_t> warmups_received{0};
  std::atomic<int64_t> warmups_acked{0};
  std::atomic<int64_t> answers_sent{0};
  std::atomic<int64_t> answers_acked{0};
  std::atomic<int64_t> catalog_pulls{0};
  std::atomic<int64_t> other_received{0};
  // Acknowledgements whose request_id this peer was not waiting for.
  std::atomic<int64_t> unexpected_acks{0};
  LatencyHistogram admission;
  LatencyHistogram ack;
  LatencyHistogram command;
};

struct LoadPeerOptions {
  // Answer commands like a real peer (file_hash, file_delete, catalog pull).
  bool answer_commands = true;
  // Catalog announced when the edge pulls it.
  int catalog_size = 3;
  // Closed loop: while `*sending` holds, each acknowledged load message is
  // followed by a new one (so each peer keeps its window in flight).
  const std::atomic<bool>* sending = nullptr;
  // Called (on a gRPC thread) for each load-generator command received
  // ('c' request id), with that id: for tallies by id.
  std::function<void(const std::string& request_id)> on_command;
};

class LoadPeer final : public grpc::ClientBidiReactor<PeerMessage, EdgeMessage> {
 public:
  // `channel` must be this peer's own (not shared) channel.
  LoadPeer(std::string peer_id, std::shared_ptr<grpc::Channel> channel, LoadStats* stats,
           const LoadPeerOptions* options);

  // Opens the stream and sends the probe keepalive. `on_settled` runs once,
  // on a gRPC thread, when the peer was admitted or refused.
  void Start(std::function<void(bool admitted)> on_settled);

  // Sends one load message; false if the stream is not open.
  bool SendMessage();
  // A message like SendMessage's, with a 'w' request_id: not timed.
  bool SendWarmUpMessage();
  bool SendKeepalive();
  // Messages sent and not yet acknowledged.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  // Half-closes once every queued write went out; the edge then ends the
  // stream with OK.
  void Close();
  // Cancels the stream.
  void Cancel() { context_.TryCancel(); }

  bool admitted() const { return admitted_.load(std::memory_order_acquire); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  const std::string& peer_id() const { return peer_id_; }

  // Reactions.
  void OnReadInitialMetadataDone(bool ok) override {}
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override {}
  void OnDone(const grpc::Status& status) override;

 private:
  bool Enqueue(PeerMessage message, uint64_t awaited = kNotAwaited);
  // Removes the sequence number of an acknowledged request id; false if it
  // was not awaited.
  bool TakeAwaited(const std::string& request_id);
  static constexpr uint64_t kNotAwaited = ~uint64_t{0};
  // Starts the next write, or the half-close, when nothing is in flight.
  void Pump();
  void Settle(bool admitted);
  void Answer(const EdgeMessage& command);

  const std::string peer_id_;
  LoadStats* const stats_;
  const LoadPeerOptions* const options_;
  std::unique_ptr<giggityflix_grpc_peer::PeerEdgeService::Stub> stub_;
  grpc::ClientContext context_;
  absl::Time started_at_;
  std::function<void(bool)> on_settled_;
  std::atomic<bool> settled_{false};
  std::atomic<bool> admitted_{false};
  std::atomic<bool> done_{false};
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> sequence_{0};
  // The highest sequence number of a command received; only the read in
  // flight touches it.
  int64_t last_command_sequence_ = -1;

  EdgeMessage read_buffer_;
  absl::Mutex mu_;
  // Sequence numbers of the messages and keepalives sent and not yet
  // acknowledged: each ack must match one.
  absl::flat_hash_set<uint64_t> awaited_ ABSL_GUARDED_BY(mu_);
  std::deque<PeerMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  PeerMessage write_buffer_;  // Owned by the write in flight.
};

// Nanoseconds of the Unix epoch now (CLOCK_REALTIME: comparable across
// processes of this machine).
int64_t UnixNanos();

// The time a request id made by MakeRequestId carries; -1 if none.
int64_t RequestIdNanos(const std::string& request_id);
// The sequence number a request id made by MakeRequestId carries; -1 if none.
int64_t RequestIdSequence(const std::string& request_id);
std::string MakeRequestId(char kind, uint64_t sequence);

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_LOAD_PEER_H_
