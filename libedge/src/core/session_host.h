// SessionHost: what a PeerSession and the WebRtcRelay need from the edge
// that owns them, and nothing more. EdgeImpl implements it; tests implement
// it with a few lines to drive a session or the relay alone.
//
// Threads: every method may be called from any thread (gRPC callbacks, the
// bus's threads, the clock's timer thread), never with the caller's own
// lock held, and none of them blocks.
#ifndef EDGE_SRC_CORE_SESSION_HOST_H_
#define EDGE_SRC_CORE_SESSION_HOST_H_

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "edge/metrics.h"
#include "edge/peer_transport.h"
#include "events.h"

namespace edge {

class PeerSession;
class WebRtcRelay;

class SessionHost {
 public:
  SessionHost() = default;
  SessionHost(const SessionHost&) = delete;
  SessionHost& operator=(const SessionHost&) = delete;
  virtual ~SessionHost() = default;

  virtual const EdgeOptions& options() const = 0;
  virtual Clock& clock() = 0;
  virtual Logger& log() = 0;
  // Never null: NullMetrics() when the edge has none.
  virtual Metrics& metrics() = 0;

  // Publishes an event (contract §3, §5); `done` (may be empty) runs once
  // the bus stored it or gave up.
  virtual void Publish(const std::string& topic, const std::string& key, std::string value,
                       PublishDone done) = 0;
  // Dead-letters a command (§4); `done` runs once the letter is stored.
  virtual void DeadLetter(DeadLetterReason reason, absl::string_view detail,
                          absl::string_view peer_id, IncomingRecord record, RecordDone done) = 0;
  // Backpressure (§3): true to keep reading `stream`; false when the bus is
  // saturated, in which case the host resumes the stream once it drains.
  virtual bool KeepReading(const std::shared_ptr<PeerStream>& stream) = 0;
  // The session's stream ended and its `disconnected` is stored (or none
  // was owed): the host releases its claim and forgets it. Once per session.
  virtual void OnSessionEnded(const std::shared_ptr<PeerSession>& session) = 0;

  // The relay of the peers' WebRTC sessions (a session tells it of the
  // peer's WebRTC messages and of its end).
  virtual WebRtcRelay& webrtc() = 0;
  // True while `peer_id` has an admitted stream that is not ending.
  virtual bool PeerActive(const std::string& peer_id) = 0;
  // Queues a command for `peer_id`'s session, or dead-letters it
  // (peer_not_connected) when the peer has none.
  virtual void SendToPeer(const std::string& peer_id, EdgeMessage message, IncomingRecord record,
                          RecordDone done) = 0;

  // Counting for Edge::stats() and the metrics.
  // A command was written to its peer (or answered a WebRTC call).
  virtual void CountDelivered() = 0;
  enum class PeerMessageKind { kRead, kKeepalive, kUnknown };
  // A peer message was read; a keepalive; one without a known payload.
  virtual void CountPeerMessage(PeerMessageKind kind) = 0;
};

// The header of an event about `peer_id`, stamped now.
inline EventHeader HostEventHeader(SessionHost& host, absl::string_view peer_id) {
  return EventHeader{peer_id, host.options().edge_id, host.clock().Now()};
}

// Whether per-message metrics are worth computing.
inline bool HostMetricsEnabled(SessionHost& host) { return &host.metrics() != &NullMetrics(); }

}  // namespace edge

#endif  // EDGE_SRC_CORE_SESSION_HOST_H_
