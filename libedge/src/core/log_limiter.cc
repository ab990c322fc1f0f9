#include "log_limiter.h"

namespace edge {

std::optional<int64_t> LogLimiter::Admit(absl::string_view key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  Slot& slot = slots_[key];
  if (now - slot.last < period_) {
    ++slot.suppressed;
    return std::nullopt;
  }
  int64_t suppressed = slot.suppressed;
  slot.last = now;
  slot.suppressed = 0;
  return suppressed;
}

}  // namespace edge
