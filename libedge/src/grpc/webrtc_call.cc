#include "webrtc_call.h"

#include <utility>

#include "status_conversion.h"

namespace edge::grpc_transport::internal {

bool WebRtcCall::Complete(absl::StatusOr<PeerWebRTCMessage> result) {
  WebRtcCallReactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || reactor_ == nullptr) return false;
    finished_ = true;
    reactor = reactor_;
  }
  // Only this thread finishes the call, so the reactor and the response stay
  // valid until Finish below (OnDone comes after it).
  if (result.ok()) {
    *response_ = *std::move(result);
    reactor->End(absl::OkStatus());
  } else {
    reactor->End(result.status());
  }
  return true;
}

void WebRtcCall::OnDone() {
  absl::MutexLock lock(&mu_);
  reactor_ = nullptr;
}

void WebRtcCallReactor::End(const absl::Status& status) { Finish(ToGrpcStatus(status)); }

void WebRtcCallReactor::OnCancel() {
  if (call_ != nullptr) {
    call_->Complete(absl::CancelledError("the peer cancelled the call or its deadline passed"));
  }
}

void WebRtcCallReactor::OnDone() {
  if (call_ != nullptr) call_->OnDone();
  call_ = nullptr;
  CallTracker* tracker = tracker_;
  const uint64_t call_id = call_id_;
  delete this;
  tracker->CallDone(call_id);
}

}  // namespace edge::grpc_transport::internal
