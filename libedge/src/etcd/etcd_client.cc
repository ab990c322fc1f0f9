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

}  // namespace

struct EtcdClient::AsyncTxn {
  etcdserverpb::TxnRequest request;
  etcdserverpb::TxnResponse response;
  std::unique_ptr<grpc::ClientContext> context;
  absl::Time deadline;
  TxnDone done;
  size_t endpoint = 0;
  size_t attempts = 0;
};

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdClient::Create(
    const std::vector<std::string>& addresses, Logger* logger) {
  if (addresses.empty()) {
    return absl::InvalidArgumentError("etcd: no endpoints given");
  }
  std::vector<Endpoint> endpoints;
  for (const std::string& address : addresses) {
    if (address.empty()) {
      return absl::InvalidArgumentError("etcd: empty endpoint");
    }
    grpc::ChannelArguments args;
    // Come back quickly after an etcd restart instead of gRPC's default
    // backoff of up to two minutes. (The minimum backoff is left alone: it
    // is also the connection attempt's timeout.)
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    Endpoint endpoint;
    endpoint.address = address;
    endpoint.channel = grpc::CreateCustomChannel(
        ChannelTarget(address), grpc::InsecureChannelCredentials(), args);
    if (endpoint.channel == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd: cannot create a channel to ", address));
    }
    endpoint.kv = etcdserverpb::KV::NewStub(endpoint.channel);
    endpoint.lease = etcdserverpb::Lease::NewStub(endpoint.channel);
    endpoints.push_back(std::move(endpoint));
  }
  return std::unique_ptr<EtcdClient>(
      new EtcdClient(std::move(endpoints), logger));
}

EtcdClient::EtcdClient(std::vector<Endpoint> endpoints, Logger* logger)
    : endpoints_(std::move(endpoints)), log_(logger) {}

EtcdClient::~EtcdClient() { Shutdown(); }

const std::string& EtcdClient::current_endpoint() const {
  return endpoints_[current_.load() % endpoints_.size()].address;
}

void EtcdClient::MoveOff(size_t failed) {
  if (endpoints_.size() < 2) return;
  size_t next = (failed + 1) % endpoints_.size();
  size_t expected = failed;
  // Only the first caller to see `failed` fail moves on, so concurrent
  // failures do not skip a healthy endpoint.
  if (current_.compare_exchange_strong(expected, next)) {
    log_->Warn("etcd endpoint unreachable, failing over",
               {{"failed", endpoints_[failed].address},
                {"next", endpoints_[next].address}});
  }
}

template <typename Call>
absl::Status EtcdClient::WithFailover(absl::Time deadline, Call call) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return absl::UnavailableError("etcd client is shut down");
  }
  absl::Status last;
  for (size_t attempt = 0; attempt < endpoints_.size(); ++attempt) {
    size_t index = current_.load() % endpoints_.size();
    Endpoint& endpoint = endpoints_[index];
    grpc::ClientContext context;
    SetDeadline(context, deadline);
    grpc::Status status = call(endpoint, context);
    if (status.ok()) return absl::OkStatus();
    last = FromGrpc(status, endpoint.address);
    if (!ShouldFailOver(status) || absl::Now() >= deadline) break;
    MoveOff(index);
  }
  return last;
}

absl::StatusOr<etcdserverpb::TxnResponse> EtcdClient::TxnSync(
    const etcdserverpb::TxnRequest& request, absl::Time deadline) {
  etcdserverpb::TxnResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Endpoint& endpoint, grpc::ClientContext& context) {
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
      deadline, [&](Endpoint& endpoint, grpc::ClientContext& context) {
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
      deadline, [&](Endpoint& endpoint, grpc::ClientContext& context) {
        return endpoint.lease->LeaseRevoke(&context, request, &response);
      });
}

absl::StatusOr<int64_t> EtcdClient::LeaseKeepAliveSync(int64_t lease_id,
                                                       absl::Time deadline) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease_id);
  etcdserverpb::LeaseKeepAliveResponse response;
  absl::Status status = WithFailover(
      deadline, [&](Endpoint& endpoint, grpc::ClientContext& context) {
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
      op->endpoint = current_.load() % endpoints_.size();
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
  endpoints_[op->endpoint].kv->async()->Txn(
      op->context.get(), &op->request, &op->response,
      [this, op](grpc::Status status) { OnTxnDone(op, status); });
}

void EtcdClient::OnTxnDone(AsyncTxn* op, const grpc::Status& status) {
  if (ShouldFailOver(status) && op->attempts < endpoints_.size() &&
      absl::Now() < op->deadline) {
    MoveOff(op->endpoint);
    bool retry = false;
    {
      absl::MutexLock lock(&mu_);
      if (!shut_down_) {
        op->endpoint = current_.load() % endpoints_.size();
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
          : FromGrpc(status, endpoints_[op->endpoint].address);
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
