// EdgeImpl: the Edge of edge/edge.h. Admission and the peer registry live
// here (edge_impl.cc), routing of backend commands in command_router.cc,
// the per-peer state in peer_session.cc, WebRTC relaying in webrtc_relay.cc.
#ifndef EDGE_CORE_EDGE_IMPL_H_
#define EDGE_CORE_EDGE_IMPL_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/command_decoder.h"
#include "core/events.h"
#include "core/peer_session.h"
#include "core/webrtc_relay.h"
#include "edge/edge.h"

namespace edge {

// Header that marks a command forwarded from another edge (one hop only).
inline constexpr char kForwardedHeader[] = "edge-forwarded-from";

class EdgeImpl final : public Edge, public PeerStreamHandler {
 public:
  EdgeImpl(EdgeOptions options, EdgeParts parts);
  ~EdgeImpl() override;

  // Edge
  absl::Status Start() override;
  void Drain() override;
  bool draining() const override;
  void Shutdown(absl::Time deadline) override;
  bool Ready() const override;
  EdgeStats stats() const override;

  // PeerStreamHandler
  void OnStreamStart(std::shared_ptr<PeerStream> stream, AdmissionDecision decide) override;
  void OnWebRtcCall(const PeerCallInfo& caller, EdgeWebRTCMessage request,
                    WebRtcReply reply) override;

  // --- for PeerSession and WebRtcRelay ---
  const EdgeOptions& options() const { return options_; }
  Clock& clock() { return *parts_.clock; }
  Logger& log() { return *parts_.logger; }
  Metrics& metrics() { return *parts_.metrics; }
  bool metrics_enabled() const { return parts_.metrics != &NullMetrics(); }
  WebRtcRelay& webrtc() { return webrtc_; }
  EventHeader Header(absl::string_view peer_id) {
    return EventHeader{peer_id, options_.edge_id, parts_.clock->Now()};
  }
  void Publish(const std::string& topic, const std::string& key, std::string value,
               PublishDone done);
  void DeadLetter(DeadLetterReason reason, absl::string_view detail, absl::string_view peer_id,
                  const IncomingRecord& record, RecordDone done);
  // True while `peer_id` has an admitted stream that is not ending.
  bool PeerActive(const std::string& peer_id) {
    auto session = Find(peer_id);
    return session != nullptr && session->active();
  }
  // Queues a command for `peer_id`, or dead-letters it (peer_not_connected).
  void SendToPeer(const std::string& peer_id, EdgeMessage message, IncomingRecord record,
                  RecordDone done);
  // Backpressure (§3): true to keep reading `stream`; false when the bus is
  // saturated, in which case the stream resumes once it drains.
  bool KeepReading(const std::shared_ptr<PeerStream>& stream);
  // The session's stream ended: release its claim and forget it.
  void OnSessionEnded(const std::shared_ptr<PeerSession>& session);

  struct Counters {
    std::atomic<int64_t> admitted{0}, rejected{0}, messages_in{0}, messages_unknown{0},
        events_published{0}, commands_delivered{0}, commands_deadlettered{0},
        commands_forwarded{0}, keepalives{0};
  };
  Counters& counters() { return counters_; }

 private:
  absl::Status CheckAdmission(const PeerCallInfo& info);
  bool TakeStreamTokenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishAdmission(std::shared_ptr<PeerSession> session, AdmissionDecision decide,
                       absl::StatusOr<PeerClaim> claim);
  void Reject(AdmissionDecision& decide, absl::Status status);
  std::shared_ptr<PeerSession> Find(const std::string& peer_id);
  void Forget(const std::shared_ptr<PeerSession>& session);
  std::vector<std::shared_ptr<PeerSession>> Sessions();

  // command_router.cc
  struct ReducedLetter {
    DeadLetterReason reason;
    std::string detail;
    std::string peer_id;
    IncomingRecord record;
  };
  void PublishDeadLetter(OutgoingRecord letter, std::shared_ptr<ReducedLetter> fallback,
                         RecordDone done);
  void OnCommand(IncomingRecord record, RecordDone done);
  void Forward(Command command, IncomingRecord record, RecordDone done);

  void ScheduleSweep();
  void Sweep();
  void ScheduleDrainStep();
  void DrainStep();
  void ResumePaused();
  void OnClaimLost(const std::string& peer_id);
  // Publishes a dead edge's lost claim's `disconnected` (`edge_lost`).
  void PublishEdgeLost(const LostClaim& lost, Tracker::LostClaimDone published);

  const EdgeOptions options_;
  const EdgeParts parts_;
  Counters counters_;
  WebRtcRelay webrtc_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<PeerSession>> peers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<PeerStream>> paused_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // MAX_NEW_STREAMS_PER_SEC's token bucket.
  double stream_tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time stream_tokens_at_ ABSL_GUARDED_BY(mu_);
  Clock::TimerId sweep_timer_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::TimerId drain_timer_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edge

#endif  // EDGE_CORE_EDGE_IMPL_H_
