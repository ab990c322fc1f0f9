// PeerSession: one admitted (or being admitted) peer stream, from the
// edge's side. It owns the peer's bounded send queue (contract §4), turns
// the peer's messages into events (§3), and ends exactly once, publishing
// exactly one `disconnected` after its `connected` (§5).
#ifndef EDGE_SRC_CORE_PEER_SESSION_H_
#define EDGE_SRC_CORE_PEER_SESSION_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"
#include "edge/peer_transport.h"
#include "edge/tracker.h"

namespace edge {

class SessionHost;

class PeerSession final : public PeerStreamObserver,
                          public std::enable_shared_from_this<PeerSession> {
 public:
  PeerSession(SessionHost* edge, std::shared_ptr<PeerStream> stream, std::string peer_id,
              absl::Time now);

  const std::string& peer_id() const { return peer_id_; }
  absl::Time connected_at() const { return connected_at_; }
  absl::Time last_activity() const {
    return absl::FromUnixNanos(last_activity_ns_.load(std::memory_order_relaxed));
  }

  // Admission succeeded: publishes `connected` and starts writing.
  void Activate(PeerClaim claim);
  // True once Activate ran and until the session ends.
  bool active();
  // True once the session is ending or ended: it takes no more commands,
  // its `disconnected` is published (or none was owed), and only its
  // release may still be pending.
  bool ending();
  // True once it was ended for reading too slowly (its commands are
  // dead-lettered peer_slow, contract §4).
  bool ended_slow();
  PeerClaim claim();
  // Whether the session's end should release its tracker claim (false once
  // a replacing stream took the claim over).
  bool owns_claim();
  void DisownClaim();

  // Sends the edge's own catalog_announcement_request (§2, on connect).
  void RequestCatalog();
  // Remembers that `request_id` asked the peer for its catalog, so that an
  // empty answer with that id is a full update, not a keepalive.
  void ExpectCatalog(const std::string& request_id);

  // Queues a command; `done` runs once it was written, or after it was
  // dead-lettered (peer_slow, peer_write_failed, or expired when its turn
  // to be written comes at or after `expires_at`).
  void SendCommand(EdgeMessage message, IncomingRecord record, RecordDone done,
                   absl::Time expires_at = absl::InfiniteFuture());
  // Queues the acknowledgement of a peer message.
  void SendAck(const std::string& request_id);

  // Ends the stream from the edge's side. `reason` is the `disconnected`
  // reason (timeout, shutdown, replaced, kicked, slow, error).
  void End(absl::Status status, const char* reason);
  // Takes one token of the peer's PEER_MAX_MESSAGES_PER_SEC bucket for a
  // WebRTCOperations call; false when the peer is over the limit.
  bool TakeCallToken();
  // The peer's stream already ended (or has none).
  bool stream_ended();

  // PeerStreamObserver
  bool OnMessage(PeerMessage message) override;
  void OnEnd(absl::Status status) override;

 private:
  enum class State { kAdmitting, kActive, kEnding, kEnded };
  struct Outgoing {
    EdgeMessage message;
    // Set for commands: what to dead-letter if it is never written.
    std::optional<IncomingRecord> record;
    RecordDone done;
    absl::Time queued_at;
    // The acknowledgement of a peer message: its write answers it.
    bool answers = false;
    // For commands: what the item holds in memory (message and record),
    // counted against PEER_SEND_QUEUE_MAX_BYTES.
    size_t bytes = 0;
    // Commands: never written at or after this instant (contract §4).
    absl::Time expires_at = absl::InfiniteFuture();
  };

  void Enqueue(Outgoing item);
  // Starts the next write if none is outstanding; call without mu_ held.
  void Pump() ABSL_LOCKS_EXCLUDED(mu_);
  void OnWriteDone(bool ok);
  bool TakeToken(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A peer message was read that will be answered (published, acknowledged).
  void Count();
  // One such message is done with; may resume reading.
  void Answered();
  // Publishes the event for `message`, or acknowledges a keepalive.
  void Publish(const PeerMessage& message, bool solicited_catalog);
  // A message's events are stored (`ack`: it is acknowledged) or one was
  // refused (`ack` false: it is only answered).
  void OnPublished(bool ack, const std::string& request_id);
  // A message whose event the bus cannot take, even split: the peer hears
  // why (its stream ends with `status`), instead of never being answered.
  void RefuseUnpublishable(absl::Status status);
  // Publishes `disconnected`; the session is finished (its claim released)
  // once the stream has ended and the bus has stored it (§5).
  void PublishDisconnected(const char* reason, PeerClaim claim);
  void OnDisconnectedStored(absl::Status status);

  SessionHost* const edge_;
  const std::string peer_id_;
  const absl::Time connected_at_;
  std::atomic<int64_t> last_activity_ns_;

  absl::Mutex mu_;
  std::shared_ptr<PeerStream> stream_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_) = State::kAdmitting;
  PeerClaim claim_ ABSL_GUARDED_BY(mu_);
  bool owns_claim_ ABSL_GUARDED_BY(mu_) = true;
  bool disconnected_published_ ABSL_GUARDED_BY(mu_) = false;
  // `disconnected` published and not yet stored by the bus.
  bool disconnected_pending_ ABSL_GUARDED_BY(mu_) = false;
  // OnSessionEnded has run (or is running).
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool activated_ ABSL_GUARDED_BY(mu_) = false;
  const char* end_reason_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool slow_ ABSL_GUARDED_BY(mu_) = false;
  // Lists, not deques: libstdc++'s deque allocates ~600 bytes as soon as it
  // is constructed, which every idle peer (and every Enqueue) paid.
  std::list<Outgoing> queue_ ABSL_GUARDED_BY(mu_);
  std::optional<Outgoing> in_flight_ ABSL_GUARDED_BY(mu_);
  // The in-flight message moved to the stream; what the metrics count once
  // it is written (an empty name: metrics are off).
  absl::string_view in_flight_payload_ ABSL_GUARDED_BY(mu_);
  size_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Commands queued or in flight; PEER_SEND_QUEUE_MAX bounds them (§4).
  size_t commands_pending_ ABSL_GUARDED_BY(mu_) = 0;
  // Their bytes; PEER_SEND_QUEUE_MAX_BYTES bounds them (§4).
  size_t command_bytes_pending_ ABSL_GUARDED_BY(mu_) = 0;
  // Peer messages read whose event is not stored yet or whose ack is not
  // written yet. Reading pauses at PEER_SEND_QUEUE_MAX of them, so that a
  // burst of acks (after a broker outage, say) never overflows the send
  // queue, and a peer that does not read its acks stops being read.
  size_t unanswered_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_for_answers_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<std::string> pending_pulls_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> pending_pull_order_ ABSL_GUARDED_BY(mu_);
  double tokens_ ABSL_GUARDED_BY(mu_);
  absl::Time tokens_at_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge

#endif  // EDGE_SRC_CORE_PEER_SESSION_H_
