// DescriptorReserve: keeps the last `reserve` file descriptors out of reach
// of incoming gRPC connections.
//
// Once `accept4` fails with EMFILE, gRPC 1.51 never accepts again
// (CVE-2023-4785), and a process out of descriptors cannot reach Kafka or
// etcd, serve /metrics or reopen its log either. So a connection is closed
// as soon as gRPC accepted it when it landed in the last `reserve`
// descriptors under the limit: gRPC's accept loop never reaches the limit,
// and the top of the table stays free for everything else.
//
// Counting costs nothing: Linux hands out the lowest free descriptor, so a
// connection accepted as descriptor `fd` proves that 0..fd-1 are all open.
// The connection is refused when fd >= limit - reserve. Connections that
// gRPC keeps thus only ever hold numbers below limit - reserve.
//
// How it hooks into gRPC 1.51, which has no call before accept4: its socket
// mutator (GRPC_ARG_SOCKET_MUTATOR) sees each listening socket before it is
// bound and each accepted socket before gRPC uses it. A mutator that
// returns false for an accepted socket does NOT make gRPC close it: gRPC
// 1.51 then leaves its accept loop without re-arming it (the listener never
// accepts again) and leaks the socket. So the mutator always returns true;
// a refused socket is shut down (SO_LINGER 0: the close resets) and gRPC,
// reading EOF at once, closes it without any TLS or HTTP/2 exchange. And
// because gRPC accepts everything in the listener's backlog before it gets
// to close anything, the connections still waiting in the backlog are
// accepted and reset right here (each holds a descriptor only for the
// accept4-close pair): a flood costs one descriptor per round of gRPC's
// accept loop, not one per connection.
//
// Thread-safe; gRPC calls it on its poller threads, so nothing here blocks:
// a few system calls per refusal, none per admitted connection. The warning
// is logged at most once per `log_every`, with the count since the last one.
#ifndef EDGE_SRC_GRPC_DESCRIPTOR_RESERVE_H_
#define EDGE_SRC_GRPC_DESCRIPTOR_RESERVE_H_

#include <grpcpp/server_builder.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/clock.h"
#include "edge/logger.h"

namespace edge::grpc_transport::internal {

struct DescriptorReserveOptions {
  // A connection accepted as descriptor fd >= limit - reserve is refused.
  int64_t limit = 0;  // RLIMIT_NOFILE (soft) of the process
  int64_t reserve = 0;
  Clock* clock = nullptr;    // required
  Logger* logger = nullptr;  // optional
  // Called with the number of connections refused at once (1 and those
  // drained from the backlog). On a gRPC poller thread: must not block.
  std::function<void(int64_t)> on_refused;
  absl::Duration log_every = absl::Seconds(10);
};

class DescriptorReserve {
 public:
  explicit DescriptorReserve(DescriptorReserveOptions options);
  DescriptorReserve(const DescriptorReserve&) = delete;
  DescriptorReserve& operator=(const DescriptorReserve&) = delete;

  // The soft RLIMIT_NOFILE of this process.
  static absl::StatusOr<int64_t> CurrentLimit();

  // A listening socket gRPC made (not bound yet): remembered, to drain its
  // backlog when refusing.
  void OnListenerSocket(int fd);
  // A socket gRPC accepted. Refuses it (and drains the backlog of the
  // listener it came from) when fd >= limit - reserve; else leaves it be.
  // Returns whether it was refused.
  bool OnAcceptedSocket(int fd);

  // Connections refused so far.
  int64_t refused() const { return refused_.load(std::memory_order_relaxed); }

 private:
  // Accepts and resets what waits on the listener `accepted` came from;
  // returns how many.
  int64_t DrainBacklogOf(int accepted);

  const DescriptorReserveOptions options_;
  Logger* const logger_;
  std::atomic<int64_t> refused_{0};
  absl::Mutex mu_;
  std::vector<int> listeners_ ABSL_GUARDED_BY(mu_);
  absl::Time last_log_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t unlogged_ ABSL_GUARDED_BY(mu_) = 0;
};

// A ServerBuilder option that makes `reserve` the socket mutator of the
// server being built (the server keeps it alive as long as it needs it).
std::unique_ptr<grpc::ServerBuilderOption> DescriptorReserveOption(
    std::shared_ptr<DescriptorReserve> reserve);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_DESCRIPTOR_RESERVE_H_
