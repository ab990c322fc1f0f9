#include "etcd/etcd_client.h"

#include <arpa/inet.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

namespace edge {
namespace {

absl::Status FromGrpc(const grpc::Status& status, absl::string_view endpoint) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
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
  if (!host.empty() && host.front() == '[')
    return absl::StrCat("ipv6:", address);
  in_addr ipv4;
  if (inet_pton(AF_INET, host.c_str(), &ipv4) == 1) {
    return absl::StrCat("ipv4:", address);
  }
  return address;
}

void SetDeadline(grpc::ClientContext& context, absl::Time deadline) {
  context.set_deadline(absl::ToChronoTime(deadline));
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
};

absl::StatusOr<std::shared_ptr<EtcdClient::Connection>>
EtcdClient::NewConnection(const std::string& address) {
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
  connection->channel = grpc::CreateCustomChannel(
      ChannelTarget(address), grpc::InsecureChannelCredentials(), args);
  if (connection->channel == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd: cannot create a channel to ", address));
  }
  connection->kv = etcdserverpb::KV::NewStub(connection->channel);
  connection->lease = etcdserverpb::Lease::NewStub(connection->channel);
  connection->created = absl::Now();
  return connection;
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const std::vector<std::string>& addresses, Logger* logger) {
  if (addresses.empty()) {
    return absl::InvalidArgumentError("etcd: no endpoints given");
  }
  std::vector<EndpointState> endpoints;
  for (const std::string& address : addresses) {
    if (address.empty()) {
      return absl::InvalidArgumentError("etcd: empty endpoint");
    }
    absl::StatusOr<std::shared_ptr<Connection>> connection =
        NewConnection(address);
    if (!connection.ok()) return connection.status();
    endpoints.push_back(EndpointState{*std::move(connection), 0});
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(addresses, std::move(endpoints), logger));
}

EtcdClient::EtcdClient(std::vector<std::string> addresses,
                       std::vector<EndpointState> endpoints, Logger* logger)
    : addresses_(std::move(addresses)),
      log_(logger),
      endpoints_(std::move(endpoints)) {}

EtcdClient::~EtcdClient() { Shutdown(); }

const std::string& EtcdClient::current_endpoint() const {
  return addresses_[current_.load() % addresses_.size()];
}

std::shared_ptr<EtcdClient::Connection> EtcdClient::ConnectionTo(
    size_t endpoint) {
  absl::MutexLock lock(&mu_);
  return endpoints_[endpoint].connection;
}

void EtcdClient::Report(size_t endpoint, const Connection* used,
                        const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    EndpointState& state = endpoints_[endpoint];
    if (state.connection.get() != used) return;  // already renewed
    if (!ShouldFailOver(status)) {
      state.failures = 0;
      return;
    }
    if (++state.failures < kRenewAfterFailures ||
        absl::Now() - used->created < kChannelMinAge) {
      return;
    }
  }
  // Built outside the lock; a concurrent renewal of the same endpoint wins
  // and this one is dropped.
  absl::StatusOr<std::shared_ptr<Connection>> fresh =
      NewConnection(addresses_[endpoint]);
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
  for (size_t attempt = 0; attempt < addresses_.size(); ++attempt) {
    size_t index = current_.load() % addresses_.size();
    std::shared_ptr<Connection> connection = ConnectionTo(index);
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    grpc::Status status = call(*connection, context);
    Report(index, connection.get(), status);
    if (status.ok()) return absl::OkStatus();
    last = FromGrpc(status, addresses_[index]);
    if (!ShouldFailOver(status) || absl::Now() >= deadline) break;
    MoveOff(index);
  }
  return last;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::TxnSync(
    const etcdserverpb::TxnRequest& request, absl::Time deadline) {
  etcdserverpb::TxnResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context) {
        response.Clear();
        return endpoint.kv->Txn(&context, request, &response);
      });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<etcdserverpb::LeaseGrantResponse> EtcdClient::LeaseGrantSync(
    int64_t ttl_seconds, absl::Time deadline) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_seconds);
  etcdserverpb::LeaseGrantResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context) {
        response.Clear();
        return endpoint.lease->LeaseGrant(&context, request, &response);
      });
  if (!status.ok()) return status;
  if (!response.error().empty()) {
    return absl::UnavailableError(
        absl::StrCat("etcd refused a lease: ", response.error()));
  }
  return response;
}

absl::Status EtcdClient::LeaseRevokeSync(int64_t lease_id,
                                         absl::Time deadline) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseRevokeResponse response;
  return WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context) {
        return endpoint.lease->LeaseRevoke(&context, request, &response);
      });
}

absl::StatusOr<int64_t> EtcdClient::LeaseKeepAliveSync(int64_t lease_id,
                                                       absl::Time deadline) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseKeepAliveResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Connection& endpoint, grpc::ClientContext& context) {
        auto stream = endpoint.lease->LeaseKeepAlive(&context);
        bool answered = stream->Write(request) && stream->Read(&response);
        stream->WritesDone();
        grpc::Status finished = stream->Finish();
        if (answered) return grpc::Status::OK;
        if (!finished.ok()) return finished;
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "keepalive stream closed without an answer");
      });
  if (!status.ok()) return status;
  return response.ttl();
}

void EtcdClient::Txn(etcdserverpb::TxnRequest request, absl::Time deadline,
                     TxnDone done) {
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
    StartTxn(op);
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
  op->connection->kv->async()->Txn(
      op->context.get(), &op->request, &op->response,
      [this, op](grpc::Status status) { OnTxnDone(op, status); });
}

void EtcdClient::OnTxnDone(AsyncTxn* op, const grpc::Status& status) {
  Report(op->endpoint, op->connection.get(), status);
  if (ShouldFailOver(status) && op->attempts < addresses_.size() &&
      absl::Now() < op->deadline) {
    MoveOff(op->endpoint);
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
    if (retry) {
      StartTxn(op);
      return;
    }
  }
  absl::StatusOr<etcdserverpb::TxnResponse> result =
      status.ok()
          ? absl::StatusOr<etcdserverpb::TxnResponse>(std::move(op->response))
          : FromGrpc(status, addresses_[op->endpoint]);
  TxnDone done = std::move(op->done);
  done(std::move(result));
  absl::MutexLock lock(&mu_);
  in_flight_.erase(op);
  delete op;
}

void EtcdClient::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  for (AsyncTxn* op : in_flight_) op->context->TryCancel();
  mu_.Await(absl::Condition(
      +[](absl::flat_hash_set<AsyncTxn*>* ops) { return ops->empty(); },
      &in_flight_));
}

}  // namespace edge
