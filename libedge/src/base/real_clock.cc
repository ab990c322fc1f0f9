#include <map>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/clock.h"

namespace edge {
namespace {

// The system clock. Timers wait in a map ordered by deadline; one thread
// sleeps until the earliest, then runs it with the lock released.
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
    TimerId id = ++last_id_;
    timers_.emplace(Key{deadline, id}, std::move(fn));
    deadlines_.emplace(id, deadline);
    return id;
  }

  bool Cancel(TimerId id) override {
    absl::MutexLock lock(&mu_);
    auto it = deadlines_.find(id);
    if (it == deadlines_.end()) return false;
    timers_.erase(Key{it->second, id});
    deadlines_.erase(it);
    return true;
  }

 private:
  using Key = std::pair<absl::Time, TimerId>;

  void Loop() {
    absl::MutexLock lock(&mu_);
    while (!stopping_) {
      absl::Time now = absl::Now();
      if (!timers_.empty() && timers_.begin()->first.first <= now) {
        auto node = timers_.extract(timers_.begin());
        deadlines_.erase(node.key().second);
        mu_.Unlock();
        node.mapped()();
        node.mapped() = nullptr;  // Destroy captures off-lock too.
        mu_.Lock();
        continue;
      }
      absl::Time wake = timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.first;
      // Wake early when an earlier timer is added or on shutdown.
      auto changed = [this, wake]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || (!timers_.empty() && timers_.begin()->first.first < wake);
      };
      mu_.AwaitWithDeadline(absl::Condition(&changed), wake);
    }
  }

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  TimerId last_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<Key, absl::AnyInvocable<void()>> timers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<TimerId, absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Clock> NewRealClock() { return std::make_unique<RealClock>(); }

}  // namespace edge
