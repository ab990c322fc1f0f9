#include "grpc_peer_stream.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "peer_message_reader.h"
#include "status_conversion.h"

namespace edge::grpc_transport::internal {

GrpcPeerStream::GrpcPeerStream(PeerCallInfo info, Clock* clock, absl::Duration write_timeout,
                               std::shared_ptr<CallbackQueue> callbacks,
                               std::shared_ptr<WriteStarter> writes,
                               AsyncOperationsReactor* reactor)
    : info_(std::move(info)),
      clock_(clock),
      write_timeout_(write_timeout),
      callbacks_(std::move(callbacks)),
      writes_(std::move(writes)),
      reactor_(reactor) {}

bool GrpcPeerStream::PinLocked() {
  if (reactor_ == nullptr || finish_issued_) return false;
  ++pins_;
  return true;
}

void GrpcPeerStream::Unpin() {
  {
    absl::MutexLock lock(&mu_);
    --pins_;
  }
  MaybeIssueFinish();
}

void GrpcPeerStream::RequestFinishLocked(absl::Status status) {
  if (!finish_status_.has_value()) finish_status_ = std::move(status);
}

void GrpcPeerStream::MaybeIssueFinish() {
  AsyncOperationsReactor* reactor;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (!finish_status_.has_value() || finish_issued_ || reactor_ == nullptr || pins_ > 0 ||
        write_in_flight_) {
      return;
    }
    finish_issued_ = true;
    reactor = reactor_;
    status = *finish_status_;
  }
  // Alive: OnDone cannot come before this Finish.
  reactor->End(status);
}

void GrpcPeerStream::MaybeStartRead() {
  AsyncOperationsReactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    if (observer_ == nullptr || paused_ || read_in_flight_ || in_on_message_ ||
        finish_status_.has_value() || !PinLocked()) {
      return;
    }
    read_in_flight_ = true;
    reactor = reactor_;
  }
  reactor->Read(&read_buffer_);
  Unpin();
}

void GrpcPeerStream::Write(EdgeMessage message, absl::AnyInvocable<void(bool ok)> done) {
  AsyncOperationsReactor* reactor = nullptr;
  bool post_drain = false;
  bool arm = false;
  absl::Time started;
  // Serialised off the lock; a message that cannot be is never written.
  grpc::ByteBuffer bytes;
  bool own_buffer = false;
  const bool serialized =
      grpc::SerializationTraits<EdgeMessage>::Serialize(message, &bytes, &own_buffer).ok();
  {
    absl::MutexLock lock(&mu_);
    if (serialized && !write_in_flight_ && !finish_status_.has_value() && PinLocked()) {
      write_in_flight_ = true;
      write_started_ = started = clock_->Now();
      write_done_ = std::move(done);
      write_buffer_.Swap(&bytes);
      reactor = reactor_;
      arm = !write_timer_armed_;
      write_timer_armed_ = true;
    } else {
      // Ended, ending, or a second outstanding write: it never happens.
      post_drain = DeferLocked([done = std::move(done)]() mutable { done(false); });
    }
  }
  if (reactor == nullptr) {
    if (post_drain) PostDrain();
    return;
  }
  if (arm) ArmWriteTimer(started + write_timeout_);
  if (writes_ != nullptr && !WriteStarter::OnGrpcThread()) {
    // Still pinned: the starter's StartQueuedWrite unpins.
    writes_->Add(shared_from_this());
    return;
  }
  reactor->Write(&write_buffer_);
  Unpin();
}

void GrpcPeerStream::StartQueuedWrite() {
  AsyncOperationsReactor* reactor;
  {
    absl::MutexLock lock(&mu_);
    // Pinned by Write, so Finish was not issued and the reactor is alive.
    reactor = reactor_;
  }
  reactor->Write(&write_buffer_);
  Unpin();
}

void GrpcPeerStream::ArmWriteTimer(absl::Time deadline) {
  std::weak_ptr<GrpcPeerStream> weak = weak_from_this();
  Clock::TimerId timer = clock_->RunAt(deadline, [weak] {
    if (auto self = weak.lock()) self->OnWriteTimer();
  });
  bool ended;
  {
    absl::MutexLock lock(&mu_);
    ended = done_;
    // A timer that already fired and re-armed left its successor's id here:
    // keep that one, the stale id names nothing pending.
    if (!ended && write_timer_ == 0) write_timer_ = timer;
  }
  if (ended) clock_->Cancel(timer);  // OnDone came first: nothing to watch.
}

bool GrpcPeerStream::DeferLocked(absl::AnyInvocable<void()> fn) {
  deferred_.push_back(std::move(fn));
  if (drain_posted_) return false;
  drain_posted_ = true;
  return true;
}

void GrpcPeerStream::PostDrain() {
  callbacks_->Post([self = shared_from_this()] { self->Drain(); });
}

void GrpcPeerStream::Drain() {
  while (true) {
    absl::AnyInvocable<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      if (deferred_.empty()) {
        drain_posted_ = false;
        return;
      }
      fn = std::move(deferred_.front());
      deferred_.pop_front();
    }
    fn();
  }
}

void GrpcPeerStream::OnWriteTimer() {
  AsyncOperationsReactor* reactor = nullptr;
  std::optional<absl::Time> rearm;
  {
    absl::MutexLock lock(&mu_);
    write_timer_ = 0;
    if (!write_in_flight_ || done_) {
      write_timer_armed_ = false;
      return;
    }
    const absl::Time deadline = write_started_ + write_timeout_;
    if (clock_->Now() < deadline) {
      rearm = deadline;  // A later write than the one that armed it.
    } else {
      write_timer_armed_ = false;
      RequestFinishLocked(absl::DeadlineExceededError(
          absl::StrCat("write to peer did not complete within ",
                       absl::FormatDuration(write_timeout_), "; the peer stopped reading")));
      if (!PinLocked()) return;
      reactor = reactor_;
    }
  }
  if (rearm.has_value()) {
    ArmWriteTimer(*rearm);
    return;
  }
  // The outstanding write then completes with false, which issues Finish.
  reactor->Cancel();
  Unpin();
}

void GrpcPeerStream::OnWriteDone(bool ok) {
  absl::AnyInvocable<void(bool)> done;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    done = std::move(write_done_);
    write_done_ = nullptr;
    // A failed write means the call is broken; end it if nothing else did.
    if (!ok) RequestFinishLocked(absl::UnavailableError("write to peer failed"));
  }
  done(ok);
  MaybeIssueFinish();
}

void GrpcPeerStream::Finish(absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    RequestFinishLocked(std::move(status));
  }
  MaybeIssueFinish();
}

bool GrpcPeerStream::ended() const {
  absl::MutexLock lock(&mu_);
  return done_ || finish_status_.has_value();
}

void GrpcPeerStream::ResumeReading() {
  {
    absl::MutexLock lock(&mu_);
    if (in_on_message_) {
      resume_requested_ = true;  // Cancels a pause the running OnMessage asks for.
      return;
    }
    if (!paused_) return;
    paused_ = false;
  }
  MaybeStartRead();
}

void GrpcPeerStream::Decide(absl::StatusOr<std::shared_ptr<PeerStreamObserver>> decision) {
  if (decision.ok() && *decision == nullptr) {
    decision = absl::InternalError("admission produced no stream observer");
  }
  bool post_drain = false;
  {
    absl::MutexLock lock(&mu_);
    if (decided_) return;  // `decide` runs once; a second call is ignored.
    decided_ = true;
    if (!decision.ok()) {
      RequestFinishLocked(decision.status());
    } else if (done_) {
      // The peer left before the decision: the observer still gets its end,
      // never inline from `decide`.
      end_delivered_ = true;
      absl::Status status =
          finish_status_.value_or(absl::CancelledError("the peer left before admission"));
      post_drain = DeferLocked([observer = *std::move(decision), status = std::move(status)] {
        observer->OnEnd(status);
      });
    } else {
      observer_ = *std::move(decision);
    }
  }
  if (post_drain) {
    PostDrain();
    return;
  }
  MaybeIssueFinish();
  MaybeStartRead();
}

void GrpcPeerStream::OnReadDone(bool ok) {
  std::shared_ptr<PeerStreamObserver> observer;
  if (!ok) {
    AsyncOperationsReactor* reactor;
    {
      absl::MutexLock lock(&mu_);
      read_in_flight_ = false;
      reactor = reactor_;
    }
    // Inside a reaction the reactor is alive. Without a cancellation, a
    // failed read is the peer's half-close: the stream ends cleanly.
    const bool cancelled = reactor->IsCancelled();
    {
      absl::MutexLock lock(&mu_);
      RequestFinishLocked(cancelled ? absl::CancelledError("the peer cancelled the stream")
                                    : absl::OkStatus());
    }
    MaybeIssueFinish();
    return;
  }
  PeerMessage message;
  absl::Status parsed = ParsePeerMessage(&read_buffer_, &message);
  read_buffer_.Clear();
  if (!parsed.ok()) {
    // What the peer sent is not a PeerMessage: the stream ends, and says why.
    {
      absl::MutexLock lock(&mu_);
      read_in_flight_ = false;
      RequestFinishLocked(std::move(parsed));
    }
    MaybeIssueFinish();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    read_in_flight_ = false;
    in_on_message_ = true;
    resume_requested_ = false;
    observer = observer_;
  }
  const bool keep_reading = observer->OnMessage(std::move(message));
  {
    absl::MutexLock lock(&mu_);
    in_on_message_ = false;
    if (!keep_reading && !resume_requested_) paused_ = true;
    resume_requested_ = false;
  }
  MaybeStartRead();
}

void GrpcPeerStream::OnCancel() {
  {
    absl::MutexLock lock(&mu_);
    RequestFinishLocked(
        absl::CancelledError("the peer cancelled the stream or its connection was lost"));
  }
  MaybeIssueFinish();
}

void GrpcPeerStream::OnDone() {
  std::shared_ptr<PeerStreamObserver> observer;
  absl::Status status;
  Clock::TimerId timer = 0;
  {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
    done_ = true;
    std::swap(timer, write_timer_);
    write_timer_armed_ = false;
  }
  // The call is over: its write timer, if any, has nothing left to watch.
  if (timer != 0) clock_->Cancel(timer);
  {
    absl::MutexLock lock(&mu_);
    status = finish_status_.value_or(absl::CancelledError("the stream ended"));
    if (observer_ == nullptr || end_delivered_) return;
    end_delivered_ = true;
    // Dropped here: the observer usually holds this stream in turn.
    observer = std::move(observer_);
    observer_ = nullptr;
    if (drain_posted_) {
      // Refused writes' callbacks are pending: OnEnd goes behind them. The
      // posted Drain runs it.
      DeferLocked([observer = std::move(observer), status = std::move(status)] {
        observer->OnEnd(status);
      });
      return;
    }
  }
  observer->OnEnd(status);
}

void AsyncOperationsReactor::End(const absl::Status& status) { Finish(ToGrpcStatus(status)); }

void AsyncOperationsReactor::OnDone() {
  if (stream_ != nullptr) stream_->OnDone();
  stream_ = nullptr;
  CallTracker* tracker = tracker_;
  const uint64_t call_id = call_id_;
  delete this;
  tracker->CallDone(call_id);
}

}  // namespace edge::grpc_transport::internal
