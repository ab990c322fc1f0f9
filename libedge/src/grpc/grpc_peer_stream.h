// GrpcPeerStream and its reactor: one AsyncOperations call.
//
// gRPC's reactor lives exactly as long as the RPC (it deletes itself in
// OnDone), while the handler holds the PeerStream by shared_ptr for as long
// as it likes and calls it from any thread. So the two are separate: the
// reactor forwards every reaction to the stream, and the stream calls into
// the reactor only while the RPC is known to be alive.
//
// Liveness rule: the reactor is alive until OnDone, and OnDone comes only
// after Finish. The stream issues Finish once, when no other thread is inside
// a reactor call ("pins") and no write is outstanding; after that it never
// calls the reactor again. A write handed to the WriteStarter keeps its pin
// until the starter starts it (StartQueuedWrite). No stream lock is held while calling the reactor,
// the handler, the observer or a Write callback.
#ifndef EDGE_SRC_GRPC_GRPC_PEER_STREAM_H_
#define EDGE_SRC_GRPC_GRPC_PEER_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <list>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callback_queue.h"
#include "edge/clock.h"
#include "edge/peer_transport.h"
#include "write_starter.h"

namespace edge::grpc_transport::internal {

class AsyncOperationsReactor;

class GrpcPeerStream final : public PeerStream,
                             public std::enable_shared_from_this<GrpcPeerStream> {
 public:
  GrpcPeerStream(PeerCallInfo info, Clock* clock, absl::Duration write_timeout,
                 std::shared_ptr<CallbackQueue> callbacks, std::shared_ptr<WriteStarter> writes,
                 AsyncOperationsReactor* reactor);

  // PeerStream.
  const PeerCallInfo& info() const override { return info_; }
  void Write(EdgeMessage message, absl::AnyInvocable<void(bool ok)> done) override;
  void Finish(absl::Status status) override;
  void ResumeReading() override;
  bool ended() const override;

  // The handler's admission decision.
  void Decide(absl::StatusOr<std::shared_ptr<PeerStreamObserver>> decision);

  // Reactions, forwarded by the reactor.
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnCancel();
  // Delivers OnEnd; afterwards the reactor is gone.
  void OnDone();

  // Starts the write that Write handed to the WriteStarter (on its thread).
  void StartQueuedWrite();

 private:
  // Marks a reactor call in progress; false once Finish was issued.
  bool PinLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unpin();
  // Records why the stream ends, the first reason wins.
  void RequestFinishLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Issues Finish when it was requested and nothing else is in progress.
  void MaybeIssueFinish();
  // Starts the next read when admitted, not paused and not ending.
  void MaybeStartRead();
  // Arms the write-timeout timer for `deadline`.
  void ArmWriteTimer(absl::Time deadline);
  // Ends the stream if the write in flight has outlasted the timeout, else
  // re-arms for that write's deadline (or disarms when none is in flight).
  void OnWriteTimer();
  // Queues `fn` behind the deferred callbacks; returns true when the caller
  // must post Drain() (after unlocking).
  bool DeferLocked(absl::AnyInvocable<void()> fn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PostDrain();
  void Drain();

  const PeerCallInfo info_;
  Clock* const clock_;
  const absl::Duration write_timeout_;
  const std::shared_ptr<CallbackQueue> callbacks_;
  // Writes asked for on threads that are not gRPC's are started there.
  const std::shared_ptr<WriteStarter> writes_;

  mutable absl::Mutex mu_;
  AsyncOperationsReactor* reactor_ ABSL_GUARDED_BY(mu_);  // null after OnDone
  int pins_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_issued_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;

  bool decided_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<PeerStreamObserver> observer_ ABSL_GUARDED_BY(mu_);
  bool end_delivered_ ABSL_GUARDED_BY(mu_) = false;

  bool read_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool in_on_message_ ABSL_GUARDED_BY(mu_) = false;
  bool resume_requested_ ABSL_GUARDED_BY(mu_) = false;
  // Raw bytes, parsed by the stream itself so that a message that does not
  // parse is told apart from the peer's half-close (peer_message_reader.h).
  grpc::ByteBuffer read_buffer_;  // Owned by the read in flight.

  // Callbacks that must not run inline (refused writes' `done(false)`, and
  // OnEnd while any of those is pending), run in order by Drain() on
  // `callbacks_`: so OnEnd always comes after every Write callback.
  // A list: libstdc++'s deque allocates ~600 bytes when constructed, which
  // every idle stream paid for this rarely used queue.
  std::list<absl::AnyInvocable<void()>> deferred_ ABSL_GUARDED_BY(mu_);
  bool drain_posted_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  // One write-timeout timer at a time, armed by a write when none is, and
  // re-armed by itself while writes keep going: a write costs no timer
  // of its own.
  bool write_timer_armed_ ABSL_GUARDED_BY(mu_) = false;
  Clock::TimerId write_timer_ ABSL_GUARDED_BY(mu_) = 0;
  absl::AnyInvocable<void(bool)> write_done_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer write_buffer_;  // Owned by the write in flight.
};

// Told when a call's reactor is done, so Shutdown can wait for all of them.
class CallTracker {
 public:
  virtual ~CallTracker() = default;
  virtual void CallDone(uint64_t call_id) = 0;
};

class AsyncOperationsReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  AsyncOperationsReactor(grpc::CallbackServerContext* context, CallTracker* tracker,
                         uint64_t call_id)
      : context_(context), tracker_(tracker), call_id_(call_id) {}

  void set_stream(std::shared_ptr<GrpcPeerStream> stream) { stream_ = std::move(stream); }

  // Called by GrpcPeerStream under its liveness rule.
  void Read(grpc::ByteBuffer* message) { StartRead(message); }
  void Write(const grpc::ByteBuffer* message) { StartWrite(message); }
  void End(const absl::Status& status);
  void Cancel() { context_->TryCancel(); }
  bool IsCancelled() const { return context_->IsCancelled(); }

  // Ends a call that never got a stream (the transport is shutting down).
  void Reject(const absl::Status& status) { End(status); }

 private:
  void OnReadDone(bool ok) override {
    WriteStarter::GrpcThreadScope scope;
    stream_->OnReadDone(ok);
  }
  void OnWriteDone(bool ok) override {
    WriteStarter::GrpcThreadScope scope;
    stream_->OnWriteDone(ok);
  }
  void OnCancel() override {
    if (stream_ != nullptr) stream_->OnCancel();
  }
  void OnDone() override;

  grpc::CallbackServerContext* const context_;
  CallTracker* const tracker_;
  const uint64_t call_id_;
  std::shared_ptr<GrpcPeerStream> stream_;
};

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_GRPC_PEER_STREAM_H_
