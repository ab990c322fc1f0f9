#include "edge/timer_queue.h"

#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::ElementsAre;

const absl::Time kStart = absl::FromUnixSeconds(1767225600);

// Pops every timer due at `now`, running each; returns what ran in order.
std::vector<std::string> RunDue(TimerQueue& queue, absl::Time now, std::vector<std::string>& log) {
  while (std::optional<TimerQueue::Due> due = queue.PopDue(now)) due->fn();
  return log;
}

TEST(TimerQueueTest, PopsInDeadlineOrderThenInOrderAdded) {
  TimerQueue queue;
  std::vector<std::string> log;
  queue.Add(kStart + absl::Seconds(2), [&] { log.push_back("late"); });
  queue.Add(kStart + absl::Seconds(1), [&] { log.push_back("first"); });
  queue.Add(kStart + absl::Seconds(1), [&] { log.push_back("second"); });
  EXPECT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue.NextDeadline(), kStart + absl::Seconds(1));

  EXPECT_THAT(RunDue(queue, kStart + absl::Seconds(1), log), ElementsAre("first", "second"));
  EXPECT_EQ(queue.NextDeadline(), kStart + absl::Seconds(2));
  EXPECT_THAT(RunDue(queue, kStart + absl::Seconds(2), log),
              ElementsAre("first", "second", "late"));
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_EQ(queue.NextDeadline(), absl::InfiniteFuture());
}

TEST(TimerQueueTest, NothingIsDueBeforeItsDeadline) {
  TimerQueue queue;
  queue.Add(kStart, [] {});
  EXPECT_FALSE(queue.PopDue(kStart - absl::Nanoseconds(1)).has_value());
  std::optional<TimerQueue::Due> due = queue.PopDue(kStart);
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->deadline, kStart);
  EXPECT_FALSE(queue.PopDue(absl::InfiniteFuture()).has_value());
}

TEST(TimerQueueTest, CancelRemovesOnlyAPendingTimer) {
  TimerQueue queue;
  std::vector<std::string> log;
  Clock::TimerId a = queue.Add(kStart, [&] { log.push_back("a"); });
  Clock::TimerId b = queue.Add(kStart, [&] { log.push_back("b"); });
  EXPECT_NE(a, b);
  EXPECT_TRUE(queue.Cancel(a));
  EXPECT_FALSE(queue.Cancel(a));        // Already cancelled.
  EXPECT_FALSE(queue.Cancel(b + 100));  // Never added.
  EXPECT_THAT(RunDue(queue, kStart, log), ElementsAre("b"));
  EXPECT_FALSE(queue.Cancel(b));  // Already popped.
}

TEST(TimerQueueTest, IdsAreNotReused) {
  TimerQueue queue;
  Clock::TimerId first = queue.Add(kStart, [] {});
  ASSERT_TRUE(queue.Cancel(first));
  EXPECT_GT(queue.Add(kStart, [] {}), first);
}

}  // namespace
}  // namespace edge
