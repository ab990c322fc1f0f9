// WebRtcPeer: a peer for end-to-end WebRTC tests over real gRPC. It holds
// one AsyncOperations stream (read by a thread of its own, as the existing
// peers do) and makes WebRTCOperations calls, blocking (Call) or with the
// callback client API (StartCall), so that hundreds can be in flight
// without a thread each.
#ifndef EDGE_TESTS_E2E_WEBRTC_WEBRTC_PEER_H_
#define EDGE_TESTS_E2E_WEBRTC_WEBRTC_PEER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"

namespace edge::testing {

namespace gp = giggityflix_grpc_peer;

// A plaintext channel of its own to 127.0.0.1:`port`.
std::shared_ptr<grpc::Channel> NewChannel(int port);

// The status of a finished WebRTCOperations call, as absl::StatusOr.
absl::StatusOr<gp::PeerWebRTCMessage> ToStatusOr(const grpc::Status& status,
                                                 gp::PeerWebRTCMessage reply);

// One WebRTCOperations call with `peer_id` metadata (none when unset).
absl::StatusOr<gp::PeerWebRTCMessage> CallWebRtc(
    grpc::Channel& channel, const std::optional<std::string>& peer_id,
    const gp::EdgeWebRTCMessage& request,
    absl::Duration timeout = absl::Seconds(20));

class WebRtcPeer {
 public:
  using Done = std::function<void(absl::StatusOr<gp::PeerWebRTCMessage>)>;

  // Opens the stream; Admitted() tells when the edge took it.
  WebRtcPeer(std::shared_ptr<grpc::Channel> channel, std::string peer_id);
  ~WebRtcPeer();  // Cancels what is open and waits for it.
  WebRtcPeer(const WebRtcPeer&) = delete;
  WebRtcPeer& operator=(const WebRtcPeer&) = delete;

  const std::string& peer_id() const { return peer_id_; }

  // Sends a keepalive and waits for its acknowledgement: the edge admitted
  // this peer.
  bool Admitted(absl::Duration timeout = absl::Seconds(10));

  // A WebRTCOperations call as this peer, blocking.
  absl::StatusOr<gp::PeerWebRTCMessage> Call(
      const gp::EdgeWebRTCMessage& request,
      absl::Duration timeout = absl::Seconds(20));
  // The same, without blocking: `done` runs on a gRPC thread when it ends.
  void StartCall(const gp::EdgeWebRTCMessage& request, Done done,
                 absl::Duration timeout = absl::Seconds(60));

  bool Send(const gp::PeerMessage& message);
  // Ends the stream as a peer that goes away.
  void Disconnect();

  // EdgeMessages received with a `webrtc` payload, in order.
  std::vector<gp::EdgeMessage> WebRtcReceived();
  std::vector<gp::EdgeMessage> Received();
  bool WaitForReceived(
      const std::function<bool(const std::vector<gp::EdgeMessage>&)>& pred,
      absl::Duration timeout = absl::Seconds(15));

 private:
  void ReadLoop();

  const std::shared_ptr<grpc::Channel> channel_;
  const std::string peer_id_;
  std::unique_ptr<gp::PeerEdgeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<gp::PeerMessage, gp::EdgeMessage>>
      stream_;
  absl::Mutex write_mu_;

  absl::Mutex mu_;
  std::vector<gp::EdgeMessage> received_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_WEBRTC_WEBRTC_PEER_H_
