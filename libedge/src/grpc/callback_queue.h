// CallbackQueue: one thread that runs callbacks the transport must not run
// inline (a Write callback for a stream that already ended, a late OnEnd).
#ifndef EDGE_SRC_GRPC_CALLBACK_QUEUE_H_
#define EDGE_SRC_GRPC_CALLBACK_QUEUE_H_

#include <deque>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace edge::grpc_transport::internal {

class CallbackQueue {
 public:
  CallbackQueue();
  CallbackQueue(const CallbackQueue&) = delete;
  CallbackQueue& operator=(const CallbackQueue&) = delete;
  ~CallbackQueue();  // Stop()

  // Runs `fn` on the queue's thread after everything posted before it. Once
  // stopped, runs `fn` inline: a callback is never lost.
  void Post(absl::AnyInvocable<void()> fn);

  // Waits until everything posted before this call has run.
  void Flush();

  // Runs what is queued, then joins the thread. Idempotent. Must not be
  // called from a callback of this queue.
  void Stop();

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> work_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t posted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_CALLBACK_QUEUE_H_
