// Clock: the time source and timer service every part of the edge uses.
//
// Time is injected so that tests can drive timeouts deterministically with
// edge::testing::FakeClock (edge/testing/fake_clock.h) instead of sleeping.
//
// Thread-safety: all methods may be called from any thread. Timer callbacks
// run without any clock lock held: on the clock's own thread (NewRealClock) or
// on the thread that calls edge::testing::FakeClock::Advance.
//
//   auto clock = edge::NewRealClock();
//   clock->RunAt(clock->Now() + absl::Seconds(1), [] { Tick(); });
#ifndef EDGE_CLOCK_H_
#define EDGE_CLOCK_H_

#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace edge {

class Clock {
 public:
  using TimerId = uint64_t;

  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  virtual absl::Time Now() = 0;

  // Runs `fn` once, at or after `deadline`. Never runs it inline.
  virtual TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) = 0;

  // Cancels a timer that has not started. Returns false when it already ran,
  // is running, or never existed.
  virtual bool Cancel(TimerId id) = 0;
};

// The system clock with one timer thread; the thread stops, and pending
// timers are dropped, when the clock is destroyed.
std::unique_ptr<Clock> NewRealClock();

}  // namespace edge

#endif  // EDGE_CLOCK_H_
