#include "e2e_webrtc/webrtc_peer.h"

#include <utility>

#include "absl/time/clock.h"

namespace edge::testing {
namespace {

// The state of one callback-API call; freed when the call ends.
struct AsyncCall {
  grpc::ClientContext context;
  gp::EdgeWebRTCMessage request;
  gp::PeerWebRTCMessage reply;
  WebRtcPeer::Done done;
};

absl::StatusOr<gp::PeerWebRTCMessage> ToStatusOr(const grpc::Status& status,
                                                 gp::PeerWebRTCMessage reply) {
  if (!status.ok()) return FromGrpcStatus(status);
  return reply;
}

TestPeer::Options StreamOptions(std::string peer_id) {
  TestPeer::Options options;
  options.peer_id = std::move(peer_id);
  return options;
}

}  // namespace

absl::StatusOr<gp::PeerWebRTCMessage> CallWebRtc(const std::shared_ptr<grpc::Channel>& channel,
                                                 const std::optional<std::string>& peer_id,
                                                 const gp::EdgeWebRTCMessage& request,
                                                 absl::Duration timeout) {
  gp::PeerWebRTCMessage reply;
  grpc::Status status = TestPeer::WebRtcCall(channel, peer_id, request, &reply, timeout);
  return ToStatusOr(status, std::move(reply));
}

WebRtcPeer::WebRtcPeer(std::shared_ptr<grpc::Channel> channel, std::string peer_id)
    : channel_(channel),
      stub_(gp::PeerEdgeService::NewStub(channel_)),
      stream_(std::move(channel), StreamOptions(std::move(peer_id))) {}

bool WebRtcPeer::Admitted(absl::Duration timeout) { return stream_.AwaitAdmission(timeout).ok(); }

absl::StatusOr<gp::PeerWebRTCMessage> WebRtcPeer::Call(const gp::EdgeWebRTCMessage& request,
                                                       absl::Duration timeout) {
  return CallWebRtc(channel_, peer_id(), request, timeout);
}

void WebRtcPeer::StartCall(const gp::EdgeWebRTCMessage& request, Done done,
                           absl::Duration timeout) {
  auto* call = new AsyncCall;
  call->context.AddMetadata("peer_id", peer_id());
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  call->request = request;
  call->done = std::move(done);
  stub_->async()->WebRTCOperations(&call->context, &call->request, &call->reply,
                                   [call](grpc::Status status) {
                                     call->done(ToStatusOr(status, std::move(call->reply)));
                                     delete call;
                                   });
}

void WebRtcPeer::Disconnect() {
  stream_.Cancel();
  stream_.WaitForEnd();
}

std::vector<gp::EdgeMessage> WebRtcPeer::WebRtcReceived() {
  std::vector<gp::EdgeMessage> webrtc;
  for (gp::EdgeMessage& m : stream_.Received()) {
    if (m.has_webrtc()) webrtc.push_back(std::move(m));
  }
  return webrtc;
}

}  // namespace edge::testing
