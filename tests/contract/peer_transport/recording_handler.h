// RecordingHandler: a PeerStreamHandler for transport tests. It admits or
// rejects streams as told (or holds the decision for the test to make),
// records what each observer sees, and checks the observer rules of
// peer_transport.h as it goes (one OnMessage at a time, nothing after OnEnd,
// exactly one OnEnd).
#ifndef EDGE_TESTS_CONTRACT_PEER_TRANSPORT_RECORDING_HANDLER_H_
#define EDGE_TESTS_CONTRACT_PEER_TRANSPORT_RECORDING_HANDLER_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/peer_transport.h"

namespace edge::testing {

class RecordingObserver final : public PeerStreamObserver {
 public:
  bool OnMessage(PeerMessage message) override {
    absl::MutexLock lock(&mu_);
    if (in_message_ || end_count_ > 0) ++violations_;
    in_message_ = true;
    messages_.push_back(std::move(message));
    const bool keep_reading = !pause_;
    in_message_ = false;
    return keep_reading;
  }

  void OnEnd(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    if (in_message_) ++violations_;
    ++end_count_;
    end_status_ = std::move(status);
  }

  // While set, every OnMessage returns false (pauses reading).
  void set_pause(bool pause) {
    absl::MutexLock lock(&mu_);
    pause_ = pause;
  }

  std::vector<PeerMessage> messages() {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  size_t message_count() {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }
  int end_count() {
    absl::MutexLock lock(&mu_);
    return end_count_;
  }
  std::optional<absl::Status> end_status() {
    absl::MutexLock lock(&mu_);
    return end_status_;
  }
  int violations() {
    absl::MutexLock lock(&mu_);
    return violations_;
  }

  bool WaitForMessages(size_t count, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return messages_.size() >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  bool WaitForEnd(absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return end_count_ > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  }

 private:
  absl::Mutex mu_;
  bool pause_ ABSL_GUARDED_BY(mu_) = false;
  bool in_message_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<PeerMessage> messages_ ABSL_GUARDED_BY(mu_);
  int end_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Status> end_status_ ABSL_GUARDED_BY(mu_);
  int violations_ ABSL_GUARDED_BY(mu_) = 0;
};

class RecordingHandler final : public PeerStreamHandler {
 public:
  // What becomes of new streams.
  enum class Policy { kAdmit, kReject, kHold };

  struct Stream {
    std::shared_ptr<PeerStream> stream;
    PeerCallInfo info;
    std::shared_ptr<RecordingObserver> observer;  // null unless admitted
    AdmissionDecision decide;                     // set while held
  };

  struct WebRtcCall {
    PeerCallInfo caller;
    EdgeWebRTCMessage request;
    WebRtcReply reply;  // set while held
  };

  void Admit() { SetPolicy(Policy::kAdmit, absl::OkStatus()); }
  void Reject(absl::Status status) { SetPolicy(Policy::kReject, std::move(status)); }
  void Hold() { SetPolicy(Policy::kHold, absl::OkStatus()); }
  // New admitted observers start paused (see RecordingObserver::set_pause).
  void set_pause_new_streams(bool pause) {
    absl::MutexLock lock(&mu_);
    pause_new_ = pause;
  }
  // WebRTC calls are answered at once (see EchoReply) unless held.
  void set_hold_webrtc(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_webrtc_ = hold;
  }

  void OnStreamStart(std::shared_ptr<PeerStream> stream, AdmissionDecision decide) override {
    absl::StatusOr<std::shared_ptr<PeerStreamObserver>> decision;
    {
      absl::MutexLock lock(&mu_);
      Stream entry{stream, stream->info(), nullptr, nullptr};
      switch (policy_) {
        case Policy::kAdmit:
          entry.observer = std::make_shared<RecordingObserver>();
          entry.observer->set_pause(pause_new_);
          decision = std::shared_ptr<PeerStreamObserver>(entry.observer);
          break;
        case Policy::kReject:
          decision = reject_status_;
          break;
        case Policy::kHold:
          entry.decide = std::move(decide);
          break;
      }
      const bool held = policy_ == Policy::kHold;
      streams_.push_back(std::move(entry));
      if (held) return;
    }
    decide(std::move(decision));
  }

  void OnWebRtcCall(const PeerCallInfo& caller, EdgeWebRTCMessage request,
                    WebRtcReply reply) override {
    {
      absl::MutexLock lock(&mu_);
      if (hold_webrtc_) {
        webrtc_calls_.push_back({caller, std::move(request), std::move(reply)});
        return;
      }
      webrtc_calls_.push_back({caller, request, nullptr});
    }
    reply(EchoReply(request));
  }

  // The answer to a WebRTC call that is not held: the request's id and a
  // stream_session_response naming its session and catalog id.
  static PeerWebRTCMessage EchoReply(const EdgeWebRTCMessage& request) {
    PeerWebRTCMessage reply;
    reply.set_request_id(request.request_id());
    auto* response = reply.mutable_stream_session_response();
    response->set_session_id(request.stream_session_request().session_id());
    response->set_catalog_id(request.stream_session_request().catalog_id());
    response->set_success(true);
    return reply;
  }

  // Admits the held stream `index` with a new observer, which it returns.
  std::shared_ptr<RecordingObserver> AdmitHeld(size_t index) {
    auto observer = std::make_shared<RecordingObserver>();
    AdmissionDecision decide;
    {
      absl::MutexLock lock(&mu_);
      decide = std::move(streams_.at(index).decide);
      streams_.at(index).decide = nullptr;
      streams_.at(index).observer = observer;
    }
    decide(std::shared_ptr<PeerStreamObserver>(observer));
    return observer;
  }
  void RejectHeld(size_t index, absl::Status status) {
    AdmissionDecision decide;
    {
      absl::MutexLock lock(&mu_);
      decide = std::move(streams_.at(index).decide);
      streams_.at(index).decide = nullptr;
    }
    decide(std::move(status));
  }
  // Answers the held WebRTC call `index`.
  void ReplyHeld(size_t index, absl::StatusOr<PeerWebRTCMessage> reply) {
    WebRtcReply fn;
    {
      absl::MutexLock lock(&mu_);
      fn = std::move(webrtc_calls_.at(index).reply);
      webrtc_calls_.at(index).reply = nullptr;
    }
    fn(std::move(reply));
  }

  bool WaitForStreams(size_t count, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return streams_.size() >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  bool WaitForWebRtcCalls(size_t count, absl::Duration timeout = absl::Seconds(10)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return webrtc_calls_.size() >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  size_t stream_count() {
    absl::MutexLock lock(&mu_);
    return streams_.size();
  }
  std::shared_ptr<PeerStream> stream(size_t index) {
    absl::MutexLock lock(&mu_);
    return streams_.at(index).stream;
  }
  PeerCallInfo info(size_t index) {
    absl::MutexLock lock(&mu_);
    return streams_.at(index).info;
  }
  std::shared_ptr<RecordingObserver> observer(size_t index) {
    absl::MutexLock lock(&mu_);
    return streams_.at(index).observer;
  }
  std::vector<std::shared_ptr<RecordingObserver>> observers() {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<RecordingObserver>> all;
    for (auto& entry : streams_) {
      if (entry.observer != nullptr) all.push_back(entry.observer);
    }
    return all;
  }
  PeerCallInfo webrtc_caller(size_t index) {
    absl::MutexLock lock(&mu_);
    return webrtc_calls_.at(index).caller;
  }
  EdgeWebRTCMessage webrtc_request(size_t index) {
    absl::MutexLock lock(&mu_);
    return webrtc_calls_.at(index).request;
  }

 private:
  void SetPolicy(Policy policy, absl::Status status) {
    absl::MutexLock lock(&mu_);
    policy_ = policy;
    reject_status_ = std::move(status);
  }

  absl::Mutex mu_;
  Policy policy_ ABSL_GUARDED_BY(mu_) = Policy::kAdmit;
  absl::Status reject_status_ ABSL_GUARDED_BY(mu_);
  bool pause_new_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_webrtc_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<WebRtcCall> webrtc_calls_ ABSL_GUARDED_BY(mu_);
};

// Writes through `stream` and waits for the callback: its `ok`, or nullopt
// when none came within `timeout`.
inline std::optional<bool> WriteAndWait(PeerStream& stream, EdgeMessage message,
                                        absl::Duration timeout = absl::Seconds(10)) {
  struct Result {
    absl::Mutex mu;
    std::optional<bool> ok ABSL_GUARDED_BY(mu);
  };
  auto result = std::make_shared<Result>();
  stream.Write(std::move(message), [result](bool ok) {
    absl::MutexLock lock(&result->mu);
    result->ok = ok;
  });
  absl::MutexLock lock(&result->mu);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(result->mu) { return result->ok.has_value(); };
  result->mu.AwaitWithTimeout(absl::Condition(&done), timeout);
  return result->ok;
}

// Writes `messages` one after the other, each after the previous callback
// reported true; returns how many did.
inline size_t WriteAll(PeerStream& stream, const std::vector<EdgeMessage>& messages,
                       absl::Duration timeout = absl::Seconds(10)) {
  size_t written = 0;
  for (const EdgeMessage& message : messages) {
    std::optional<bool> ok = WriteAndWait(stream, message, timeout);
    if (!ok.value_or(false)) break;
    ++written;
  }
  return written;
}

}  // namespace edge::testing

#endif  // EDGE_TESTS_CONTRACT_PEER_TRANSPORT_RECORDING_HANDLER_H_
