// EtcdGatewayKeepalive: a lease keepalive through etcd's HTTP gateway
// (`POST /v3/lease/keepalive`, JSON), on plain sockets with libcurl rather
// than gRPC.
//
// Why not gRPC: in gRPC 1.51 a request from a process whose gRPC threads are
// all busy (thousands of peer streams ending at once) can sit inside gRPC for
// seconds before it is written, whichever thread starts it and on whichever
// channel; the edge's lease then expired at etcd although its lease thread
// sent every keepalive on time (docs/performance.md, "Left to do"). A plain
// socket written by the lease thread itself reaches etcd at once.
//
// One per endpoint connection. The same TLS settings as the gRPC channel
// (server verification against the CA file or the system's roots, optional
// client certificate); an auth token goes as `Grpc-Metadata-Token`, which the
// gateway hands to etcd as the `token` metadata the gRPC client sends.
//
// Outcomes as gRPC statuses, so the client's failover treats both paths
// alike: UNAVAILABLE when etcd cannot be reached, DEADLINE_EXCEEDED at the
// deadline, etcd's own code for an error it answers (UNAUTHENTICATED for a
// stale token), and UNIMPLEMENTED when the endpoint has no gateway (etcd
// started with --enable-grpc-gateway=false): the caller then keeps alive
// over gRPC. Such an endpoint is not asked again for a minute (nor one the
// caller `Pause`s, e.g. because gRPC got through where HTTP did not).
//
// Thread-safe; calls are serialized (one connection, kept open between
// keepalives).
#ifndef EDGE_SRC_ETCD_ETCD_GATEWAY_H_
#define EDGE_SRC_ETCD_ETCD_GATEWAY_H_

#include <cstdint>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"

namespace edge::etcd::internal {

struct EtcdGatewayTls {
  bool enabled = false;
  std::string ca_file;  // empty: the system's roots
  std::string cert_file;
  std::string key_file;
};

class EtcdGatewayKeepalive {
 public:
  // `address` is the endpoint's `host:port` (as in ETCD_ENDPOINTS, without
  // the scheme).
  EtcdGatewayKeepalive(const std::string& address, EtcdGatewayTls tls);
  ~EtcdGatewayKeepalive();
  EtcdGatewayKeepalive(const EtcdGatewayKeepalive&) = delete;
  EtcdGatewayKeepalive& operator=(const EtcdGatewayKeepalive&) = delete;

  // Renews `lease_id` once; on OK `*ttl` is the TTL etcd reports (0: the
  // lease no longer exists). `token` empty: no authentication.
  grpc::Status KeepAlive(int64_t lease_id, const std::string& token, absl::Time deadline,
                         int64_t* ttl);

  // `http(s)://host:port/v3/lease/keepalive`.
  const std::string& url() const { return url_; }

  // UNIMPLEMENTED without a request for `how_long`. True the first time.
  bool Pause(absl::Duration how_long);

  // The outcome of one gateway answer (HTTP status and body), for tests.
  static grpc::Status ParseAnswer(long http_status, const std::string& body, int64_t* ttl);

 private:
  const std::string url_;
  const EtcdGatewayTls tls_;
  absl::Mutex mu_;
  void* curl_ ABSL_GUARDED_BY(mu_) = nullptr;  // a CURL easy handle, reused
  absl::Time paused_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool paused_before_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace edge::etcd::internal

#endif  // EDGE_SRC_ETCD_ETCD_GATEWAY_H_
