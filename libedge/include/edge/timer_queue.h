// TimerQueue: the pending timers of a Clock, earliest deadline first.
//
// The one timer table behind every Clock (NewRealClock's and
// edge::testing::FakeClock): ids, ordering and cancellation live here; the
// clock decides when time has come and runs what PopDue hands back.
//
// Thread-safety: none of its own. The owning clock guards it with its lock
// and runs the popped callback with that lock released, as Clock requires.
//
//   TimerQueue timers;  // ABSL_GUARDED_BY(mu_) in the owning clock
//   Clock::TimerId id = timers.Add(deadline, [] { Tick(); });
//   while (auto due = timers.PopDue(now)) { /* unlock */ due->fn(); }
#ifndef EDGE_TIMER_QUEUE_H_
#define EDGE_TIMER_QUEUE_H_

#include <cstddef>
#include <map>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "edge/clock.h"

namespace edge {

class TimerQueue {
 public:
  struct Due {
    absl::Time deadline;
    absl::AnyInvocable<void()> fn;
  };

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Adds a timer; ids are never reused (the first is 1). Timers with the same
  // deadline come out in the order they were added.
  Clock::TimerId Add(absl::Time deadline, absl::AnyInvocable<void()> fn);

  // Removes a pending timer. False when `id` is not pending (already popped,
  // cancelled, or never added).
  bool Cancel(Clock::TimerId id);

  // The earliest pending deadline; absl::InfiniteFuture() when none.
  absl::Time NextDeadline() const;

  // Removes and returns the earliest timer when its deadline is at or before
  // `now`; nullopt otherwise.
  std::optional<Due> PopDue(absl::Time now);

  size_t size() const { return timers_.size(); }

 private:
  using Key = std::pair<absl::Time, Clock::TimerId>;

  Clock::TimerId last_id_ = 0;
  std::map<Key, absl::AnyInvocable<void()>> timers_;
  absl::flat_hash_map<Clock::TimerId, absl::Time> deadlines_;
};

}  // namespace edge

#endif  // EDGE_TIMER_QUEUE_H_
