// LatencyHistogram: a lock-free log-linear histogram of durations.
//
// 64 sub-buckets per power of two (under 1.6 % relative error), recorded
// with relaxed atomic increments from any thread; percentiles are read
// while recording goes on (a consistent-enough snapshot).
//
//   edge::loadgen::LatencyHistogram h;
//   h.Record(absl::Microseconds(350));
//   absl::Duration p99 = h.Percentile(99);
#ifndef EDGE_BENCH_LOADGEN_LATENCY_HISTOGRAM_H_
#define EDGE_BENCH_LOADGEN_LATENCY_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace edge::loadgen {

class LatencyHistogram {
 public:
  LatencyHistogram() = default;
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  // Negative durations (clock skew between processes) count as zero.
  void Record(absl::Duration d) { RecordNanos(absl::ToInt64Nanoseconds(d)); }
  void RecordNanos(int64_t nanos);

  int64_t count() const;
  // The smallest recorded bucket bound below which `percent` % of the
  // samples fall; zero when empty.
  absl::Duration Percentile(double percent) const;
  absl::Duration Max() const;

  // "p50=0.21ms p90=0.35ms p99=1.10ms p99.9=2.00ms max=3.1ms n=1234"
  std::string Summary() const;

 private:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = kSub * 58;

  static int Index(int64_t nanos);
  static int64_t UpperBound(int index);

  std::array<std::atomic<int64_t>, kBuckets> counts_{};
  std::atomic<int64_t> max_{0};
};

// Milliseconds with two decimals, for reports.
std::string FormatMillis(absl::Duration d);

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_LATENCY_HISTOGRAM_H_
