// FakeClock: a Clock that moves only when told to.
//
// Timers run on the thread that calls Advance/AdvanceTo, in deadline order,
// without the clock's lock held (so a timer may schedule or cancel others;
// a timer that becomes due during the advance runs in the same call).
//
//   edge::testing::FakeClock clock;
//   clock.RunAt(clock.Now() + absl::Seconds(120), [&] { timed_out = true; });
//   clock.Advance(absl::Seconds(120));  // timed_out == true
#ifndef EDGE_TESTING_FAKE_CLOCK_H_
#define EDGE_TESTING_FAKE_CLOCK_H_

#include <cstddef>

#include "absl/synchronization/mutex.h"
#include "edge/clock.h"
#include "edge/timer_queue.h"

namespace edge::testing {

class FakeClock final : public Clock {
 public:
  // Starts at 2026-01-01T00:00:00Z unless told otherwise.
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1767225600));

  absl::Time Now() override;
  TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) override;
  bool Cancel(TimerId id) override;

  void Advance(absl::Duration by);
  void AdvanceTo(absl::Time to);
  size_t pending_timers();

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  TimerQueue timers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::testing

#endif  // EDGE_TESTING_FAKE_CLOCK_H_
