// WebRtcPeer: a peer for end-to-end WebRTC tests over real gRPC: a TestPeer
// holding its AsyncOperations stream, that also makes WebRTCOperations
// calls, blocking (Call) or with the callback client API (StartCall), so
// that hundreds can be in flight without a thread each.
#ifndef EDGE_TESTS_E2E_WEBRTC_WEBRTC_PEER_H_
#define EDGE_TESTS_E2E_WEBRTC_WEBRTC_PEER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "support/test_peer.h"

namespace edge::testing {

namespace gp = giggityflix_grpc_peer;

// One WebRTCOperations call with `peer_id` metadata (none when unset).
absl::StatusOr<gp::PeerWebRTCMessage> CallWebRtc(const std::shared_ptr<grpc::Channel>& channel,
                                                 const std::optional<std::string>& peer_id,
                                                 const gp::EdgeWebRTCMessage& request,
                                                 absl::Duration timeout = absl::Seconds(20));

class WebRtcPeer {
 public:
  using Done = std::function<void(absl::StatusOr<gp::PeerWebRTCMessage>)>;

  // Opens the stream; Admitted() tells when the edge took it.
  WebRtcPeer(std::shared_ptr<grpc::Channel> channel, std::string peer_id);
  WebRtcPeer(const WebRtcPeer&) = delete;
  WebRtcPeer& operator=(const WebRtcPeer&) = delete;

  const std::string& peer_id() const { return stream_.peer_id(); }

  // Sends a keepalive and waits for its acknowledgement: the edge admitted
  // this peer.
  bool Admitted(absl::Duration timeout = absl::Seconds(10));

  // A WebRTCOperations call as this peer, blocking.
  absl::StatusOr<gp::PeerWebRTCMessage> Call(const gp::EdgeWebRTCMessage& request,
                                             absl::Duration timeout = absl::Seconds(20));
  // The same, without blocking: `done` runs on a gRPC thread when it ends.
  void StartCall(const gp::EdgeWebRTCMessage& request, Done done,
                 absl::Duration timeout = absl::Seconds(60));

  bool Send(const gp::PeerMessage& message) { return stream_.Send(message); }
  // Ends the stream as a peer that goes away, and waits for its end.
  void Disconnect();

  // EdgeMessages received with a `webrtc` payload, in order.
  std::vector<gp::EdgeMessage> WebRtcReceived();
  std::vector<gp::EdgeMessage> Received() { return stream_.Received(); }
  bool WaitForReceived(const std::function<bool(const std::vector<gp::EdgeMessage>&)>& pred,
                       absl::Duration timeout = absl::Seconds(15)) {
    return stream_.WaitUntil(pred, timeout);
  }

 private:
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<gp::PeerEdgeService::Stub> stub_;  // for StartCall
  TestPeer stream_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_WEBRTC_WEBRTC_PEER_H_
