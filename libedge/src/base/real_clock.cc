#include <optional>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/clock.h"
#include "edge/timer_queue.h"

namespace edge {
namespace {

// The system clock. Timers wait in a TimerQueue; one thread sleeps until the
// earliest, then runs it with the lock released.
class RealClock final : public Clock {
 public:
  RealClock() : thread_([this] { Loop(); }) {}

  ~RealClock() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  absl::Time Now() override { return absl::Now(); }

  TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) override {
    absl::MutexLock lock(&mu_);
    return timers_.Add(deadline, std::move(fn));
  }

  bool Cancel(TimerId id) override {
    absl::MutexLock lock(&mu_);
    return timers_.Cancel(id);
  }

 private:
  void Loop() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      if (std::optional<TimerQueue::Due> due = timers_.PopDue(absl::Now())) {
        mu_.Unlock();
        due->fn();
        due.reset();  // Destroy captures off-lock too.
        mu_.Lock();
        continue;
      }
      absl::Time wake = timers_.NextDeadline();
      // Wake early when an earlier timer is added or on shutdown.
      auto changed = [this, wake]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || timers_.NextDeadline() < wake;
      };
      mu_.AwaitWithDeadline(absl::Condition(&changed), wake);
    }
  }

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  TimerQueue timers_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Clock> NewRealClock() { return std::make_unique<RealClock>(); }

}  // namespace edge
