#include "edge/testing/fake_clock.h"

namespace edge::testing {

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() {
  absl::MutexLock lock(&mu_);
  return now_;
}

Clock::TimerId FakeClock::RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) {
  absl::MutexLock lock(&mu_);
  TimerId id = ++last_id_;
  timers_.emplace(Key{deadline, id}, std::move(fn));
  deadlines_.emplace(id, deadline);
  return id;
}

bool FakeClock::Cancel(TimerId id) {
  absl::MutexLock lock(&mu_);
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return false;
  timers_.erase(Key{it->second, id});
  deadlines_.erase(it);
  return true;
}

void FakeClock::Advance(absl::Duration by) { AdvanceTo(Now() + by); }

void FakeClock::AdvanceTo(absl::Time to) {
  while (true) {
    absl::AnyInvocable<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      if (timers_.empty() || timers_.begin()->first.first > to) {
        if (now_ < to) now_ = to;
        return;
      }
      auto node = timers_.extract(timers_.begin());
      deadlines_.erase(node.key().second);
      if (now_ < node.key().first) now_ = node.key().first;
      fn = std::move(node.mapped());
    }
    fn();
  }
}

size_t FakeClock::pending_timers() {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

}  // namespace edge::testing
