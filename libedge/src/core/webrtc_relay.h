// WebRtcRelay: WebRTC session negotiation through the edge (contract §6).
//
// Peers call WebRTCOperations; every call is published on the signaling
// topic (origin "call"). A stream_session_request opens a session and waits
// for the backend's `webrtc_reply` command with the same request_id;
// sdp_answer and ice_candidate calls are answered once their publish is
// confirmed. Sessions expire after WEBRTC_SESSION_TTL_SEC of silence and
// when their peer disconnects; pending calls then fail with UNAVAILABLE.
// ICE candidates the backend sends (a `webrtc` command) before the peer's
// answer went out are held, bounded, and delivered in order after it.
//
// Pending calls hold no thread: each is a reply callback and a timer.
//
// Bounds: a peer has at most EdgeOptions::webrtc_max_sessions_per_peer
// sessions and kMaxPendingPerSession calls waiting per session (more:
// RESOURCE_EXHAUSTED); its calls share its PEER_MAX_MESSAGES_PER_SEC budget
// (EdgeImpl::OnWebRtcCall). Sessions are indexed by peer and pending calls
// by session, so a peer's disconnect touches only its own.
#ifndef EDGE_SRC_CORE_WEBRTC_RELAY_H_
#define EDGE_SRC_CORE_WEBRTC_RELAY_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/clock.h"
#include "edge/message_bus.h"
#include "edge/peer_transport.h"

namespace edge {

class SessionHost;

class WebRtcRelay {
 public:
  // ICE candidates held per session before its answer, at most.
  static constexpr size_t kMaxHeldCandidates = 64;
  // stream_session_request calls waiting for their reply, per session.
  static constexpr size_t kMaxPendingPerSession = 8;

  explicit WebRtcRelay(SessionHost* edge) : edge_(edge) {}
  WebRtcRelay(const WebRtcRelay&) = delete;
  WebRtcRelay& operator=(const WebRtcRelay&) = delete;

  // A call from `peer_id`, already checked to be connected.
  void OnCall(const std::string& peer_id, EdgeWebRTCMessage request, WebRtcReply reply);

  // A `webrtc_reply` command; false when no call with that id is pending.
  bool OnReply(const std::string& request_id, PeerWebRTCMessage reply);

  // A `webrtc` command for `peer_id`. Returns true if the relay took it
  // (held until the session's answer); otherwise the caller sends it now.
  bool HoldIfEarly(const std::string& peer_id, EdgeMessage& message, IncomingRecord& record,
                   RecordDone& done);

  // A message of a session went by on the stream: it stays alive.
  void Touch(const std::string& session_id);

  // The peer disconnected: its sessions end, its pending calls fail.
  void OnPeerGone(const std::string& peer_id);

  // Ends sessions silent for longer than the TTL; called periodically.
  void ExpireIdle(absl::Time now);

  // Fails every pending call (UNAVAILABLE) and forgets every session.
  void Shutdown();

  size_t sessions();
  size_t pending_calls();

 private:
  struct Held {
    EdgeMessage message;
    IncomingRecord record;
    RecordDone done;
  };
  struct Session {
    std::string peer_id;
    absl::Time last_activity;
    bool answered = false;
    bool releasing = false;  // ReleaseHeld is sending the held candidates
    std::deque<Held> held;
    absl::flat_hash_set<std::string> pending;  // request_ids of its waiting calls
  };
  struct Pending {
    std::string peer_id;
    std::string session_id;
    WebRtcReply reply;
    Clock::TimerId timer = 0;
  };

  void OpenSession(const std::string& peer_id, EdgeWebRTCMessage request, WebRtcReply reply);
  void ContinueSession(const std::string& peer_id, EdgeWebRTCMessage request, WebRtcReply reply);
  void TimeOut(const std::string& request_id);
  void ReleaseHeld(const std::string& peer_id, const std::string& session_id);
  // Ends the sessions named, failing their calls and dead-lettering held
  // candidates.
  void EndSessions(const std::vector<std::string>& session_ids, const char* why);
  // Forgets pending call `it` (mu_ held): also from its session's index.
  void ErasePendingLocked(absl::flat_hash_map<std::string, Pending>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  SessionHost* const edge_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);
  // peer_id -> the ids of its sessions.
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> sessions_by_peer_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace edge

#endif  // EDGE_SRC_CORE_WEBRTC_RELAY_H_
