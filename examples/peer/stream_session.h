// StreamSession: one WebRTC streaming session of the example peer, negotiated
// through its edge the way a real peer does it (contract §6), without the
// network and without a media stack: the SDP and ICE strings are made up.
//
// The viewer's backend offers and the peer, which holds the file, answers:
//   1. Request(): a stream_session_request for the catalog id with a fresh
//      session_id and request_id, sent with WebRTCOperations. The call
//      returns the backend's reply (a `webrtc_reply` command): an sdp_offer
//      for this session, or a stream_session_response saying why not.
//   2. OnOffer(reply): the sdp_answer, sent with WebRTCOperations; the edge
//      acknowledges it with stream_session_response{success: true}.
//   3. LocalCandidates(): this peer's ICE candidates, trickled after the
//      answer was acknowledged, one WebRTCOperations ice_candidate call each.
//   Meanwhile the backend's candidates arrive on the AsyncOperations stream
//   as EdgeMessage.webrtc (the edge holds those sent before the answer and
//   delivers them after it): OnRemote().
// Every acknowledgement goes to OnAcknowledged(), which checks it.
//
// Thread-safe: the WebRTCOperations caller and the stream's reader both use
// it.
//
//   StreamSession session("movie-1", NewRequestId);
//   EdgeWebRTCMessage request = session.Request();
//   PeerWebRTCMessage offer = Call(request);            // WebRTCOperations
//   absl::StatusOr<EdgeWebRTCMessage> answer = session.OnOffer(offer);
//   session.OnAcknowledged(*answer, Call(*answer));
//   for (const auto& candidate : session.LocalCandidates()) {
//     session.OnAcknowledged(candidate, Call(candidate));
//   }
#ifndef EDGE_EXAMPLES_PEER_STREAM_SESSION_H_
#define EDGE_EXAMPLES_PEER_STREAM_SESSION_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"

namespace edge {
namespace example {

using giggityflix_grpc_peer::EdgeWebRTCMessage;
using giggityflix_grpc_peer::ICECandidate;
using giggityflix_grpc_peer::PeerWebRTCMessage;

// The session_id a WebRTC message is about; "" when its payload has none.
std::string SessionIdOf(const EdgeWebRTCMessage& message);

class StreamSession {
 public:
  enum class State {
    kNew,        // nothing sent yet
    kRequested,  // stream_session_request sent, waiting for the offer
    kAnswered,   // sdp_answer sent, waiting for its acknowledgement
    kConnected,  // answer acknowledged: candidates flow both ways
    kFailed,     // refused, or a reply that does not fit; see error()
  };

  // Candidates LocalCandidates() returns, one per (made-up) host address.
  static constexpr int kLocalCandidates = 2;

  StreamSession(std::string catalog_id, std::function<std::string()> new_id);
  StreamSession(const StreamSession&) = delete;
  StreamSession& operator=(const StreamSession&) = delete;

  const std::string& catalog_id() const { return catalog_id_; }
  const std::string& session_id() const { return session_id_; }

  // The stream_session_request opening the session (a fresh request_id).
  EdgeWebRTCMessage Request();

  // The reply to Request(). An sdp_offer for this session gives the
  // sdp_answer to send; anything else fails the session (FAILED_PRECONDITION
  // for a refusal, INVALID_ARGUMENT for a reply that does not fit).
  absl::StatusOr<EdgeWebRTCMessage> OnOffer(const PeerWebRTCMessage& reply);

  // The edge's reply to `sent` (the answer or a candidate): it must be
  // stream_session_response{session_id, success: true} with the same
  // request_id. An acknowledged answer connects the session.
  absl::Status OnAcknowledged(const EdgeWebRTCMessage& sent, const PeerWebRTCMessage& reply);

  // This peer's ICE candidates as ice_candidate messages (fresh request_ids),
  // once connected; the media section (sdp_mid) is the offer's first.
  std::vector<EdgeWebRTCMessage> LocalCandidates();

  // A message of the backend that came on the stream (EdgeMessage.webrtc)
  // for this session. Returns a line for the log.
  std::string OnRemote(const EdgeWebRTCMessage& message);

  // A call failed (no reply, refused by the edge): the session fails.
  void Fail(absl::Status error);

  State state() const;
  absl::Status error() const;
  std::string offer_sdp() const;
  // The backend's candidates received so far, in order.
  std::vector<ICECandidate> remote_candidates() const;

 private:
  void FailLocked(absl::Status error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string catalog_id_;
  const std::function<std::string()> new_id_;
  const std::string session_id_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::string request_id_ ABSL_GUARDED_BY(mu_);
  std::string offer_sdp_ ABSL_GUARDED_BY(mu_);
  std::string sdp_mid_ ABSL_GUARDED_BY(mu_) = "0";
  std::vector<ICECandidate> remote_ ABSL_GUARDED_BY(mu_);
};

}  // namespace example
}  // namespace edge

#endif  // EDGE_EXAMPLES_PEER_STREAM_SESSION_H_
