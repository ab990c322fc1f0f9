// Waiting in tests: poll a condition until it holds or a deadline passes.
// Tests synchronise on conditions, never on sleeps.
#ifndef EDGE_TESTS_SUPPORT_WAIT_H_
#define EDGE_TESTS_SUPPORT_WAIT_H_

#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace edge::testing {

// Returns true as soon as `condition()` holds; false if it still does not
// after `timeout` (real time). Polls every millisecond.
inline bool WaitFor(const std::function<bool()>& condition,
                    absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_WAIT_H_
