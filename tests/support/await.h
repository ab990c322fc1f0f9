// Waiting in tests for a callback API's answer: starts the call with a
// callback that stores the value, and returns it once the callback ran.
// A call that never calls back is a test failure after 20 s (the wait then
// goes on: the callback still owns the state). tracker_sync.h has the
// bounded Tracker wrappers built the same way.
#ifndef EDGE_TESTS_SUPPORT_AWAIT_H_
#define EDGE_TESTS_SUPPORT_AWAIT_H_

#include <memory>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace edge::testing {

template <typename T>
T Await(absl::AnyInvocable<void(absl::AnyInvocable<void(T)>)> start) {
  struct State {
    absl::Notification done;
    T value;
  };
  auto state = std::make_shared<State>();
  start([state](T value) {
    state->value = std::move(value);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(absl::Seconds(20))) {
    ADD_FAILURE() << "tracker never called back";
    state->done.WaitForNotification();
  }
  return std::move(state->value);
}

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_AWAIT_H_
