// LogLimiter: one log line per key and period, so that a flood of the same
// event (a dead letter per command for an absent peer, say) costs a line per
// period instead of a line per event. The line that is written says how many
// were left out before it. Thread-safe.
//
//   if (auto left_out = limiter.Admit("peer_not_connected", clock.Now())) {
//     log.Warn("command dead-lettered", {{"suppressed", absl::StrCat(*left_out)}});
//   }
#ifndef EDGE_SRC_CORE_LOG_LIMITER_H_
#define EDGE_SRC_CORE_LOG_LIMITER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace edge {

class LogLimiter {
 public:
  explicit LogLimiter(absl::Duration period) : period_(period) {}

  // Whether to write the line for `key` now: the number of lines left out
  // since the last one written for it, or nullopt to leave this one out.
  // Keys should come from a small closed set (reasons, not peer ids).
  std::optional<int64_t> Admit(absl::string_view key, absl::Time now);

 private:
  struct Slot {
    absl::Time last = absl::InfinitePast();
    int64_t suppressed = 0;
  };
  const absl::Duration period_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Slot> slots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge

#endif  // EDGE_SRC_CORE_LOG_LIMITER_H_
