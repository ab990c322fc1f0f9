// DescriptorBudget: refuse peers before the process runs out of file
// descriptors (contract §2 row 5).
//
// A gRPC server that runs out fails accept() and its clients hang; the edge
// instead refuses new peers with RESOURCE_EXHAUSTED while fewer than
// `headroom` descriptors are left. RaiseLimit() lifts the soft limit to the
// hard one at start: the one place RLIMIT_NOFILE is raised (edged, the
// benchmarks and the load generator all call it).
//
// Thread-safety: HasHeadroom may be called from any thread.
//
//   absl::StatusOr<int64_t> limit = edge::DescriptorBudget::RaiseLimit();
//   edge::DescriptorBudget budget(*limit, edge::DescriptorBudget::kDefaultHeadroom);
//   if (!budget.HasHeadroom()) { /* refuse the peer */ }
#ifndef EDGE_DESCRIPTORS_H_
#define EDGE_DESCRIPTORS_H_

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace edge {

class DescriptorBudget {
 public:
  // What edged keeps free for Kafka, etcd, logs and refused connections.
  static constexpr int64_t kDefaultHeadroom = 256;

  // Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the limit.
  static absl::StatusOr<int64_t> RaiseLimit();

  DescriptorBudget(int64_t limit, int64_t headroom) : limit_(limit), headroom_(headroom) {}

  // True while at least `headroom` descriptors are free. Cheap: counts the
  // open descriptors again every second, and every 10 ms at most when close
  // to the limit (within twice the headroom); in between, assumes each call
  // added one.
  bool HasHeadroom();

  // Open descriptors of this process (one poll() over the descriptor
  // numbers below RLIMIT_NOFILE; /proc/self/fd when that limit is huge).
  static int64_t CountOpen();

 private:
  const int64_t limit_;
  const int64_t headroom_;
  absl::Mutex mu_;
  int64_t open_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time counted_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t since_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edge

#endif  // EDGE_DESCRIPTORS_H_
