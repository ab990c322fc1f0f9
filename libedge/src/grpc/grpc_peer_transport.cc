#include "edge/grpc/grpc_peer_transport.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "callback_queue.h"
#include "connection_guard.h"
#include "descriptor_reserve.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "grpc_peer_stream.h"
#include "listener_probe.h"
#include "tls_credentials.h"
#include "webrtc_call.h"

namespace edge::grpc_transport {

using internal::AsyncOperationsReactor;
using internal::CallbackQueue;
using internal::CallTracker;
using internal::ConnectionGuard;
using internal::ConnectionLimits;
using internal::DescriptorReserve;
using internal::DescriptorReserveOptions;
using internal::GrpcPeerStream;
using internal::ListenerProbe;
using internal::ListenerProbeOptions;
using internal::ReloadableTlsServerCredentials;
using internal::WebRtcCall;
using internal::WebRtcCallReactor;
using internal::WriteStarter;

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
  if (o.max_streams_per_connection < 0) {
    return bad("max_streams_per_connection", "must not be negative");
  }
  if (o.max_call_starts_per_connection_per_sec < 0 || o.call_start_burst < 0) {
    return bad("max_call_starts_per_connection_per_sec", "must not be negative");
  }
  if (o.max_concurrent_streams < 0) return bad("max_concurrent_streams", "must not be negative");
  if (o.descriptor_reserve < 0) return bad("descriptor_reserve", "must not be negative");
  if (o.max_connection_idle < absl::ZeroDuration()) {
    return bad("max_connection_idle", "must not be negative");
  }
  if (o.handshake_timeout <= absl::ZeroDuration()) {
    return bad("handshake_timeout", "must be positive");
  }
  if (o.listener_probe_interval < absl::ZeroDuration()) {
    return bad("listener_probe_interval", "must not be negative");
  }
  if (o.listener_probe_timeout <= absl::ZeroDuration()) {
    return bad("listener_probe_timeout", "must be positive");
  }
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

// `client_certificates`: the server asks for them (a CA to check them is
// configured). Otherwise the auth context is not asked for: gRPC builds it
// on first use and keeps it, with its properties, for the call's life.
PeerCallInfo CallInfoOf(const grpc::CallbackServerContext& context, bool client_certificates,
                        bool cn_fallback) {
  PeerCallInfo info;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("peer_id");
  if (it != metadata.end()) {
    info.has_peer_id = true;
    info.peer_id.assign(it->second.data(), it->second.size());
  }
  if (client_certificates) {
    if (auto auth = context.auth_context(); auth != nullptr) {
      info.cert_identity = internal::CertificateIdentity(*auth, cn_fallback);
    }
  }
  info.remote_address = context.peer();
  return info;
}

// The size of a call's metadata as HTTP/2 counts it (RFC 7540 6.5.2: each
// entry's name and value plus 32 bytes).
size_t MetadataBytes(const grpc::CallbackServerContext& context) {
  size_t bytes = 0;
  for (const auto& [key, value] : context.client_metadata()) {
    bytes += key.size() + value.size() + 32;
  }
  return bytes;
}

// Server reflection for one server, on or off. Linking gRPC's reflection
// library registers its plugin for every server of the process, so the
// option takes it out of this builder's plugins when off, and puts it in
// when on and missing.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enable) : enable_(enable) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    grpc::reflection::ProtoServerReflectionPlugin reference;
    const std::string name = reference.name();
    auto is_reflection = [&](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return plugin != nullptr && plugin->name() == name;
    };
    if (!enable_) {
      plugins->erase(std::remove_if(plugins->begin(), plugins->end(), is_reflection),
                     plugins->end());
    } else if (std::none_of(plugins->begin(), plugins->end(), is_reflection)) {
      plugins->push_back(std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>());
    }
  }

 private:
  const bool enable_;
};

}  // namespace

class GrpcPeerTransport::Impl final : public CallTracker {
 public:
  Impl(GrpcPeerTransportOptions options, std::shared_ptr<ReloadableTlsServerCredentials> tls)
      : options_(std::move(options)),
        logger_(options_.logger != nullptr ? options_.logger : &Logger::Null()),
        tls_(std::move(tls)),
        callbacks_(std::make_shared<CallbackQueue>()),
        writes_(std::make_shared<WriteStarter>()),
        guard_(ConnectionLimits{options_.max_streams_per_connection,
                                options_.max_call_starts_per_connection_per_sec,
                                options_.call_start_burst},
               options_.clock) {}

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
  absl::Status listener_status() const {
    absl::MutexLock lock(&mu_);
    return probe_ != nullptr ? probe_->status() : absl::OkStatus();
  }
  absl::Status ReloadCredentials();
  void SetServing(bool serving);

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* OpenStream(
      grpc::CallbackServerContext* context);
  grpc::ServerUnaryReactor* OpenWebRtcCall(grpc::CallbackServerContext* context,
                                           const EdgeWebRTCMessage* request,
                                           PeerWebRTCMessage* response);
  void CallDone(uint64_t call_id) override;

 private:
  enum class State { kNew, kStarting, kRunning, kStopping, kStopped };

  // The registered service: forwards both methods to the transport.
  // AsyncOperations is served raw (bytes), parsed by the stream itself: see
  // peer_message_reader.h.
  using ServiceBase = giggityflix_grpc_peer::PeerEdgeService::WithRawCallbackMethod_AsyncOperations<
      giggityflix_grpc_peer::PeerEdgeService::WithCallbackMethod_WebRTCOperations<
          giggityflix_grpc_peer::PeerEdgeService::Service>>;
  class Service final : public ServiceBase {
   public:
    explicit Service(Impl* impl) : impl_(impl) {}
    grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AsyncOperations(
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
  // Metadata size and per-connection bounds for a new call: OK, or why it is
  // refused (then nothing of it reaches the handler).
  absl::Status Screen(uint64_t call_id, const grpc::CallbackServerContext& context, bool stream);

  const GrpcPeerTransportOptions options_;
  Logger* const logger_;
  const std::shared_ptr<ReloadableTlsServerCredentials> tls_;
  const std::shared_ptr<CallbackQueue> callbacks_;
  const std::shared_ptr<WriteStarter> writes_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  ConnectionGuard guard_;

  mutable absl::Mutex mu_;
  std::unique_ptr<ListenerProbe> probe_ ABSL_GUARDED_BY(mu_);
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
  const absl::StatusOr<int64_t> descriptor_limit = DescriptorReserve::CurrentLimit();
  std::shared_ptr<DescriptorReserve> reserve;
  if (options_.descriptor_reserve > 0) {
    if (!descriptor_limit.ok()) return descriptor_limit.status();
    if (options_.descriptor_reserve >= *descriptor_limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("GrpcPeerTransportOptions.descriptor_reserve: ", options_.descriptor_reserve,
                       " leaves no descriptor for connections under this process' limit of ",
                       *descriptor_limit, " (RLIMIT_NOFILE)"));
    }
    reserve = std::make_shared<DescriptorReserve>(
        DescriptorReserveOptions{*descriptor_limit, options_.descriptor_reserve, options_.clock,
                                 logger_, options_.on_connections_refused});
  }
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
  // A process-wide switch of gRPC; it only affects servers built later.
  grpc::EnableDefaultHealthCheckService(true);

  auto service = std::make_unique<Service>(this);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      tls_ != nullptr ? std::shared_ptr<grpc::ServerCredentials>(tls_)
                      : grpc::InsecureServerCredentials();
  builder.AddListeningPort(options_.address, credentials, &bound_port);
  builder.RegisterService(service.get());
  builder.SetOption(std::make_unique<ReflectionOption>(options_.enable_reflection));
  if (reserve != nullptr) builder.SetOption(internal::DescriptorReserveOption(reserve));
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
  if (options_.max_concurrent_streams > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams);
  }
  if (options_.max_connection_idle > absl::ZeroDuration()) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                               ClampedMillis(options_.max_connection_idle));
  }
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             ClampedMillis(options_.handshake_timeout));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    absl::MutexLock lock(&mu_);
    state_ = State::kNew;
    handler_ = nullptr;
    return absl::UnavailableError(absl::StrCat("gRPC server cannot listen on ", options_.address));
  }
  std::unique_ptr<ListenerProbe> probe;
  if (options_.listener_probe_interval > absl::ZeroDuration()) {
    probe = std::make_unique<ListenerProbe>(
        ListenerProbeOptions{internal::ProbeHostFor(options_.address), bound_port, tls_ != nullptr,
                             options_.listener_probe_interval, options_.listener_probe_timeout, 2});
    probe->Start();
  }
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    probe_ = std::move(probe);
    service_ = std::move(service);
    server_ = std::move(server);
    port_ = bound_port;
    state_ = State::kRunning;
    serving = serving_;
  }
  ApplyServing(serving);
  logger_->Info(
      "gRPC peer transport listening",
      {{"address", options_.address},
       {"port", absl::StrCat(bound_port)},
       {"tls", tls_ == nullptr                   ? "off"
               : options_.client_ca_file.empty() ? "server"
                                                 : "mutual"},
       {"descriptor_reserve",
        reserve == nullptr ? std::string("off") : absl::StrCat(options_.descriptor_reserve)},
       {"descriptor_limit",
        descriptor_limit.ok() ? absl::StrCat(*descriptor_limit) : std::string("unknown")}});
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
  logger_->Info("gRPC peer transport shutting down", {{"streams", absl::StrCat(streams.size())}});
  std::unique_ptr<ListenerProbe> probe;
  {
    absl::MutexLock lock(&mu_);
    probe = std::move(probe_);
  }
  if (probe != nullptr) probe->Stop();
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

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* GrpcPeerTransport::Impl::OpenStream(
    grpc::CallbackServerContext* context) {
  // A reaction on gRPC's thread: writes asked for from here start at once.
  WriteStarter::GrpcThreadScope scope;
  PeerStreamHandler* handler = nullptr;
  AsyncOperationsReactor* reactor;
  std::shared_ptr<GrpcPeerStream> stream;
  PeerCallInfo info =
      CallInfoOf(*context, !options_.client_ca_file.empty(), options_.identity_cn_fallback);
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = ++next_call_id_;
    ++live_calls_;
  }
  reactor = new AsyncOperationsReactor(context, this, id);
  if (absl::Status screened = Screen(id, *context, /*stream=*/true); !screened.ok()) {
    reactor->Reject(screened);
    return reactor;
  }
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kStarting || state_ == State::kRunning) {
      handler = handler_;
      stream = std::make_shared<GrpcPeerStream>(
          std::move(info), options_.clock, options_.write_timeout, callbacks_, writes_, reactor);
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
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = ++next_call_id_;
    ++live_calls_;
  }
  reactor = new WebRtcCallReactor(this, id);
  call = std::make_shared<WebRtcCall>(reactor, response);
  reactor->set_call(call);
  if (absl::Status screened = Screen(id, *context, /*stream=*/false); !screened.ok()) {
    call->Complete(screened);
    return reactor;
  }
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kStarting || state_ == State::kRunning) {
      handler = handler_;
      webrtc_calls_.emplace(id, call);
    }
  }
  if (handler == nullptr) {
    call->Complete(absl::UnavailableError("the edge is shutting down"));
    return reactor;
  }
  handler->OnWebRtcCall(
      CallInfoOf(*context, !options_.client_ca_file.empty(), options_.identity_cn_fallback),
      *request,
      [call](absl::StatusOr<PeerWebRTCMessage> reply) { call->Complete(std::move(reply)); });
  return reactor;
}

absl::Status GrpcPeerTransport::Impl::Screen(uint64_t call_id,
                                             const grpc::CallbackServerContext& context,
                                             bool stream) {
  const std::string peer = context.peer();
  if (const size_t bytes = MetadataBytes(context);
      bytes > static_cast<size_t>(options_.max_metadata_bytes)) {
    logger_->Warn("refusing a call whose metadata exceeds the limit",
                  {{"remote", peer},
                   {"metadata_bytes", absl::StrCat(bytes)},
                   {"limit", absl::StrCat(options_.max_metadata_bytes)}});
    return absl::ResourceExhaustedError(absl::StrCat("request metadata of ", bytes,
                                                     " bytes exceeds the edge's limit of ",
                                                     options_.max_metadata_bytes, " bytes"));
  }
  ConnectionGuard::Verdict verdict = guard_.Admit(call_id, peer, stream);
  if (verdict.status.ok()) return verdict.status;
  // Once per connection: a flood would otherwise flood the log too.
  if (verdict.first_refusal) {
    logger_->Warn("refusing calls of a connection over its bounds",
                  {{"remote", peer}, {"status", verdict.status.ToString()}});
  }
  if (verdict.close_connection) {
    int port;
    {
      absl::MutexLock lock(&mu_);
      port = port_;
    }
    // Off the reaction: finding the socket reads /proc/self/fd.
    callbacks_->Post([logger = logger_, port, peer] {
      absl::Status closed = internal::CloseTcpConnection(port, peer);
      logger->Warn("closed a connection that started calls too fast",
                   {{"remote", peer}, {"result", closed.ToString()}});
    });
  }
  return verdict.status;
}

void GrpcPeerTransport::Impl::CallDone(uint64_t call_id) {
  guard_.Release(call_id);
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

absl::Status GrpcPeerTransport::Start(PeerStreamHandler* handler) { return impl_->Start(handler); }
void GrpcPeerTransport::Shutdown() { impl_->Shutdown(); }
int GrpcPeerTransport::port() const { return impl_->port(); }
absl::Status GrpcPeerTransport::listener_status() const { return impl_->listener_status(); }
bool GrpcPeerTransport::tls() const { return impl_->tls(); }
absl::Status GrpcPeerTransport::ReloadCredentials() { return impl_->ReloadCredentials(); }
void GrpcPeerTransport::SetServing(bool serving) { impl_->SetServing(serving); }

}  // namespace edge::grpc_transport
