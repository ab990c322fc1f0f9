// EdgeImpl: the Edge of edge/edge.h. Admission and the peer registry live
// here (edge_impl.cc). It owns, and is the host of, the parts it wires: the
// CommandRouter (backend commands), the CommandHold (commands waiting for
// their peer), one PeerSession per stream and the WebRtcRelay, each of which
// sees it only through its narrow host interface.
#ifndef EDGE_SRC_CORE_EDGE_IMPL_H_
#define EDGE_SRC_CORE_EDGE_IMPL_H_

#include <atomic>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "command_decoder.h"
#include "command_hold.h"
#include "command_router.h"
#include "edge/edge.h"
#include "events.h"
#include "peer_session.h"
#include "session_host.h"
#include "webrtc_relay.h"

namespace edge {

class EdgeImpl final : public Edge,
                       public PeerStreamHandler,
                       public SessionHost,
                       public CommandHoldHost,
                       public CommandRouterHost {
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
  absl::StatusOr<PeerInfo> FindPeer(const std::string& peer_id) override;
  std::vector<PeerInfo> ListPeers(const std::string& after, size_t limit) override;
  absl::Status Kick(const std::string& peer_id, const std::string& why) override;

  // PeerStreamHandler
  void OnStreamStart(std::shared_ptr<PeerStream> stream, AdmissionDecision decide) override;
  void OnWebRtcCall(const PeerCallInfo& caller, EdgeWebRTCMessage request,
                    WebRtcReply reply) override;

  // SessionHost (what PeerSession and WebRtcRelay use), CommandHoldHost and
  // CommandRouterHost.
  const EdgeOptions& options() const override { return options_; }
  Clock& clock() override { return *parts_.clock; }
  Logger& log() override { return *parts_.logger; }
  Metrics& metrics() override { return *parts_.metrics; }
  void Publish(const std::string& topic, const std::string& key, std::string value,
               PublishDone done) override;
  // Pass the record by move where it is not needed after: it is held only
  // until the letter is built.
  void DeadLetter(DeadLetterReason reason, absl::string_view detail, absl::string_view peer_id,
                  IncomingRecord record, RecordDone done) override {
    router_.DeadLetter(reason, detail, peer_id, std::move(record), std::move(done));
  }
  bool KeepReading(const std::shared_ptr<PeerStream>& stream) override;
  void OnSessionEnded(const std::shared_ptr<PeerSession>& session) override;
  WebRtcRelay& webrtc() override { return webrtc_; }
  bool PeerActive(const std::string& peer_id) override {
    auto session = Find(peer_id);
    return session != nullptr && session->active();
  }
  void SendToPeer(const std::string& peer_id, EdgeMessage message, IncomingRecord record,
                  RecordDone done) override;
  // Also when a command kicked its peer.
  void CountDelivered() override;
  void CountPeerMessage(PeerMessageKind kind) override;
  // CommandHoldHost (also options, clock, log, metrics, DeadLetter above).
  Tracker& tracker() override { return *parts_.tracker; }
  std::shared_ptr<PeerSession> Find(const std::string& peer_id) override;
  void Deliver(const std::shared_ptr<PeerSession>& session, Command command, IncomingRecord record,
               RecordDone done) override {
    router_.Deliver(session, std::move(command), std::move(record), std::move(done));
  }
  void ForwardTo(const std::string& holder, const std::string& peer_id, IncomingRecord record,
                 RecordDone done) override {
    router_.ForwardTo(holder, peer_id, std::move(record), std::move(done));
  }
  // CommandRouterHost (also the above).
  MessageBus& bus() override { return *parts_.bus; }
  bool HasHeld(const std::string& peer_id) override { return hold_.HasHeld(peer_id); }
  void Hold(Command command, IncomingRecord record, RecordDone done) override {
    hold_.Hold(std::move(command), std::move(record), std::move(done));
  }
  void CountDeadLettered() override;
  void CountForwarded() override;

  // Runs `publish`, which publishes a record on behalf of a command (its
  // dead letter, its forward): at once while the bus has room, else in turn
  // once it drains. So commands count against the same bounded event buffer
  // as peer messages (§5): their records wait in the command's own memory,
  // not in the bus, and the Kafka bus stops handing out commands meanwhile.
  // Never blocks. From Shutdown on, at once.
  void PublishForCommand(absl::AnyInvocable<void()> publish) override;

  struct Counters {
    std::atomic<int64_t> admitted{0}, rejected{0}, messages_in{0}, messages_unknown{0},
        events_published{0}, commands_delivered{0}, commands_deadlettered{0}, commands_forwarded{0},
        keepalives{0};
  };

 private:
  absl::Status CheckAdmission(const PeerCallInfo& info);
  bool TakeStreamTokenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishAdmission(std::shared_ptr<PeerSession> session, AdmissionDecision decide,
                       absl::StatusOr<PeerClaim> claim);
  void Reject(AdmissionDecision& decide, absl::Status status);
  void Forget(const std::shared_ptr<PeerSession>& session);
  std::vector<std::shared_ptr<PeerSession>> Sessions();

  // Runs waiting PublishForCommand calls in order while the bus has room
  // (all of them with `force`).
  void RunWaitingPublishes(bool force);

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
  // PublishForCommand calls waiting for the bus to drain, in order.
  std::deque<absl::AnyInvocable<void()>> waiting_publishes_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // MAX_NEW_STREAMS_PER_SEC's token bucket.
  double stream_tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time stream_tokens_at_ ABSL_GUARDED_BY(mu_);
  Clock::TimerId sweep_timer_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::TimerId drain_timer_ ABSL_GUARDED_BY(mu_) = 0;

  // The command hold (command_hold.cc). Its lock is never held together
  // with mu_.
  CommandHold hold_{this};

  // Routes the commands (command_router.cc).
  CommandRouter router_{this};
};

}  // namespace edge

#endif  // EDGE_SRC_CORE_EDGE_IMPL_H_
