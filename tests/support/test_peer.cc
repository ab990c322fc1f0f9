#include "support/test_peer.h"

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::testing {

namespace gp = giggityflix_grpc_peer;

std::string NextRequestId(const std::string& prefix) {
  static std::atomic<int64_t> next{0};
  return absl::StrCat(prefix, "-", next.fetch_add(1) + 1);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::shared_ptr<grpc::Channel> TestPeer::NewChannel(const std::string& address,
                                                    const ChannelOptions& options) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  if (options.receive_window_bytes > 0) {
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, options.receive_window_bytes);
  }
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
  return grpc::CreateCustomChannel(address, credentials, args);
}

std::shared_ptr<grpc::Channel> TestPeer::NewChannel(int port, const ChannelOptions& options) {
  return NewChannel(absl::StrCat("127.0.0.1:", port), options);
}

TestPeer::TestPeer(std::shared_ptr<grpc::Channel> channel, Options options)
    : options_(std::move(options)),
      peer_id_(options_.peer_id.value_or("")),
      channel_(std::move(channel)),
      stub_(gp::PeerEdgeService::NewStub(channel_)) {
  if (options_.peer_id.has_value()) context_.AddMetadata("peer_id", *options_.peer_id);
  stream_ = stub_->AsyncOperations(&context_);
  if (options_.read) StartReading();
}

absl::StatusOr<std::unique_ptr<TestPeer>> TestPeer::Connect(const std::string& address,
                                                            Options options) {
  absl::Duration timeout = options.admission_timeout;
  bool wait = options.read;
  ChannelOptions channel;
  channel.receive_window_bytes = options.receive_window_bytes;
  auto peer = std::make_unique<TestPeer>(NewChannel(address, channel), std::move(options));
  if (!wait) return peer;
  if (absl::Status admitted = peer->AwaitAdmission(timeout); !admitted.ok()) return admitted;
  return peer;
}

absl::Status TestPeer::AwaitAdmission(absl::Duration timeout) {
  std::string request_id = NextRequestId("admission");
  SendKeepalive(request_id);
  absl::MutexLock lock(&mu_);
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (end_.has_value()) return true;
    for (const EdgeMessage& m : received_) {
      if (m.request_id() == request_id && m.payload_case() == EdgeMessage::PAYLOAD_NOT_SET) {
        return true;
      }
    }
    return false;
  };
  mu_.AwaitWithTimeout(absl::Condition(&settled), timeout);
  if (end_.has_value()) {
    return absl::Status(static_cast<absl::StatusCode>(end_->error_code()),
                        absl::StrCat("stream ended: ", end_->error_message()));
  }
  if (!settled()) {
    return absl::DeadlineExceededError(
        absl::StrCat("peer ", peer_id_, " not admitted within ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

TestPeer::~TestPeer() {
  context_.TryCancel();
  StartReading();  // The reader collects the final status.
  reader_.join();
}

bool TestPeer::Send(const PeerMessage& message) {
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return false;
  return stream_->Write(message);
}

bool TestPeer::SendKeepalive(const std::string& request_id) {
  PeerMessage keepalive;
  keepalive.set_request_id(request_id);
  keepalive.mutable_catalog_announcement();
  return Send(keepalive);
}

void TestPeer::HalfClose() {
  absl::MutexLock lock(&write_mu_);
  if (writes_done_) return;
  writes_done_ = true;
  stream_->WritesDone();
}

void TestPeer::Cancel() { context_.TryCancel(); }

void TestPeer::StartReading() {
  absl::MutexLock lock(&mu_);
  if (reading_) return;
  reading_ = true;
  reader_ = std::thread([this] { ReadLoop(); });
}

std::optional<TestPeer::PeerMessage> TestPeer::Answer(const EdgeMessage& command) const {
  PeerMessage reply;
  reply.set_request_id(command.request_id());
  switch (command.payload_case()) {
    case EdgeMessage::kCatalogAnnouncementRequest:
      for (const std::string& id : options_.catalog) {
        reply.mutable_catalog_announcement()->add_catalog_ids(id);
      }
      reply.mutable_catalog_announcement();
      return reply;
    case EdgeMessage::kFileDeleteRequest:
      // One response per id, as the existing peers do; the first one here.
      if (command.file_delete_request().catalog_ids().empty()) return std::nullopt;
      reply.mutable_file_delete_response()->set_catalog_id(
          command.file_delete_request().catalog_ids(0));
      reply.mutable_file_delete_response()->set_success(true);
      return reply;
    case EdgeMessage::kFileHashRequest: {
      auto* response = reply.mutable_file_hash_response();
      response->set_catalog_id(command.file_hash_request().catalog_id());
      for (const std::string& type : command.file_hash_request().hash_types()) {
        (*response->mutable_hashes())[type] =
            absl::StrCat(type, "-of-", command.file_hash_request().catalog_id());
      }
      response->set_success(true);
      return reply;
    }
    default:
      return std::nullopt;
  }
}

void TestPeer::ReadLoop() {
  EdgeMessage message;
  while (true) {
    if (options_.read_interval > absl::ZeroDuration()) absl::SleepFor(options_.read_interval);
    if (!stream_->Read(&message)) break;
    std::optional<PeerMessage> reply;
    if (options_.auto_answer) reply = Answer(message);
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(message);
    }
    if (reply.has_value()) Send(*reply);
    message.Clear();
  }
  grpc::Status status = stream_->Finish();
  absl::MutexLock lock(&mu_);
  end_ = std::move(status);
}

std::vector<TestPeer::EdgeMessage> TestPeer::Received() {
  absl::MutexLock lock(&mu_);
  return received_;
}

std::vector<TestPeer::EdgeMessage> TestPeer::Commands() {
  absl::MutexLock lock(&mu_);
  std::vector<EdgeMessage> commands;
  for (const EdgeMessage& m : received_) {
    if (m.payload_case() != EdgeMessage::PAYLOAD_NOT_SET) commands.push_back(m);
  }
  return commands;
}

size_t TestPeer::ReceivedCount() {
  absl::MutexLock lock(&mu_);
  return received_.size();
}

bool TestPeer::WaitForReceived(size_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool TestPeer::WaitUntil(const std::function<bool(const std::vector<EdgeMessage>&)>& done,
                         absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(received_); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

std::optional<TestPeer::EdgeMessage> TestPeer::WaitForMessage(
    const std::function<bool(const EdgeMessage&)>& match, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  size_t checked = 0;
  std::optional<EdgeMessage> found;
  auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (; checked < received_.size(); ++checked) {
      if (match(received_[checked])) {
        found = received_[checked];
        return true;
      }
    }
    return false;
  };
  mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  return found;
}

bool TestPeer::WaitForAck(const std::string& request_id, absl::Duration timeout) {
  return WaitForMessage(
             [&](const EdgeMessage& m) {
               return m.request_id() == request_id &&
                      m.payload_case() == EdgeMessage::PAYLOAD_NOT_SET;
             },
             timeout)
      .has_value();
}

bool TestPeer::HasAck(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  for (const EdgeMessage& m : received_) {
    if (m.request_id() == request_id && m.payload_case() == EdgeMessage::PAYLOAD_NOT_SET) {
      return true;
    }
  }
  return false;
}

std::optional<grpc::Status> TestPeer::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return end_.has_value(); };
  mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return end_;
}

std::optional<grpc::Status> TestPeer::end_status() {
  absl::MutexLock lock(&mu_);
  return end_;
}

grpc::Status TestPeer::WebRtcCall(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::optional<std::string>& peer_id,
                                  const gp::EdgeWebRTCMessage& request,
                                  gp::PeerWebRTCMessage* response, absl::Duration timeout) {
  auto stub = gp::PeerEdgeService::NewStub(channel);
  grpc::ClientContext context;
  if (peer_id.has_value()) context.AddMetadata("peer_id", *peer_id);
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  return stub->WebRTCOperations(&context, request, response);
}

}  // namespace edge::testing
