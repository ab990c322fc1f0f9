#include "edge/grpc_peer_transport.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <climits>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "grpc/callback_queue.h"
#include "grpc/grpc_peer_stream.h"
#include "grpc/tls_credentials.h"
#include "grpc/webrtc_call.h"

namespace edge {

using grpc_internal::AsyncOperationsReactor;
using grpc_internal::CallbackQueue;
using grpc_internal::CallTracker;
using grpc_internal::GrpcPeerStream;
using grpc_internal::ReloadableTlsServerCredentials;
using grpc_internal::WebRtcCall;
using grpc_internal::WebRtcCallReactor;

namespace {

constexpr char kServiceName[] = "giggityflix_grpc_peer.PeerEdgeService";

int ClampedMillis(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

absl::Status Validate(const GrpcPeerTransportOptions& o) {
  auto bad = [](absl::string_view option, absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("GrpcPeerTransportOptions.", option, ": ", why));
  };
  if (o.address.empty()) return bad("address", "empty");
  if (o.keepalive_time <= absl::ZeroDuration()) return bad("keepalive_time", "must be positive");
  if (o.keepalive_timeout <= absl::ZeroDuration()) {
    return bad("keepalive_timeout", "must be positive");
  }
  if (o.min_client_ping_interval < absl::ZeroDuration()) {
    return bad("min_client_ping_interval", "must not be negative");
  }
  if (o.max_ping_strikes < 0) return bad("max_ping_strikes", "must not be negative");
  if (o.max_message_bytes <= 0) return bad("max_message_bytes", "must be positive");
  if (o.max_metadata_bytes <= 0) return bad("max_metadata_bytes", "must be positive");
  if (o.write_timeout <= absl::ZeroDuration()) return bad("write_timeout", "must be positive");
  if (o.shutdown_grace < absl::ZeroDuration()) return bad("shutdown_grace", "must not be negative");
  if (o.clock == nullptr) return bad("clock", "required");
  if (o.cert_file.empty() != o.key_file.empty()) {
    return bad(o.cert_file.empty() ? "cert_file" : "key_file",
               "TLS needs both a certificate and a key file");
  }
  if (!o.client_ca_file.empty() && o.cert_file.empty()) {
    return bad("client_ca_file", "client certificates need server TLS (cert_file, key_file)");
  }
  return absl::OkStatus();
}

PeerCallInfo CallInfoOf(const grpc::CallbackServerContext& context) {
  PeerCallInfo info;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("peer_id");
  if (it != metadata.end()) {
    info.has_peer_id = true;
    info.peer_id.assign(it->second.data(), it->second.size());
  }
  if (auto auth = context.auth_context(); auth != nullptr) {
    info.cert_identity = grpc_internal::CertificateIdentity(*auth);
  }
  info.remote_address = context.peer();
  return info;
}

}  // namespace

class GrpcPeerTransport::Impl final : public CallTracker {
 public:
  Impl(GrpcPeerTransportOptions options, std::shared_ptr<ReloadableTlsServerCredentials> tls)
      : options_(std::move(options)),
        logger_(options_.logger != nullptr ? options_.logger : &Logger::Null()),
        tls_(std::move(tls)),
        callbacks_(std::make_shared<CallbackQueue>()) {}

  ~Impl() override {
    Shutdown();
    callbacks_->Stop();
    server_.reset();  // Before the service and the credentials it uses.
    service_.reset();
  }

  absl::Status Start(PeerStreamHandler* handler);
  void Shutdown();
  int port() const {
    absl::MutexLock lock(&mu_);
    return port_;
  }
  bool tls() const { return tls_ != nullptr; }
  absl::Status ReloadCredentials();
  void SetServing(bool serving);

  grpc::ServerBidiReactor<PeerMessage, EdgeMessage>* OpenStream(
      grpc::CallbackServerContext* context);
  grpc::ServerUnaryReactor* OpenWebRtcCall(grpc::CallbackServerContext* context,
                                           const EdgeWebRTCMessage* request,
                                           PeerWebRTCMessage* response);
  void CallDone(uint64_t call_id) override;

 private:
  enum class State { kNew, kStarting, kRunning, kStopping, kStopped };

  // The registered service: forwards both methods to the transport.
  class Service final : public giggityflix_grpc_peer::PeerEdgeService::CallbackService {
   public:
    explicit Service(Impl* impl) : impl_(impl) {}
    grpc::ServerBidiReactor<PeerMessage, EdgeMessage>* AsyncOperations(
        grpc::CallbackServerContext* context) override {
      return impl_->OpenStream(context);
    }
    grpc::ServerUnaryReactor* WebRTCOperations(grpc::CallbackServerContext* context,
                                               const EdgeWebRTCMessage* request,
                                               PeerWebRTCMessage* response) override {
      return impl_->OpenWebRtcCall(context, request, response);
    }

   private:
    Impl* const impl_;
  };

  void ApplyServing(bool serving);

  const GrpcPeerTransportOptions options_;
  Logger* const logger_;
  const std::shared_ptr<ReloadableTlsServerCredentials> tls_;
  const std::shared_ptr<CallbackQueue> callbacks_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  PeerStreamHandler* handler_ ABSL_GUARDED_BY(mu_) = nullptr;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  uint64_t next_call_id_ ABSL_GUARDED_BY(mu_) = 0;
  int live_calls_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::weak_ptr<GrpcPeerStream>> streams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::weak_ptr<WebRtcCall>> webrtc_calls_ ABSL_GUARDED_BY(mu_);
};

absl::Status GrpcPeerTransport::Impl::Start(PeerStreamHandler* handler) {
  if (handler == nullptr) return absl::InvalidArgumentError("Start: handler is null");
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kNew) {
      return absl::FailedPreconditionError(state_ == State::kStopping || state_ == State::kStopped
                                               ? "transport was shut down"
                                               : "transport already started");
    }
    state_ = State::kStarting;
    handler_ = handler;
  }
  // Process-wide switches of gRPC; both only affect servers built later.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  auto service = std::make_unique<Service>(this);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      tls_ != nullptr ? std::shared_ptr<grpc::ServerCredentials>(tls_)
                      : grpc::InsecureServerCredentials();
  builder.AddListeningPort(options_.address, credentials, &bound_port);
  builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  // A port another process already serves must fail the start, not be
  // shared with it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, options_.max_metadata_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ClampedMillis(options_.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             ClampedMillis(options_.keepalive_timeout));
  // Keep pinging idle connections (peers often sit idle between keepalive
  // announcements), and let peers ping us as often as the option allows.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             ClampedMillis(options_.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, options_.max_ping_strikes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    absl::MutexLock lock(&mu_);
    state_ = State::kNew;
    handler_ = nullptr;
    return absl::UnavailableError(
        absl::StrCat("gRPC server cannot listen on ", options_.address));
  }
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    service_ = std::move(service);
    server_ = std::move(server);
    port_ = bound_port;
    state_ = State::kRunning;
    serving = serving_;
  }
  ApplyServing(serving);
  logger_->Info("gRPC peer transport listening",
                {{"address", options_.address},
                 {"port", absl::StrCat(bound_port)},
                 {"tls", tls_ == nullptr                    ? "off"
                         : options_.client_ca_file.empty() ? "server"
                                                           : "mutual"}});
  return absl::OkStatus();
}

void GrpcPeerTransport::Impl::Shutdown() {
  std::vector<std::shared_ptr<GrpcPeerStream>> streams;
  std::vector<std::shared_ptr<WebRtcCall>> calls;
  {
    absl::MutexLock lock(&mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return state_ != State::kStarting && state_ != State::kStopping;
    };
    mu_.Await(absl::Condition(&settled));
    if (state_ == State::kStopped) return;
    if (state_ == State::kNew) {
      state_ = State::kStopped;
      return;
    }
    state_ = State::kStopping;
    for (auto& [id, weak] : streams_) {
      if (auto stream = weak.lock()) streams.push_back(std::move(stream));
    }
    for (auto& [id, weak] : webrtc_calls_) {
      if (auto call = weak.lock()) calls.push_back(std::move(call));
    }
  }
  logger_->Info("gRPC peer transport shutting down",
                {{"streams", absl::StrCat(streams.size())}});
  if (auto* health = server_->GetHealthCheckService(); health != nullptr) health->Shutdown();
  const absl::Status shutting_down = absl::UnavailableError("the edge is shutting down");
  for (auto& stream : streams) stream->Finish(shutting_down);
  for (auto& call : calls) call->Complete(shutting_down);
  streams.clear();
  calls.clear();
  // Waits for the calls to end, and cancels those still open at the deadline
  // (a write the peer does not read, a handler that has not replied yet).
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
  {
    absl::MutexLock lock(&mu_);
    auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_calls_ == 0; };
    mu_.Await(absl::Condition(&all_done));
  }
  callbacks_->Flush();
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kStopped;
    handler_ = nullptr;
  }
  logger_->Info("gRPC peer transport stopped");
}

absl::Status GrpcPeerTransport::Impl::ReloadCredentials() {
  if (tls_ == nullptr) {
    return absl::FailedPreconditionError("ReloadCredentials: the transport does not use TLS");
  }
  absl::Status status = tls_->Reload();
  if (status.ok()) {
    logger_->Info("TLS credentials reloaded", {{"cert_file", options_.cert_file}});
  } else {
    logger_->Error("TLS credentials not reloaded, keeping the current ones",
                   {{"error", status.ToString()}});
  }
  return status;
}

void GrpcPeerTransport::Impl::SetServing(bool serving) {
  {
    absl::MutexLock lock(&mu_);
    serving_ = serving;
    if (state_ != State::kRunning) return;
  }
  ApplyServing(serving);
}

void GrpcPeerTransport::Impl::ApplyServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(kServiceName, serving);
  health->SetServingStatus(serving);
}

grpc::ServerBidiReactor<PeerMessage, EdgeMessage>* GrpcPeerTransport::Impl::OpenStream(
    grpc::CallbackServerContext* context) {
  PeerStreamHandler* handler = nullptr;
  AsyncOperationsReactor* reactor;
  std::shared_ptr<GrpcPeerStream> stream;
  PeerCallInfo info = CallInfoOf(*context);
  {
    absl::MutexLock lock(&mu_);
    const uint64_t id = ++next_call_id_;
    ++live_calls_;
    reactor = new AsyncOperationsReactor(context, this, id);
    if (state_ == State::kStarting || state_ == State::kRunning) {
      handler = handler_;
      stream = std::make_shared<GrpcPeerStream>(std::move(info), options_.clock,
                                                options_.write_timeout, callbacks_, reactor);
      reactor->set_stream(stream);
      streams_.emplace(id, stream);
    }
  }
  if (stream == nullptr) {
    reactor->Reject(absl::UnavailableError("the edge is shutting down"));
    return reactor;
  }
  handler->OnStreamStart(stream, [stream](auto decision) { stream->Decide(std::move(decision)); });
  return reactor;
}

grpc::ServerUnaryReactor* GrpcPeerTransport::Impl::OpenWebRtcCall(
    grpc::CallbackServerContext* context, const EdgeWebRTCMessage* request,
    PeerWebRTCMessage* response) {
  PeerStreamHandler* handler = nullptr;
  WebRtcCallReactor* reactor;
  std::shared_ptr<WebRtcCall> call;
  {
    absl::MutexLock lock(&mu_);
    const uint64_t id = ++next_call_id_;
    ++live_calls_;
    reactor = new WebRtcCallReactor(this, id);
    call = std::make_shared<WebRtcCall>(reactor, response);
    reactor->set_call(call);
    if (state_ == State::kStarting || state_ == State::kRunning) {
      handler = handler_;
      webrtc_calls_.emplace(id, call);
    }
  }
  if (handler == nullptr) {
    call->Complete(absl::UnavailableError("the edge is shutting down"));
    return reactor;
  }
  handler->OnWebRtcCall(CallInfoOf(*context), *request,
                        [call](absl::StatusOr<PeerWebRTCMessage> reply) {
                          call->Complete(std::move(reply));
                        });
  return reactor;
}

void GrpcPeerTransport::Impl::CallDone(uint64_t call_id) {
  absl::MutexLock lock(&mu_);
  streams_.erase(call_id);
  webrtc_calls_.erase(call_id);
  --live_calls_;
}

// --- GrpcPeerTransport ---

absl::StatusOr<std::unique_ptr<GrpcPeerTransport>> GrpcPeerTransport::Create(
    GrpcPeerTransportOptions options) {
  if (absl::Status valid = Validate(options); !valid.ok()) return valid;
  std::shared_ptr<ReloadableTlsServerCredentials> tls;
  if (!options.cert_file.empty()) {
    auto credentials = ReloadableTlsServerCredentials::Create(
        {options.cert_file, options.key_file, options.client_ca_file});
    if (!credentials.ok()) return credentials.status();
    tls = *std::move(credentials);
  }
  return std::unique_ptr<GrpcPeerTransport>(
      new GrpcPeerTransport(std::make_unique<Impl>(std::move(options), std::move(tls))));
}

GrpcPeerTransport::GrpcPeerTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcPeerTransport::~GrpcPeerTransport() = default;

absl::Status GrpcPeerTransport::Start(PeerStreamHandler* handler) {
  return impl_->Start(handler);
}
void GrpcPeerTransport::Shutdown() { impl_->Shutdown(); }
int GrpcPeerTransport::port() const { return impl_->port(); }
bool GrpcPeerTransport::tls() const { return impl_->tls(); }
absl::Status GrpcPeerTransport::ReloadCredentials() { return impl_->ReloadCredentials(); }
void GrpcPeerTransport::SetServing(bool serving) { impl_->SetServing(serving); }

}  // namespace edge
