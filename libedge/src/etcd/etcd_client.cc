#include "etcd_client.h"

#include <arpa/inet.h>

#include <fstream>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

namespace edge::etcd::internal {
namespace {

// The etcd backend's one conversion of a gRPC status. Both enums use the
// canonical code numbers 0..16 (google.rpc.Code); a code outside that range
// becomes UNKNOWN, as gRPC itself treats it.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view endpoint) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int>(absl::StatusCode::kUnknown);
  }
  return absl::Status(static_cast<absl::StatusCode>(code),
                      absl::StrCat("etcd ", endpoint, ": ", status.error_message()));
}

// Worth trying another endpoint: the member could not be reached or is not
// serving (no leader, shutting down).
bool ShouldFailOver(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAVAILABLE;
}

// IP literals bypass the DNS resolver ("ipv4:"/"ipv6:" targets).
std::string ChannelTarget(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (!host.empty() && host.front() == '[') return absl::StrCat("ipv6:", address);
  in_addr ipv4;
  if (inet_pton(AF_INET, host.c_str(), &ipv4) == 1) {
    return absl::StrCat("ipv4:", address);
  }
  return address;
}

void SetDeadline(grpc::ClientContext& context, absl::Time deadline) {
  context.set_deadline(absl::ToChronoTime(deadline));
}

// etcd refused the call's token: expired (--auth-token-ttl), from before
// an etcd restart, or older than a change of users and roles.
bool IsAuthFailure(const grpc::Status& status) {
  const std::string& message = status.error_message();
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
         absl::StrContains(message, "invalid auth token") ||
         absl::StrContains(message, "auth store is old") ||
         absl::StrContains(message, "user name is empty");
}

// A login takes at most this long (etcd checks the password with bcrypt,
// which is slow on purpose).
constexpr absl::Duration kAuthTimeout = absl::Seconds(5);

absl::StatusOr<std::string> ReadPem(absl::string_view what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd: cannot read the ", what, " \"", path, "\""));
  }
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (pem.empty() || in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd: the ", what, " \"", path, "\" is empty or unreadable"));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(
    const EtcdClientSecurity& security) {
  if (!security.tls) {
    if (!security.ca_file.empty() || !security.cert_file.empty()) {
      return absl::InvalidArgumentError(
          "etcd: CA or client certificate given without TLS (https://)");
    }
    return grpc::InsecureChannelCredentials();
  }
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "etcd: a client certificate needs both its certificate and key files");
  }
  grpc::SslCredentialsOptions options;
  if (!security.ca_file.empty()) {
    auto ca = ReadPem("CA file", security.ca_file);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
  }
  if (!security.cert_file.empty()) {
    auto cert = ReadPem("client certificate", security.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadPem("client key", security.key_file);
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *std::move(cert);
    options.pem_private_key = *std::move(key);
  }
  return grpc::SslCredentials(options);
}

// An endpoint whose calls fail this many times in a row on a channel at
// least kChannelMinAge old gets a new channel.
constexpr int kRenewAfterFailures = 3;
constexpr absl::Duration kChannelMinAge = absl::Seconds(1);

}  // namespace

struct EtcdClient::AsyncTxn {
  etcdserverpb::TxnRequest request;
  etcdserverpb::TxnResponse response;
  std::unique_ptr<grpc::ClientContext> context;
  absl::Time deadline;
  TxnDone done;
  size_t endpoint = 0;
  std::shared_ptr<Connection> connection;
  size_t attempts = 0;
  // The token sent, and whether a refused one was renewed already.
  std::string token;
  bool renewed_token = false;
};

struct EtcdClient::AuthCall {
  etcdserverpb::AuthenticateRequest request;
  etcdserverpb::AuthenticateResponse response;
  std::unique_ptr<grpc::ClientContext> context;
  absl::Time deadline;
  size_t endpoint = 0;
  std::shared_ptr<Connection> connection;
  size_t attempts = 0;
};

absl::StatusOr<std::shared_ptr<EtcdClient::Connection>> EtcdClient::NewConnection(
    const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const EtcdGatewayTls& gateway_tls) {
  grpc::ChannelArguments args;
  // Come back quickly after an etcd restart instead of gRPC's default
  // backoff of up to two minutes. (The minimum backoff is left alone: it
  // is also the connection attempt's timeout.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // A renewed channel must not pick up the old one's subchannel, and its
  // backoff, from the process-wide pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto connection = std::make_shared<Connection>();
  connection->channel = grpc::CreateCustomChannel(ChannelTarget(address), credentials, args);
  if (connection->channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("etcd: cannot create a channel to ", address));
  }
  connection->kv = etcdserverpb::KV::NewStub(connection->channel);
  connection->lease = etcdserverpb::Lease::NewStub(connection->channel);
  connection->watch = etcdserverpb::Watch::NewStub(connection->channel);
  connection->auth = etcdserverpb::Auth::NewStub(connection->channel);
  connection->gateway = std::make_unique<EtcdGatewayKeepalive>(address, gateway_tls);
  connection->created = absl::Now();
  return connection;
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const std::vector<std::string>& addresses, EtcdClientSecurity security, Logger* logger) {
  if (addresses.empty()) {
    return absl::InvalidArgumentError("etcd: no endpoints given");
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(security);
  if (!credentials.ok()) return credentials.status();
  EtcdGatewayTls gateway_tls{security.tls, security.ca_file, security.cert_file, security.key_file};
  std::vector<EndpointState> endpoints;
  for (const std::string& address : addresses) {
    if (address.empty()) {
      return absl::InvalidArgumentError("etcd: empty endpoint");
    }
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        NewConnection(address, *credentials, gateway_tls);
    if (!connection.ok()) return connection.status();
    endpoints.push_back(EndpointState{*std::move(connection), 0});
  }
  return std::unique_ptr<EtcdClient>(new EtcdClient(
      addresses, std::move(endpoints), *std::move(credentials), std::move(gateway_tls),
      std::move(security.username), std::move(security.password), logger));
}

EtcdClient::EtcdClient(std::vector<std::string> addresses, std::vector<EndpointState> endpoints,
                       std::shared_ptr<grpc::ChannelCredentials> credentials,
                       EtcdGatewayTls gateway_tls, std::string username, std::string password,
                       Logger* logger)
    : addresses_(std::move(addresses)),
      credentials_(std::move(credentials)),
      gateway_tls_(std::move(gateway_tls)),
      username_(std::move(username)),
      password_(std::move(password)),
      log_(logger),
      endpoints_(std::move(endpoints)) {}

EtcdClient::~EtcdClient() { Shutdown(); }

const std::string& EtcdClient::current_endpoint() const {
  return addresses_[current_.load() % addresses_.size()];
}

std::shared_ptr<EtcdClient::Connection> EtcdClient::ConnectionTo(size_t endpoint) {
  absl::MutexLock lock(&mu_);
  return endpoints_[endpoint].connection;
}

void EtcdClient::Report(size_t endpoint, const Connection* used, const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    EndpointState& state = endpoints_[endpoint];
    if (state.connection.get() != used) return;  // already renewed
    if (!ShouldFailOver(status)) {
      state.failures = 0;
      return;
    }
    if (++state.failures < kRenewAfterFailures || absl::Now() - used->created < kChannelMinAge) {
      return;
    }
  }
  // Built outside the lock; a concurrent renewal of the same endpoint wins
  // and this one is dropped.
  absl::StatusOr<std::shared_ptr<Connection>> fresh =
      NewConnection(addresses_[endpoint], credentials_, gateway_tls_);
  if (!fresh.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    EndpointState& state = endpoints_[endpoint];
    if (shut_down_ || state.connection.get() != used) return;
    state.connection = *std::move(fresh);
    state.failures = 0;
  }
  log_->Debug("etcd endpoint keeps failing; opened a new channel",
              {{"endpoint", addresses_[endpoint]}});
}

void EtcdClient::MoveOff(size_t failed) {
  if (addresses_.size() < 2) return;
  size_t next = (failed + 1) % addresses_.size();
  size_t expected = failed;
  // Only the first caller to see `failed` fail moves on, so concurrent
  // failures do not skip a healthy endpoint.
  if (current_.compare_exchange_strong(expected, next)) {
    log_->Warn("etcd endpoint unreachable, failing over",
               {{"failed", addresses_[failed]}, {"next", addresses_[next]}});
  }
}

template <typename Call>
absl::Status EtcdClient::WithFailover(absl::Time deadline, Call call) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("etcd client is shut down");
  }
  absl::Status last;
  std::string stale;
  bool renewed_token = false;
  for (size_t attempt = 0; attempt < addresses_.size(); ++attempt) {
    std::string token;
    if (!username_.empty()) {
      absl::StatusOr<std::string> got = GetTokenSync(stale, deadline);
      if (!got.ok()) return got.status();
      token = *std::move(got);
    }
    size_t index = current_.load() % addresses_.size();
    std::shared_ptr<Connection> connection = ConnectionTo(index);
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    if (!token.empty()) context.AddMetadata("token", token);
    grpc::Status status = call(*connection, context, token);
    Report(index, connection.get(), status);
    if (status.ok()) return absl::OkStatus();
    last = FromGrpc(status, addresses_[index]);
    if (!username_.empty() && !renewed_token && IsAuthFailure(status) && absl::Now() < deadline) {
      // Log in again and retry once, on the same endpoint.
      renewed_token = true;
      stale = token;
      --attempt;
      continue;
    }
    if (!ShouldFailOver(status) || absl::Now() >= deadline) break;
    MoveOff(index);
  }
  return last;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::TxnSync(
    const etcdserverpb::TxnRequest& request, absl::Time deadline) {
  etcdserverpb::TxnResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context, const std::string&) {
        response.Clear();
        return endpoint.kv->Txn(&context, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> EtcdClient::LeaseGrantSync(int64_t ttl_seconds,
                                                                            absl::Time deadline) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  etcdserverpb::LeaseGrantResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context, const std::string&) {
        response.Clear();
        return endpoint.lease->LeaseGrant(&context, request, &response);
      });
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return absl::UnavailableError(absl::StrCat("etcd refused a lease: ", response.error()));
  }
  return response;
}

absl::StatusOr<std::vector<etcdserverpb::TxnResponse>> EtcdClient::TxnAllSync(
    std::vector<etcdserverpb::TxnRequest> requests, absl::Time deadline) {
  struct Answers {
    absl::Mutex mu;
    size_t left ABSL_GUARDED_BY(mu) = 0;
    std::vector<etcdserverpb::TxnResponse> responses ABSL_GUARDED_BY(mu);
    absl::Status error ABSL_GUARDED_BY(mu);
  };
  auto answers = std::make_shared<Answers>();
  {
    absl::MutexLock lock(&answers->mu);
    answers->left = requests.size();
    answers->responses.resize(requests.size());
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    Txn(std::move(requests[i]), deadline,
        [answers, i](absl::StatusOr<etcdserverpb::TxnResponse> answer) {
          absl::MutexLock lock(&answers->mu);
          if (answer.ok()) {
            answers->responses[i] = *std::move(answer);
          } else if (answers->error.ok()) {
            answers->error = answer.status();
          }
          --answers->left;
        });
  }
  // Each call ends by its deadline (or at once after Shutdown).
  Answers& all = *answers;
  absl::MutexLock lock(&all.mu);
  auto answered = [&all]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(all.mu) { return all.left == 0; };
  all.mu.Await(absl::Condition(&answered));
  if (!all.error.ok()) return all.error;
  return std::move(all.responses);
}

absl::Status EtcdClient::LeaseRevokeSync(int64_t lease_id, absl::Time deadline) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseRevokeResponse response;
  return WithFailover(deadline,
                      [&](Connection& endpoint, grpc::ClientContext& context, const std::string&) {
                        return endpoint.lease->LeaseRevoke(&context, request, &response);
                      });
}

absl::Status EtcdClient::WatchSync(
    const etcdserverpb::WatchCreateRequest& create, absl::Time deadline,
    absl::FunctionRef<bool(const etcdserverpb::WatchResponse&)> take) {
  etcdserverpb::WatchRequest request;
  *request.mutable_create_request() = create;
  return WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context, const std::string&) {
        auto stream = endpoint.watch->Watch(&context);
        if (stream == nullptr)
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no watch stream");
        grpc::Status outcome(grpc::StatusCode::UNAVAILABLE, "watch stream closed early");
        bool ended = false;  // by `take`, or by etcd cancelling the watch
        if (stream->Write(request)) {
          etcdserverpb::WatchResponse response;
          etcdserverpb::WatchResponse whole;  // a large batch arrives in fragments
          while (!ended && stream->Read(&response)) {
            if (response.compact_revision() != 0) {
              outcome = grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                                     absl::StrCat("history before revision ",
                                                  response.compact_revision(), " is compacted"));
              ended = true;
            } else if (response.canceled()) {
              outcome = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     absl::StrCat("watch cancelled: ", response.cancel_reason()));
              ended = true;
            } else if (response.events_size() > 0 || response.fragment()) {
              for (mvccpb::Event& event : *response.mutable_events()) {
                whole.add_events()->Swap(&event);
              }
              if (!response.fragment()) {  // the batch is whole
                *whole.mutable_header() = response.header();
                if (take(whole)) {
                  outcome = grpc::Status::OK;
                  ended = true;
                }
                whole.Clear();
              }
            }
          }
        }
        // Done with the history: etcd would keep the watch open.
        context.TryCancel();
        stream->WritesDone();
        grpc::Status finished = stream->Finish();
        if (ended || finished.ok()) return outcome;
        if (absl::Now() >= deadline) {  // etcd may answer CANCELLED to that
          return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                              "the history read up to the deadline held no end to the watch");
        }
        return finished;
      });
}

absl::StatusOr<int64_t> EtcdClient::LeaseKeepAliveSync(int64_t lease_id, absl::Time deadline) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease_id);
  int64_t ttl = 0;
  absl::Status status = WithFailover(deadline, [&](Connection& endpoint,
                                                   grpc::ClientContext& context,
                                                   const std::string& token) {
    // Through etcd's HTTP gateway first: it does not wait behind the
    // process's other gRPC work (etcd_gateway.h).
    grpc::Status http = endpoint.gateway->KeepAlive(lease_id, token, deadline, &ttl);
    if (http.error_code() != grpc::StatusCode::UNIMPLEMENTED &&
        http.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return http;
    }
    // No gateway there, or HTTP could not get through: over gRPC. If gRPC
    // then does, the gateway is what is broken (etcd with --client-cert-auth
    // cannot serve its own, or a proxy passes gRPC only): leave it alone
    // for a while, and say so once.
    grpc::Status grpc_status = KeepAliveOverGrpc(endpoint, context, request, &ttl);
    if (grpc_status.ok() && http.error_code() == grpc::StatusCode::UNAVAILABLE) {
      const bool first = endpoint.gateway->Pause(absl::Minutes(10));
      Logger::Fields fields = {{"url", endpoint.gateway->url()}, {"error", http.error_message()}};
      if (first) {
        log_->Warn(
            "etcd's HTTP gateway cannot renew the lease, gRPC can: keepalives go over gRPC, "
            "which a very busy edge may delay (docs/operations.md, the etcd lease under load)",
            fields);
      } else {
        log_->Debug("etcd's HTTP gateway still cannot renew the lease", fields);
      }
    }
    return grpc_status;
  });
  if (!status.ok()) return status;
  return ttl;
}

grpc::Status EtcdClient::KeepAliveOverGrpc(Connection& endpoint, grpc::ClientContext& context,
                                           const etcdserverpb::LeaseKeepAliveRequest& request,
                                           int64_t* ttl) {
  etcdserverpb::LeaseKeepAliveResponse response;
  auto stream = endpoint.lease->LeaseKeepAlive(&context);
  if (stream == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "no keepalive stream");
  }
  bool answered = stream->Write(request) && stream->Read(&response);
  // With the answer in hand, waiting for etcd to close the stream only
  // delays the caller (by seconds when the process is busy): cancel it.
  if (answered) context.TryCancel();
  stream->WritesDone();
  grpc::Status finished = stream->Finish();
  if (answered) {
    *ttl = response.ttl();
    return grpc::Status::OK;
  }
  if (!finished.ok()) return finished;
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "keepalive stream closed without an answer");
}

void EtcdClient::Txn(etcdserverpb::TxnRequest request, absl::Time deadline, TxnDone done) {
  auto* op = new AsyncTxn;
  op->request = std::move(request);
  op->deadline = deadline;
  op->done = std::move(done);
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      in_flight_.insert(op);
      op->endpoint = current_.load() % addresses_.size();
      op->connection = endpoints_[op->endpoint].connection;
      op->context = std::make_unique<grpc::ClientContext>();
      SetDeadline(*op->context, deadline);
    }
  }
  if (op->context != nullptr) {
    GetToken("", [this, op](absl::StatusOr<std::string> token) {
      if (!token.ok()) {
        FinishTxn(op, token.status());
        return;
      }
      op->token = *std::move(token);
      StartTxn(op);
    });
    return;
  }
  TxnDone fail = std::move(op->done);
  delete op;
  fail(absl::UnavailableError("etcd client is shut down"));
}

// Called without mu_ held: gRPC may run the completion on this thread. A
// TryCancel from Shutdown that lands before the call starts still cancels it
// (gRPC remembers it on the context).
void EtcdClient::StartTxn(AsyncTxn* op) {
  ++op->attempts;
  if (!op->token.empty()) op->context->AddMetadata("token", op->token);
  op->connection->kv->async()->Txn(op->context.get(), &op->request, &op->response,
                                   [this, op](grpc::Status status) { OnTxnDone(op, status); });
}

void EtcdClient::OnTxnDone(AsyncTxn* op, const grpc::Status& status) {
  Report(op->endpoint, op->connection.get(), status);
  const bool renew_token = !username_.empty() && !op->renewed_token && IsAuthFailure(status) &&
                           absl::Now() < op->deadline;
  if ((renew_token || ShouldFailOver(status)) &&
      op->attempts < addresses_.size() + (renew_token ? 1 : 0) && absl::Now() < op->deadline) {
    if (!renew_token) MoveOff(op->endpoint);
    bool retry = false;
    {
      absl::MutexLock lock(&mu_);
      if (!shut_down_) {
        op->endpoint = current_.load() % addresses_.size();
        op->connection = endpoints_[op->endpoint].connection;
        op->context = std::make_unique<grpc::ClientContext>();
        SetDeadline(*op->context, op->deadline);
        op->response.Clear();
        retry = true;
      }
    }
    if (retry && renew_token) {
      op->renewed_token = true;
      GetToken(op->token, [this, op](absl::StatusOr<std::string> token) {
        if (!token.ok()) {
          FinishTxn(op, token.status());
          return;
        }
        op->token = *std::move(token);
        StartTxn(op);
      });
      return;
    }
    if (retry) {
      StartTxn(op);
      return;
    }
  }
  FinishTxn(op, status.ok() ? absl::StatusOr<etcdserverpb::TxnResponse>(std::move(op->response))
                            : FromGrpc(status, addresses_[op->endpoint]));
}

void EtcdClient::FinishTxn(AsyncTxn* op, absl::StatusOr<etcdserverpb::TxnResponse> result) {
  TxnDone done = std::move(op->done);
  done(std::move(result));
  absl::MutexLock lock(&mu_);
  in_flight_.erase(op);
  delete op;
}

void EtcdClient::GetToken(const std::string& stale, TokenDone done) {
  if (username_.empty()) {
    done(std::string());
    return;
  }
  AuthCall* start = nullptr;
  absl::StatusOr<std::string> now;
  bool waiting = false;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      now = absl::UnavailableError("etcd client is shut down");
    } else if (!token_.empty() && token_ != stale) {
      now = token_;
    } else {
      token_.clear();
      token_waiters_.push_back(std::move(done));
      waiting = true;
      if (auth_call_ == nullptr) {
        auth_call_ = new AuthCall;
        auth_call_->request.set_name(username_);
        auth_call_->request.set_password(password_);
        auth_call_->deadline = absl::Now() + kAuthTimeout;
        start = auth_call_;
      }
    }
  }
  if (start != nullptr) StartAuthenticate(start);
  if (!waiting) done(std::move(now));
}

absl::StatusOr<std::string> EtcdClient::GetTokenSync(const std::string& stale,
                                                     absl::Time deadline) {
  struct Wait {
    absl::Mutex mu;
    std::optional<absl::StatusOr<std::string>> token ABSL_GUARDED_BY(mu);
  };
  auto wait = std::make_shared<Wait>();
  GetToken(stale, [wait](absl::StatusOr<std::string> token) {
    absl::MutexLock lock(&wait->mu);
    wait->token = std::move(token);
  });
  absl::MutexLock lock(&wait->mu);
  wait->mu.AwaitWithDeadline(
      absl::Condition(
          +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS { return w->token.has_value(); }, wait.get()),
      deadline);
  if (!wait->token.has_value()) {
    return absl::DeadlineExceededError("etcd: no login before the deadline");
  }
  return *wait->token;
}

// Called without mu_ held; the call is auth_call_ until OnAuthenticated.
void EtcdClient::StartAuthenticate(AuthCall* call) {
  {
    absl::MutexLock lock(&mu_);
    call->endpoint = current_.load() % addresses_.size();
    call->connection = endpoints_[call->endpoint].connection;
    call->context = std::make_unique<grpc::ClientContext>();
    SetDeadline(*call->context, call->deadline);
    call->response.Clear();
    // Shutdown cancels the login through auth_call_; one that came first
    // is cancelled here.
    if (shut_down_) call->context->TryCancel();
  }
  ++call->attempts;
  call->connection->auth->async()->Authenticate(
      call->context.get(), &call->request, &call->response,
      [this, call](grpc::Status status) { OnAuthenticated(call, status); });
}

void EtcdClient::OnAuthenticated(AuthCall* call, const grpc::Status& status) {
  Report(call->endpoint, call->connection.get(), status);
  if (ShouldFailOver(status) && call->attempts < addresses_.size() &&
      absl::Now() < call->deadline) {
    MoveOff(call->endpoint);
    StartAuthenticate(call);
    return;
  }
  absl::StatusOr<std::string> token;
  if (!status.ok()) {
    token = FromGrpc(status, addresses_[call->endpoint]);
    log_->Warn("etcd login failed", {{"user", username_}, {"error", token.status().ToString()}});
  } else if (call->response.token().empty()) {
    token = absl::FailedPreconditionError("etcd gave no token: is authentication enabled on it?");
  } else {
    token = call->response.token();
  }
  std::vector<TokenDone> waiters;
  {
    absl::MutexLock lock(&mu_);
    if (token.ok()) token_ = *token;
    waiters.swap(token_waiters_);
    auth_call_ = nullptr;
  }
  delete call;
  // Waiters are calls in in_flight_ or sync callers: either keeps the client
  // alive until they return.
  for (TokenDone& waiter : waiters) waiter(token);
}

void EtcdClient::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (AsyncTxn* op : in_flight_) op->context->TryCancel();
  if (auth_call_ != nullptr && auth_call_->context != nullptr) {
    auth_call_->context->TryCancel();
  }
  mu_.Await(absl::Condition(
      +[](EtcdClient* self) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return self->in_flight_.empty() && self->auth_call_ == nullptr;
      },
      this));
}

}  // namespace edge::etcd::internal
