// EtcdClient: the few etcd v3 calls EtcdTracker needs, over one gRPC channel
// per endpoint, with failover.
//
// Calls go to the current endpoint; when it answers UNAVAILABLE the client
// moves to the next endpoint and retries there while the deadline allows,
// at most once per endpoint. Channels per endpoint (rather than one channel
// over a static `ipv4:a,b` target) keep host names usable in ETCD_ENDPOINTS
// and let the client, not a load balancer, decide which member it talks to.
//
// An endpoint that keeps answering UNAVAILABLE gets a fresh channel (at most
// once a second): gRPC 1.51 leaves a channel that has never
// connected in reconnect backoff for ~10 s after the server comes up, which
// delayed an edge started before etcd by as long. Each channel has its own
// subchannel pool, so the fresh one does not inherit the old one's backoff.
//
// gRPC statuses are converted to absl::Status here and nowhere else; codes
// map one-to-one, so etcd's "requested lease not found" arrives as NOT_FOUND.
//
// Security (contract §10): TLS with server verification and an optional
// client certificate, and etcd's own authentication. With a username, the
// client logs in (Authenticate) before its first call and sends the token
// etcd hands out as `token` metadata on every call. etcd tokens expire
// (--auth-token-ttl) and die with a restart: a call refused for its token
// logs in again, once for all calls waiting, and is retried once.
//
// Lease keepalives go through etcd's HTTP gateway (etcd_gateway.h), which a
// process whose gRPC threads are swamped cannot hold up, and over gRPC where
// the gateway is off or cannot serve.
//
// Threads: Txn/Range are asynchronous (callback API) and call `done` on a
// gRPC thread, never inline except after Shutdown. The *Sync calls block and
// are for the tracker's own thread. All deadlines are real time.
#ifndef EDGE_SRC_ETCD_ETCD_CLIENT_H_
#define EDGE_SRC_ETCD_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/logger.h"
#include "etcd_gateway.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "grpcpp/security/credentials.h"

namespace edge::etcd::internal {

// How to reach etcd securely; files are PEM, read once by Create.
struct EtcdClientSecurity {
  bool tls = false;
  std::string ca_file;    // empty: the system's roots
  std::string cert_file;  // with key_file: a client certificate
  std::string key_file;
  std::string username;  // empty: no authentication
  std::string password;
};

class EtcdClient {
 public:
  using TxnDone = absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::TxnResponse>)>;

  // `endpoints` are `host:port`, at least one. INVALID_ARGUMENT when a
  // file of `security` cannot be read.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const std::vector<std::string>& endpoints, EtcdClientSecurity security, Logger* logger);
  // Plaintext, without authentication.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const std::vector<std::string>& endpoints, Logger* logger) {
    return Create(endpoints, EtcdClientSecurity{}, logger);
  }
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;
  ~EtcdClient();

  void Txn(etcdserverpb::TxnRequest request, absl::Time deadline, TxnDone done);

  absl::StatusOr<etcdserverpb::TxnResponse> TxnSync(const etcdserverpb::TxnRequest& request,
                                                    absl::Time deadline);
  // Sends `requests` together and waits for every answer (in their order);
  // the first error when any failed.
  absl::StatusOr<std::vector<etcdserverpb::TxnResponse>> TxnAllSync(
      std::vector<etcdserverpb::TxnRequest> requests, absl::Time deadline);
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrantSync(int64_t ttl_seconds,
                                                                  absl::Time deadline);
  absl::Status LeaseRevokeSync(int64_t lease_id, absl::Time deadline);
  // One round on a LeaseKeepAlive stream; returns the TTL etcd reports
  // (<= 0: the lease no longer exists).
  absl::StatusOr<int64_t> LeaseKeepAliveSync(int64_t lease_id, absl::Time deadline);
  // Reads etcd's history as `create` asks (a watch from its start
  // revision): hands each batch of events to `take`, in revision order and
  // each revision whole in one batch, until `take` returns true. After a
  // failover the history is handed again from the start. OUT_OF_RANGE when
  // etcd has compacted it away; DEADLINE_EXCEEDED when `take` is still
  // waiting at the deadline.
  absl::Status WatchSync(const etcdserverpb::WatchCreateRequest& create, absl::Time deadline,
                         absl::FunctionRef<bool(const etcdserverpb::WatchResponse&)> take);

  // Cancels calls in flight and waits until their callbacks have returned;
  // later calls fail with UNAVAILABLE. Not from inside a `done` callback.
  void Shutdown();

  const std::string& current_endpoint() const;

 private:
  // One channel to one endpoint, and its stubs. Calls hold a reference, so
  // a replaced connection lives until its last call has finished.
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<etcdserverpb::Auth::Stub> auth;
    // Lease keepalives without gRPC (etcd_gateway.h).
    std::unique_ptr<EtcdGatewayKeepalive> gateway;
    absl::Time created;
  };
  struct EndpointState {
    std::shared_ptr<Connection> connection;
    int failures = 0;  // consecutive UNAVAILABLE answers on `connection`
  };
  struct AsyncTxn;
  struct AuthCall;
  // The token to call with ("" without authentication), or why none.
  using TokenDone = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;

  EtcdClient(std::vector<std::string> addresses, std::vector<EndpointState> endpoints,
             std::shared_ptr<grpc::ChannelCredentials> credentials, EtcdGatewayTls gateway_tls,
             std::string username, std::string password, Logger* logger);

  static absl::StatusOr<std::shared_ptr<Connection>> NewConnection(
      const std::string& address, const std::shared_ptr<grpc::ChannelCredentials>& credentials,
      const EtcdGatewayTls& gateway_tls);
  std::shared_ptr<Connection> ConnectionTo(size_t endpoint);
  // Counts the outcome of a call made on `used`; replaces the endpoint's
  // connection when it keeps failing.
  void Report(size_t endpoint, const Connection* used, const grpc::Status& status);

  // Runs `call(connection, context, token)` on the current endpoint,
  // failing over on UNAVAILABLE. The context carries the token already.
  template <typename Call>
  absl::Status WithFailover(absl::Time deadline, Call call);
  void MoveOff(size_t failed);
  // One round on a LeaseKeepAlive stream of `endpoint`.
  static grpc::Status KeepAliveOverGrpc(Connection& endpoint, grpc::ClientContext& context,
                                        const etcdserverpb::LeaseKeepAliveRequest& request,
                                        int64_t* ttl);
  void StartTxn(AsyncTxn* op) ABSL_LOCKS_EXCLUDED(mu_);
  void OnTxnDone(AsyncTxn* op, const grpc::Status& status);
  void FinishTxn(AsyncTxn* op, absl::StatusOr<etcdserverpb::TxnResponse> result);
  // Runs `done` with a token, logging in first when there is none or the
  // current one is `stale` (refused by etcd). Inline when one is at hand.
  void GetToken(const std::string& stale, TokenDone done);
  absl::StatusOr<std::string> GetTokenSync(const std::string& stale, absl::Time deadline);
  void StartAuthenticate(AuthCall* call) ABSL_LOCKS_EXCLUDED(mu_);
  void OnAuthenticated(AuthCall* call, const grpc::Status& status);

  const std::vector<std::string> addresses_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  const EtcdGatewayTls gateway_tls_;
  const std::string username_;
  const std::string password_;
  Logger* const log_;
  std::atomic<size_t> current_{0};

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<EndpointState> endpoints_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<AsyncTxn*> in_flight_ ABSL_GUARDED_BY(mu_);
  // etcd authentication: the token in use, and the login under way with
  // the calls waiting for it.
  std::string token_ ABSL_GUARDED_BY(mu_);
  AuthCall* auth_call_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<TokenDone> token_waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::etcd::internal

#endif  // EDGE_SRC_ETCD_ETCD_CLIENT_H_
