// A SessionHost for driving one PeerSession or the WebRtcRelay alone: it
// records what they publish, dead-letter and send, holds publishes until the
// test completes them, and runs on a FakeClock. Plus a PeerStream whose
// writes complete when the test says so.
#ifndef EDGE_TESTS_CORE_TEST_SESSION_HOST_H_
#define EDGE_TESTS_CORE_TEST_SESSION_HOST_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "core/session_host.h"
#include "core/webrtc_relay.h"
#include "edge/testing/fake_clock.h"
#include "gtest/gtest.h"

namespace edge {

class TestSessionHost final : public SessionHost {
 public:
  struct Published {
    std::string topic;
    std::string key;
    std::string value;
  };
  struct DeadLettered {
    DeadLetterReason reason;
    std::string detail;
    std::string peer_id;
    IncomingRecord record;
  };
  struct Sent {
    std::string peer_id;
    EdgeMessage message;
  };

  explicit TestSessionHost(EdgeOptions options) : options_(std::move(options)) {}

  // SessionHost
  const EdgeOptions& options() const override { return options_; }
  Clock& clock() override { return clock_; }
  Logger& log() override { return Logger::Null(); }
  Metrics& metrics() override { return NullMetrics(); }
  void Publish(const std::string& topic, const std::string& key, std::string value,
               PublishDone done) override {
    absl::MutexLock lock(&mu_);
    published_.push_back({topic, key, std::move(value)});
    if (done) unstored_.push_back(std::move(done));
  }
  void DeadLetter(DeadLetterReason reason, absl::string_view detail, absl::string_view peer_id,
                  IncomingRecord record, RecordDone done) override {
    {
      absl::MutexLock lock(&mu_);
      dead_letters_.push_back(
          {reason, std::string(detail), std::string(peer_id), std::move(record)});
    }
    if (done) done();  // The letter is stored.
  }
  bool KeepReading(const std::shared_ptr<PeerStream>&) override {
    absl::MutexLock lock(&mu_);
    return keep_reading_;
  }
  void OnSessionEnded(const std::shared_ptr<PeerSession>&) override {
    absl::MutexLock lock(&mu_);
    ++sessions_ended_;
  }
  WebRtcRelay& webrtc() override { return relay_; }
  bool PeerActive(const std::string& peer_id) override {
    absl::MutexLock lock(&mu_);
    return active_peers_.contains(peer_id);
  }
  void SendToPeer(const std::string& peer_id, EdgeMessage message, IncomingRecord,
                  RecordDone done) override {
    {
      absl::MutexLock lock(&mu_);
      sent_.push_back({peer_id, std::move(message)});
    }
    if (done) done();
  }
  void CountDelivered() override {
    absl::MutexLock lock(&mu_);
    ++delivered_;
  }
  void CountPeerMessage(PeerMessageKind kind) override {
    absl::MutexLock lock(&mu_);
    ++peer_messages_[static_cast<int>(kind)];
  }

  // Controls.
  testing::FakeClock& fake_clock() { return clock_; }
  void SetPeerActive(const std::string& peer_id, bool active) {
    absl::MutexLock lock(&mu_);
    if (active) {
      active_peers_.insert(peer_id);
    } else {
      active_peers_.erase(peer_id);
    }
  }
  void SetKeepReading(bool keep) {
    absl::MutexLock lock(&mu_);
    keep_reading_ = keep;
  }
  // Completes the oldest publish still waiting for the bus; false if none.
  bool StoreNext(absl::Status status = absl::OkStatus()) {
    PublishDone done;
    {
      absl::MutexLock lock(&mu_);
      if (unstored_.empty()) return false;
      done = std::move(unstored_.front());
      unstored_.pop_front();
    }
    done(std::move(status));
    return true;
  }

  // Observations.
  std::vector<Published> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  std::vector<Published> PublishedOn(const std::string& topic) {
    std::vector<Published> out;
    for (Published& p : published()) {
      if (p.topic == topic) out.push_back(std::move(p));
    }
    return out;
  }
  size_t dead_letter_count() {
    absl::MutexLock lock(&mu_);
    return dead_letters_.size();
  }
  DeadLettered dead_letter(size_t i) {
    absl::MutexLock lock(&mu_);
    return dead_letters_.at(i);
  }
  std::vector<Sent> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  int sessions_ended() {
    absl::MutexLock lock(&mu_);
    return sessions_ended_;
  }
  int delivered() {
    absl::MutexLock lock(&mu_);
    return delivered_;
  }
  int peer_messages(PeerMessageKind kind) {
    absl::MutexLock lock(&mu_);
    return peer_messages_[static_cast<int>(kind)];
  }

 private:
  const EdgeOptions options_;
  testing::FakeClock clock_;
  WebRtcRelay relay_{this};
  absl::Mutex mu_;
  std::vector<Published> published_ ABSL_GUARDED_BY(mu_);
  std::deque<PublishDone> unstored_ ABSL_GUARDED_BY(mu_);
  std::vector<DeadLettered> dead_letters_ ABSL_GUARDED_BY(mu_);
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> active_peers_ ABSL_GUARDED_BY(mu_);
  bool keep_reading_ ABSL_GUARDED_BY(mu_) = true;
  int sessions_ended_ ABSL_GUARDED_BY(mu_) = 0;
  int delivered_ ABSL_GUARDED_BY(mu_) = 0;
  int peer_messages_[3] ABSL_GUARDED_BY(mu_) = {0, 0, 0};
};

// A peer stream whose writes wait until the test completes them.
class TestPeerStream final : public PeerStream {
 public:
  explicit TestPeerStream(std::string peer_id) { info_.peer_id = std::move(peer_id); }

  const PeerCallInfo& info() const override { return info_; }
  void Write(EdgeMessage message, absl::AnyInvocable<void(bool ok)> done) override {
    absl::MutexLock lock(&mu_);
    written_.push_back(std::move(message));
    EXPECT_FALSE(write_done_) << "a second write started before the first completed";
    write_done_ = std::move(done);
  }
  void Finish(absl::Status status) override {
    absl::MutexLock lock(&mu_);
    if (!finished_.has_value()) finished_ = std::move(status);
  }
  void ResumeReading() override {
    absl::MutexLock lock(&mu_);
    ++resumes_;
  }
  bool ended() const override {
    absl::MutexLock lock(&mu_);
    return finished_.has_value();
  }

  // Completes the write under way; false if none is.
  bool CompleteWrite(bool ok = true) {
    absl::AnyInvocable<void(bool)> done;
    {
      absl::MutexLock lock(&mu_);
      if (!write_done_) return false;
      done = std::move(write_done_);
      write_done_ = nullptr;
    }
    done(ok);
    return true;
  }
  std::vector<EdgeMessage> written() {
    absl::MutexLock lock(&mu_);
    return written_;
  }
  std::optional<absl::Status> finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  PeerCallInfo info_;
  mutable absl::Mutex mu_;
  std::vector<EdgeMessage> written_ ABSL_GUARDED_BY(mu_);
  absl::AnyInvocable<void(bool)> write_done_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> finished_ ABSL_GUARDED_BY(mu_);
  int resumes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edge

#endif  // EDGE_TESTS_CORE_TEST_SESSION_HOST_H_
