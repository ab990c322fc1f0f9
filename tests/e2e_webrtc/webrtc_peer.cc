#include "e2e_webrtc/webrtc_peer.h"

#include <utility>

#include "absl/strings/str_cat.h"
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

}  // namespace

std::shared_ptr<grpc::Channel> NewChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

absl::StatusOr<gp::PeerWebRTCMessage> ToStatusOr(const grpc::Status& status,
                                                 gp::PeerWebRTCMessage reply) {
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return reply;
}

absl::StatusOr<gp::PeerWebRTCMessage> CallWebRtc(
    grpc::Channel& channel, const std::optional<std::string>& peer_id,
    const gp::EdgeWebRTCMessage& request, absl::Duration timeout) {
  auto stub = gp::PeerEdgeService::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  if (peer_id.has_value()) context.AddMetadata("peer_id", *peer_id);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  gp::PeerWebRTCMessage reply;
  grpc::Status status = stub->WebRTCOperations(&context, request, &reply);
  return ToStatusOr(status, std::move(reply));
}

WebRtcPeer::WebRtcPeer(std::shared_ptr<grpc::Channel> channel,
                       std::string peer_id)
    : channel_(std::move(channel)),
      peer_id_(std::move(peer_id)),
      stub_(gp::PeerEdgeService::NewStub(channel_)) {
  context_.AddMetadata("peer_id", peer_id_);
  stream_ = stub_->AsyncOperations(&context_);
  reader_ = std::thread([this] { ReadLoop(); });
}

WebRtcPeer::~WebRtcPeer() {
  context_.TryCancel();
  reader_.join();
}

void WebRtcPeer::ReadLoop() {
  gp::EdgeMessage message;
  while (stream_->Read(&message)) {
    absl::MutexLock lock(&mu_);
    received_.push_back(std::move(message));
    message.Clear();
  }
  stream_->Finish().error_code();
  absl::MutexLock lock(&mu_);
  ended_ = true;
}

bool WebRtcPeer::Admitted(absl::Duration timeout) {
  gp::PeerMessage keepalive;
  keepalive.set_request_id(absl::StrCat(peer_id_, "-hello"));
  keepalive.mutable_catalog_announcement();
  if (!Send(keepalive)) return false;
  return WaitForReceived(
      [&](const std::vector<gp::EdgeMessage>& received) {
        for (const gp::EdgeMessage& m : received) {
          if (m.request_id() == keepalive.request_id()) return true;
        }
        return false;
      },
      timeout);
}

absl::StatusOr<gp::PeerWebRTCMessage> WebRtcPeer::Call(
    const gp::EdgeWebRTCMessage& request, absl::Duration timeout) {
  return CallWebRtc(*channel_, peer_id_, request, timeout);
}

void WebRtcPeer::StartCall(const gp::EdgeWebRTCMessage& request, Done done,
                           absl::Duration timeout) {
  auto* call = new AsyncCall;
  call->context.AddMetadata("peer_id", peer_id_);
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  call->request = request;
  call->done = std::move(done);
  stub_->async()->WebRTCOperations(
      &call->context, &call->request, &call->reply,
      [call](grpc::Status status) {
        call->done(ToStatusOr(status, std::move(call->reply)));
        delete call;
      });
}

bool WebRtcPeer::Send(const gp::PeerMessage& message) {
  absl::MutexLock lock(&write_mu_);
  return stream_->Write(message);
}

void WebRtcPeer::Disconnect() {
  context_.TryCancel();
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&ended_), absl::Seconds(10));
}

std::vector<gp::EdgeMessage> WebRtcPeer::Received() {
  absl::MutexLock lock(&mu_);
  return received_;
}

std::vector<gp::EdgeMessage> WebRtcPeer::WebRtcReceived() {
  absl::MutexLock lock(&mu_);
  std::vector<gp::EdgeMessage> webrtc;
  for (const gp::EdgeMessage& m : received_) {
    if (m.has_webrtc()) webrtc.push_back(m);
  }
  return webrtc;
}

bool WebRtcPeer::WaitForReceived(
    const std::function<bool(const std::vector<gp::EdgeMessage>&)>& pred,
    absl::Duration timeout) {
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pred(received_);
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

}  // namespace edge::testing
