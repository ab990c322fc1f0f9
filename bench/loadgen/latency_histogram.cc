#include "latency_histogram.h"

#include "absl/numeric/bits.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace edge::loadgen {

int LatencyHistogram::Index(int64_t nanos) {
  if (nanos < kSub) return static_cast<int>(nanos < 0 ? 0 : nanos);
  const int exponent = 63 - absl::countl_zero(static_cast<uint64_t>(nanos));
  const int shift = exponent - kSubBits;
  const int sub = static_cast<int>((nanos >> shift) & (kSub - 1));
  const int index = (shift + 1) * kSub + sub;
  return index < kBuckets ? index : kBuckets - 1;
}

int64_t LatencyHistogram::UpperBound(int index) {
  if (index < kSub) return index;
  const int shift = index / kSub - 1;
  const int64_t sub = index % kSub;
  return ((kSub + sub + 1) << shift) - 1;
}

void LatencyHistogram::RecordNanos(int64_t nanos) {
  if (nanos < 0) nanos = 0;
  counts_[Index(nanos)].fetch_add(1, std::memory_order_relaxed);
  int64_t seen = max_.load(std::memory_order_relaxed);
  while (nanos > seen && !max_.compare_exchange_weak(seen, nanos, std::memory_order_relaxed)) {
  }
}

int64_t LatencyHistogram::count() const {
  int64_t total = 0;
  for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
  return total;
}

absl::Duration LatencyHistogram::Percentile(double percent) const {
  const int64_t total = count();
  if (total == 0) return absl::ZeroDuration();
  // The rank of the sample at `percent`, 1-based.
  int64_t rank = static_cast<int64_t>(percent / 100.0 * static_cast<double>(total) + 0.999999);
  if (rank < 1) rank = 1;
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) {
      int64_t bound = UpperBound(i);
      const int64_t max = max_.load(std::memory_order_relaxed);
      return absl::Nanoseconds(bound < max ? bound : max);
    }
  }
  return Max();
}

absl::Duration LatencyHistogram::Max() const {
  return absl::Nanoseconds(max_.load(std::memory_order_relaxed));
}

std::string LatencyHistogram::Summary() const {
  return absl::StrCat("p50=", FormatMillis(Percentile(50)), "ms p90=", FormatMillis(Percentile(90)),
                      "ms p99=", FormatMillis(Percentile(99)),
                      "ms p99.9=", FormatMillis(Percentile(99.9)), "ms max=", FormatMillis(Max()),
                      "ms n=", count());
}

std::string FormatMillis(absl::Duration d) {
  return absl::StrFormat("%.2f", absl::ToDoubleMilliseconds(d));
}

}  // namespace edge::loadgen
