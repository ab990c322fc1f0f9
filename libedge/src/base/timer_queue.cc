#include "edge/timer_queue.h"

namespace edge {

Clock::TimerId TimerQueue::Add(absl::Time deadline, absl::AnyInvocable<void()> fn) {
  Clock::TimerId id = ++last_id_;
  timers_.emplace(Key{deadline, id}, std::move(fn));
  deadlines_.emplace(id, deadline);
  return id;
}

bool TimerQueue::Cancel(Clock::TimerId id) {
  auto it = deadlines_.find(id);
  if (it == deadlines_.end()) return false;
  timers_.erase(Key{it->second, id});
  deadlines_.erase(it);
  return true;
}

absl::Time TimerQueue::NextDeadline() const {
  return timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.first;
}

std::optional<TimerQueue::Due> TimerQueue::PopDue(absl::Time now) {
  if (timers_.empty() || timers_.begin()->first.first > now) return std::nullopt;
  auto node = timers_.extract(timers_.begin());
  deadlines_.erase(node.key().second);
  return Due{node.key().first, std::move(node.mapped())};
}

}  // namespace edge
