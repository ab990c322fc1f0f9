#include "grpc/grpc_test_peer.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace edge::testing {

std::shared_ptr<grpc::Channel> MakeChannel(int port, const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  if (options.keepalive_time > absl::ZeroDuration()) {
    const int ms = static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, ms);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, ms);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls.has_value()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls->root_ca;
    ssl.pem_cert_chain = options.tls->cert_chain;
    ssl.pem_private_key = options.tls->private_key;
    credentials = grpc::SslCredentials(ssl);
    args.SetSslTargetNameOverride("localhost");
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), credentials, args);
}

GrpcTestPeer::GrpcTestPeer(std::shared_ptr<grpc::Channel> channel, Options options)
    : channel_(std::move(channel)),
      stub_(giggityflix_grpc_peer::PeerEdgeService::NewStub(channel_)) {
  if (options.peer_id.has_value()) context_.AddMetadata("peer_id", *options.peer_id);
  stream_ = stub_->AsyncOperations(&context_);
  if (options.read) StartReading();
}

GrpcTestPeer::~GrpcTestPeer() {
  context_.TryCancel();
  StartReading();  // The reader collects the final status.
  reader_.join();
}

bool GrpcTestPeer::Send(const PeerMessage& message) {
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return false;
  return stream_->Write(message);
}

void GrpcTestPeer::HalfClose() {
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return;
  writes_done_ = true;
  stream_->WritesDone();
}

void GrpcTestPeer::Cancel() { context_.TryCancel(); }

void GrpcTestPeer::StartReading() {
  absl::MutexLock lock(&mu_);
  if (reading_) return;
  reading_ = true;
  reader_ = std::thread([this] { ReadLoop(); });
}

void GrpcTestPeer::ReadLoop() {
  EdgeMessage message;
  while (stream_->Read(&message)) {
    absl::MutexLock lock(&mu_);
    received_.push_back(std::move(message));
    message.Clear();
  }
  grpc::Status status = stream_->Finish();
  absl::MutexLock lock(&mu_);
  end_ = std::move(status);
}

std::vector<EdgeMessage> GrpcTestPeer::Received() {
  absl::MutexLock lock(&mu_);
  return received_;
}

bool GrpcTestPeer::WaitForReceived(size_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::optional<grpc::Status> GrpcTestPeer::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return end_.has_value(); };
  mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return end_;
}

grpc::Status CallWebRtc(const std::shared_ptr<grpc::Channel>& channel,
                        const std::optional<std::string>& peer_id,
                        const giggityflix_grpc_peer::EdgeWebRTCMessage& request,
                        giggityflix_grpc_peer::PeerWebRTCMessage* response,
                        absl::Duration timeout) {
  auto stub = giggityflix_grpc_peer::PeerEdgeService::NewStub(channel);
  grpc::ClientContext context;
  if (peer_id.has_value()) context.AddMetadata("peer_id", *peer_id);
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  return stub->WebRTCOperations(&context, request, response);
}

}  // namespace edge::testing
