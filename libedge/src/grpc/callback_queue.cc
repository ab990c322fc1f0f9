#include "callback_queue.h"

#include <utility>

namespace edge::grpc_transport::internal {

CallbackQueue::CallbackQueue() : thread_([this] { Loop(); }) {}

CallbackQueue::~CallbackQueue() { Stop(); }

void CallbackQueue::Post(absl::AnyInvocable<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      work_.push_back(std::move(fn));
      ++posted_;
      return;
    }
  }
  fn();
}

void CallbackQueue::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = posted_;
  auto reached = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopped_ || completed_ >= target;
  };
  mu_.Await(absl::Condition(&reached));
}

void CallbackQueue::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  thread_.join();
  // Anything posted between the loop's exit and now runs here.
  std::deque<absl::AnyInvocable<void()>> rest;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    rest.swap(work_);
  }
  for (auto& fn : rest) fn();
}

void CallbackQueue::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto ready = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !work_.empty(); };
    mu_.Await(absl::Condition(&ready));
    if (work_.empty()) return;  // Stopping and drained.
    absl::AnyInvocable<void()> fn = std::move(work_.front());
    work_.pop_front();
    mu_.Unlock();
    fn();
    fn = nullptr;  // Destroy captures outside the lock too.
    mu_.Lock();
    ++completed_;
  }
}

}  // namespace edge::grpc_transport::internal
