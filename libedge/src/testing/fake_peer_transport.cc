#include "edge/testing/fake_peer_transport.h"

#include <utility>

#include "absl/synchronization/notification.h"

namespace edge::testing {

// The shared state of one simulated stream: the handler's PeerStream and
// the test's Peer both point here.
class FakePeerTransport::Stream final : public PeerStream,
                                        public std::enable_shared_from_this<Stream> {
 public:
  Stream(FakePeerTransport* transport, PeerCallInfo info)
      : transport_(transport), info_(std::move(info)) {}

  const PeerCallInfo& info() const override { return info_; }

  void Write(EdgeMessage message, absl::AnyInvocable<void(bool)> done) override {
    absl::MutexLock lock(&mu_);
    if (final_status_.has_value() || finish_status_.has_value() || outstanding_done_) {
      // Ended, ending, or a second outstanding write: the write never happens.
      transport_->Post([done = std::move(done)]() mutable { done(false); });
      return;
    }
    if (peer_reading_) {
      received_.push_back(std::move(message));
      transport_->Post([done = std::move(done)]() mutable { done(true); });
      return;
    }
    outstanding_ = std::move(message);
    outstanding_done_ = std::move(done);
  }

  void Finish(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    if (final_status_.has_value() || finish_status_.has_value()) return;
    finish_status_ = std::move(status);
    if (!outstanding_done_) EndLocked(*finish_status_);
  }

  void ResumeReading() override {
    absl::MutexLock lock(&mu_);
    resume_requested_ = true;
    if (!paused_) return;
    paused_ = false;
    ScheduleDeliveryLocked();
  }

  void Decide(absl::StatusOr<std::shared_ptr<PeerStreamObserver>> decision) {
    absl::MutexLock lock(&mu_);
    if (admission_.has_value()) return;
    if (!decision.ok()) {
      admission_ = decision.status();
      if (!final_status_.has_value()) final_status_ = decision.status();
      return;
    }
    admission_ = absl::OkStatus();
    observer_ = std::move(*decision);
    if (final_status_.has_value()) {
      PostEndLocked(*final_status_);  // The peer left before the decision.
    } else {
      ScheduleDeliveryLocked();
    }
  }

  // --- the peer's side ---

  void PeerSend(PeerMessage message) {
    absl::MutexLock lock(&mu_);
    if (final_status_.has_value()) return;
    inbound_.push_back(std::move(message));
    ScheduleDeliveryLocked();
  }

  void PeerSetReading(bool reading) {
    absl::MutexLock lock(&mu_);
    peer_reading_ = reading;
    if (!reading || !outstanding_done_) return;
    received_.push_back(std::move(outstanding_));
    transport_->Post([done = std::move(outstanding_done_)]() mutable { done(true); });
    outstanding_done_ = nullptr;
    if (finish_status_.has_value()) EndLocked(*finish_status_);
  }

  void PeerClose(absl::Status why) {
    absl::MutexLock lock(&mu_);
    if (final_status_.has_value()) return;
    if (outstanding_done_) {
      transport_->Post([done = std::move(outstanding_done_)]() mutable { done(false); });
      outstanding_done_ = nullptr;
    }
    EndLocked(std::move(why));
  }

  std::optional<absl::Status> admission() {
    absl::MutexLock lock(&mu_);
    return admission_;
  }
  bool ended() const override {
    absl::MutexLock lock(&mu_);
    return final_status_.has_value() || finish_status_.has_value();
  }
  bool WaitForAdmission(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto decided = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return admission_.has_value(); };
    return mu_.AwaitWithTimeout(absl::Condition(&decided), timeout);
  }
  std::vector<EdgeMessage> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  bool WaitForReceived(size_t count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.size() >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::optional<absl::Status> final_status() {
    absl::MutexLock lock(&mu_);
    return final_status_;
  }
  bool WaitForEnd(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return final_status_.has_value(); };
    return mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  }
  size_t unread() {
    absl::MutexLock lock(&mu_);
    return inbound_.size();
  }

 private:
  void EndLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    final_status_ = status;
    inbound_.clear();
    if (observer_) PostEndLocked(std::move(status));
  }

  void PostEndLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (end_posted_) return;
    end_posted_ = true;
    transport_->Post(
        [observer = observer_, status = std::move(status)] { observer->OnEnd(status); });
  }

  void ScheduleDeliveryLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!observer_ || paused_ || delivering_ || inbound_.empty() || end_posted_) return;
    delivering_ = true;
    transport_->Post([self = shared_from_this()] { self->Deliver(); });
  }

  // Runs on the transport thread: hands queued messages to the observer one
  // at a time until the queue is empty or the handler pauses reading.
  void Deliver() {
    while (true) {
      PeerMessage message;
      std::shared_ptr<PeerStreamObserver> observer;
      {
        absl::MutexLock lock(&mu_);
        if (inbound_.empty() || paused_ || end_posted_) {
          delivering_ = false;
          return;
        }
        message = std::move(inbound_.front());
        inbound_.pop_front();
        observer = observer_;
        resume_requested_ = false;
      }
      bool keep_reading = observer->OnMessage(std::move(message));
      if (!keep_reading) {
        absl::MutexLock lock(&mu_);
        // A ResumeReading that raced with OnMessage cancels the pause.
        if (!resume_requested_) paused_ = true;
      }
    }
  }

  FakePeerTransport* const transport_;
  const PeerCallInfo info_;
  mutable absl::Mutex mu_;
  std::optional<absl::Status> admission_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<PeerStreamObserver> observer_ ABSL_GUARDED_BY(mu_);
  std::deque<PeerMessage> inbound_ ABSL_GUARDED_BY(mu_);
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  bool resume_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool delivering_ ABSL_GUARDED_BY(mu_) = false;
  bool peer_reading_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<EdgeMessage> received_ ABSL_GUARDED_BY(mu_);
  EdgeMessage outstanding_ ABSL_GUARDED_BY(mu_);
  absl::AnyInvocable<void(bool)> outstanding_done_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> finish_status_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> final_status_ ABSL_GUARDED_BY(mu_);
  bool end_posted_ ABSL_GUARDED_BY(mu_) = false;
};

FakePeerTransport::FakePeerTransport() : thread_([this] { Loop(); }) {}

FakePeerTransport::~FakePeerTransport() {
  Shutdown();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::Status FakePeerTransport::Start(PeerStreamHandler* handler) {
  absl::MutexLock lock(&mu_);
  if (handler_ != nullptr) return absl::FailedPreconditionError("transport already started");
  handler_ = handler;
  return absl::OkStatus();
}

void FakePeerTransport::Shutdown() {
  std::vector<std::shared_ptr<Peer>> open;
  {
    absl::MutexLock lock(&mu_);
    for (auto& weak : peers_) {
      if (auto peer = weak.lock()) open.push_back(std::move(peer));
    }
    peers_.clear();
  }
  for (auto& peer : open) {
    peer->stream_->PeerClose(absl::CancelledError("edge shutting down"));
  }
  // A decision being made on the transport thread right now may admit a
  // stream closed above; its OnEnd is posted by the time that task is done.
  // The first Flush waits for that task, the second for what it posted.
  Flush();
  Flush();
}

std::shared_ptr<FakePeerTransport::Peer> FakePeerTransport::Connect(PeerCallInfo info) {
  auto stream = std::make_shared<Stream>(this, std::move(info));
  std::shared_ptr<Peer> peer(new Peer(stream));
  PeerStreamHandler* handler;
  {
    absl::MutexLock lock(&mu_);
    handler = handler_;
    peers_.push_back(peer);
  }
  if (handler == nullptr) {
    stream->Decide(absl::UnavailableError("transport not started"));
    return peer;
  }
  Post([handler, stream] {
    handler->OnStreamStart(stream,
                           [stream](auto decision) { stream->Decide(std::move(decision)); });
  });
  return peer;
}

std::shared_ptr<FakePeerTransport::Peer> FakePeerTransport::Connect(const std::string& peer_id) {
  PeerCallInfo info;
  info.has_peer_id = true;
  info.peer_id = peer_id;
  info.remote_address = "fake:" + peer_id;
  return Connect(std::move(info));
}

absl::StatusOr<PeerWebRTCMessage> FakePeerTransport::CallWebRtc(PeerCallInfo caller,
                                                                EdgeWebRTCMessage request,
                                                                absl::Duration timeout) {
  struct Call {
    absl::Notification done;
    absl::StatusOr<PeerWebRTCMessage> result = absl::UnknownError("no reply");
  };
  auto call = std::make_shared<Call>();
  PeerStreamHandler* handler;
  {
    absl::MutexLock lock(&mu_);
    handler = handler_;
  }
  if (handler == nullptr) return absl::UnavailableError("transport not started");
  Post([handler, call, caller = std::move(caller), request = std::move(request)]() mutable {
    handler->OnWebRtcCall(caller, std::move(request),
                          [call](absl::StatusOr<PeerWebRTCMessage> reply) {
                            if (call->done.HasBeenNotified()) return;
                            call->result = std::move(reply);
                            call->done.Notify();
                          });
  });
  if (!call->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError("no WebRTC reply in time");
  }
  return call->result;
}

void FakePeerTransport::Post(absl::AnyInvocable<void()> fn) {
  absl::MutexLock lock(&mu_);
  work_.push_back(std::move(fn));
}

void FakePeerTransport::Flush() {
  absl::Notification done;
  Post([&done] { done.Notify(); });
  done.WaitForNotification();
}

void FakePeerTransport::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    auto ready = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !work_.empty(); };
    mu_.Await(absl::Condition(&ready));
    if (work_.empty()) return;  // stopping_ and nothing left.
    absl::AnyInvocable<void()> fn = std::move(work_.front());
    work_.pop_front();
    mu_.Unlock();
    fn();
    fn = nullptr;
    mu_.Lock();
  }
}

// --- Peer ---

std::optional<absl::Status> FakePeerTransport::Peer::admission() { return stream_->admission(); }
bool FakePeerTransport::Peer::WaitForAdmission(absl::Duration timeout) {
  return stream_->WaitForAdmission(timeout);
}
void FakePeerTransport::Peer::Send(PeerMessage message) { stream_->PeerSend(std::move(message)); }
size_t FakePeerTransport::Peer::unread() { return stream_->unread(); }
std::vector<EdgeMessage> FakePeerTransport::Peer::Received() { return stream_->received(); }
bool FakePeerTransport::Peer::WaitForReceived(size_t count, absl::Duration timeout) {
  return stream_->WaitForReceived(count, timeout);
}
void FakePeerTransport::Peer::StopReading() { stream_->PeerSetReading(false); }
void FakePeerTransport::Peer::ResumeReading() { stream_->PeerSetReading(true); }
void FakePeerTransport::Peer::Close() { stream_->PeerClose(absl::CancelledError("peer closed")); }
std::optional<absl::Status> FakePeerTransport::Peer::final_status() {
  return stream_->final_status();
}
bool FakePeerTransport::Peer::WaitForEnd(absl::Duration timeout) {
  return stream_->WaitForEnd(timeout);
}
const PeerCallInfo& FakePeerTransport::Peer::info() const { return stream_->info(); }

}  // namespace edge::testing
