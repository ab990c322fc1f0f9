// ProcessSample: what /proc says about another process (the server under
// load): resident memory, CPU time consumed and open descriptors.
#ifndef EDGE_BENCH_LOADGEN_PROC_STATS_H_
#define EDGE_BENCH_LOADGEN_PROC_STATS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge::loadgen {

struct ProcessSample {
  int64_t rss_kib = 0;      // VmRSS of /proc/<pid>/status
  absl::Duration cpu;       // utime + stime of /proc/<pid>/stat
  int64_t descriptors = 0;  // entries of /proc/<pid>/fd
  int threads = 0;          // Threads of /proc/<pid>/status
};

// NOT_FOUND when the process is gone.
absl::StatusOr<ProcessSample> SampleProcess(pid_t pid);

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_PROC_STATS_H_
