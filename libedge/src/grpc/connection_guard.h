// ConnectionGuard: per-connection bounds that gRPC 1.51 does not enforce.
//
// A hostile client can multiplex any number of calls over one TCP
// connection: take every MAX_PEERS slot with one descriptor, or open and
// reset streams as fast as it can send frames (HTTP/2 "rapid reset",
// CVE-2023-44487; the fix is in later gRPC releases only). The guard counts,
// per connection (gRPC's peer string, "ipv4:10.0.0.7:51234", names exactly
// one TCP connection), the AsyncOperations streams open at once and the
// calls started per second (token bucket). A call past either bound is
// refused with RESOURCE_EXHAUSTED before it reaches the edge, so it costs no
// admission work and publishes nothing; a connection past the start rate is
// also closed (see CloseTcpConnection).
//
// Memory: one small entry per connection that has a call open or started
// one within the bucket's refill time; idle entries are pruned at most once
// a second. Thread-safe.
#ifndef EDGE_SRC_GRPC_CONNECTION_GUARD_H_
#define EDGE_SRC_GRPC_CONNECTION_GUARD_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/clock.h"

namespace edge::grpc_transport::internal {

struct ConnectionLimits {
  // AsyncOperations streams open at once on one connection; 0: no limit.
  int max_streams = 0;
  // Calls (streams and unary calls) one connection may start per second,
  // with a burst of `call_start_burst`; 0: no limit.
  double call_starts_per_sec = 0;
  double call_start_burst = 0;
};

class ConnectionGuard {
 public:
  ConnectionGuard(ConnectionLimits limits, Clock* clock) : limits_(limits), clock_(clock) {}
  ConnectionGuard(const ConnectionGuard&) = delete;
  ConnectionGuard& operator=(const ConnectionGuard&) = delete;

  struct Verdict {
    absl::Status status;            // OK: the call counts until Release(call_id)
    bool close_connection = false;  // true once per connection: it abused the start rate
    bool first_refusal = false;     // the connection's first refused call (log it once)
  };
  // Counts call `call_id` of connection `peer`; `stream` for AsyncOperations.
  Verdict Admit(uint64_t call_id, absl::string_view peer, bool stream);
  // The call ended (no-op for a call that was refused).
  void Release(uint64_t call_id);

  // Connections currently tracked (for tests of the memory bound).
  size_t connections() const;

 private:
  struct Connection {
    int streams = 0;
    int calls = 0;
    double tokens = 0;
    absl::Time refilled;
    bool refused = false;
    bool closing = false;
  };
  using ConnectionEntry = std::pair<const std::string, Connection>;
  struct Call {
    // The connection's entry: a node map's entries stay where they are, and
    // an entry is dropped only once no call refers to it.
    ConnectionEntry* connection;
    bool stream;
  };
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ConnectionLimits limits_;
  Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::node_hash_map<std::string, Connection> connections_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Call> calls_ ABSL_GUARDED_BY(mu_);
  absl::Time last_prune_ ABSL_GUARDED_BY(mu_);
};

// Closes the TCP connection whose remote end is `peer` (gRPC's peer string)
// and whose local port is `local_port`, by shutdown(2) on its socket: gRPC
// then sees the connection fail, cancels its calls and closes the descriptor
// itself. gRPC 1.51 offers no API to close one connection, so the socket is
// found among this process' descriptors (/proc/self/fd): O(descriptors),
// done only for an abusive connection. NOT_FOUND when no socket matches
// (already closed).
absl::Status CloseTcpConnection(int local_port, absl::string_view peer);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_CONNECTION_GUARD_H_
