// EtcdClient: the few etcd v3 calls EtcdTracker needs, over one gRPC channel
// per endpoint, with failover.
//
// Calls go to the current endpoint; when it answers UNAVAILABLE the client
// moves to the next endpoint and retries there while the deadline allows,
// at most once per endpoint. Channels per endpoint (rather than one channel
// over a static `ipv4:a,b` target) keep host names usable in ETCD_ENDPOINTS
// and let the client, not a load balancer, decide which member it talks to.
//
// gRPC statuses are converted to absl::Status here and nowhere else; codes
// map one-to-one, so etcd's "requested lease not found" arrives as NOT_FOUND.
//
// Threads: Txn/Range are asynchronous (callback API) and call `done` on a
// gRPC thread, never inline except after Shutdown. The *Sync calls block and
// are for the tracker's own thread. All deadlines are real time.
#ifndef EDGE_ETCD_ETCD_CLIENT_H_
#define EDGE_ETCD_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/logger.h"
#include "etcdserverpb/rpc.grpc.pb.h"

namespace edge {

class EtcdClient {
 public:
  using TxnDone =
      absl::AnyInvocable<void(absl::StatusOr<etcdserverpb::TxnResponse>)>;

  // `endpoints` are `host:port`, at least one.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const std::vector<std::string>& endpoints, Logger* logger);
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;
  ~EtcdClient();

  void Txn(etcdserverpb::TxnRequest request, absl::Time deadline, TxnDone done);

  absl::StatusOr<etcdserverpb::TxnResponse> TxnSync(
      const etcdserverpb::TxnRequest& request, absl::Time deadline);
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> LeaseGrantSync(
      int64_t ttl_seconds, absl::Time deadline);
  absl::Status LeaseRevokeSync(int64_t lease_id, absl::Time deadline);
  // One round on a LeaseKeepAlive stream; returns the TTL etcd reports
  // (<= 0: the lease no longer exists).
  absl::StatusOr<int64_t> LeaseKeepAliveSync(int64_t lease_id,
                                             absl::Time deadline);

  // Cancels calls in flight and waits until their callbacks have returned;
  // later calls fail with UNAVAILABLE. Not from inside a `done` callback.
  void Shutdown();

  const std::string& current_endpoint() const;

 private:
  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  };
  struct AsyncTxn;

  EtcdClient(std::vector<Endpoint> endpoints, Logger* logger);

  // Runs `call` on the current endpoint, failing over on UNAVAILABLE.
  template <typename Call>
  absl::Status WithFailover(absl::Time deadline, Call call);
  void MoveOff(size_t failed);
  void StartTxn(AsyncTxn* op);
  void OnTxnDone(AsyncTxn* op, const grpc::Status& status);

  std::vector<Endpoint> endpoints_;
  Logger* const log_;
  std::atomic<size_t> current_{0};

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<AsyncTxn*> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge

#endif  // EDGE_ETCD_ETCD_CLIENT_H_
