#include "edge/testing/fake_clock.h"

#include <optional>
#include <utility>

namespace edge::testing {

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() {
  absl::MutexLock lock(&mu_);
  return now_;
}

Clock::TimerId FakeClock::RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) {
  absl::MutexLock lock(&mu_);
  return timers_.Add(deadline, std::move(fn));
}

bool FakeClock::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  return timers_.Cancel(id);
}

void FakeClock::Advance(absl::Duration by) { AdvanceTo(Now() + by); }

void FakeClock::AdvanceTo(absl::Time to) {
  while (true) {
    std::optional<TimerQueue::Due> due;
    {
      absl::MutexLock lock(&mu_);
      due = timers_.PopDue(to);
      if (!due) {
        if (now_ < to) now_ = to;
        return;
      }
      if (now_ < due->deadline) now_ = due->deadline;
    }
    due->fn();
  }
}

size_t FakeClock::pending_timers() {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

}  // namespace edge::testing
