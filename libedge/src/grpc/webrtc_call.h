// One WebRTCOperations call: the request goes to the handler, whose reply
// (from any thread, at any time) finishes the call unless it already ended.
#ifndef EDGE_SRC_GRPC_WEBRTC_CALL_H_
#define EDGE_SRC_GRPC_WEBRTC_CALL_H_

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "edge/peer_transport.h"
#include "grpc_peer_stream.h"

namespace edge::grpc_transport::internal {

class WebRtcCallReactor;

// Shared between the reactor and the handler's reply callback.
class WebRtcCall {
 public:
  WebRtcCall(WebRtcCallReactor* reactor, PeerWebRTCMessage* response)
      : reactor_(reactor), response_(response) {}

  // Finishes the call with `result` unless it already finished. Returns
  // false when it had.
  bool Complete(absl::StatusOr<PeerWebRTCMessage> result);
  void OnDone();

 private:
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  WebRtcCallReactor* reactor_ ABSL_GUARDED_BY(mu_);
  PeerWebRTCMessage* const response_;  // gRPC's, valid until OnDone
};

class WebRtcCallReactor final : public grpc::ServerUnaryReactor {
 public:
  WebRtcCallReactor(CallTracker* tracker, uint64_t call_id)
      : tracker_(tracker), call_id_(call_id) {}
  void set_call(std::shared_ptr<WebRtcCall> call) { call_ = std::move(call); }
  void End(const absl::Status& status);

 private:
  void OnCancel() override;
  void OnDone() override;

  CallTracker* const tracker_;
  const uint64_t call_id_;
  std::shared_ptr<WebRtcCall> call_;
};

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_WEBRTC_CALL_H_
