// The WebRTC relay's ordering and validation on the in-process fakes, with
// two forwarding wrappers for fault injection: a bus whose answer
// publications complete when the test says, on a thread of the test's
// choosing (as Kafka's producer thread does, apart from its consumer
// thread), and a clock that can stop that thread at its next reading.
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "edge/edge.h"
#include "edge/testing/fake_clock.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_peer_transport.h"
#include "edge/testing/fake_tracker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kSignaling[] = "webrtc-signaling";
constexpr char kCommands[] = "edge-commands-edge-1";
constexpr char kDeadLetters[] = "edge-commands-edge-1.deadletter";

// Forwards to a FakeMessageBus, but keeps the completion of every published
// sdp_answer event for the test to run.
class AnswerHoldingBus final : public MessageBus {
 public:
  explicit AnswerHoldingBus(testing::FakeMessageBus* bus) : bus_(bus) {}

  void Publish(OutgoingRecord record, PublishDone done) override {
    if (record.topic != kSignaling || !absl::StrContains(record.value, "\"kind\":\"sdp_answer\"")) {
      bus_->Publish(std::move(record), std::move(done));
      return;
    }
    bus_->Publish(std::move(record), [this, done = std::move(done)](absl::Status status) mutable {
      absl::MutexLock lock(&mu_);
      held_.push_back([done = std::move(done), status]() mutable { done(status); });
    });
  }
  bool Saturated() const override { return bus_->Saturated(); }
  void SetDrainListener(absl::AnyInvocable<void()> listener) override {
    bus_->SetDrainListener(std::move(listener));
  }
  absl::Status Subscribe(const std::string& topic, RecordHandler handler) override {
    return bus_->Subscribe(topic, std::move(handler));
  }
  absl::Status Start() override { return bus_->Start(); }
  void StopConsuming() override { bus_->StopConsuming(); }
  void Shutdown(absl::Time deadline) override { bus_->Shutdown(deadline); }

  // Waits for a held completion and takes it.
  absl::AnyInvocable<void()> TakeAnswerCompletion() {
    absl::MutexLock lock(&mu_);
    auto any = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !held_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&any), absl::Seconds(10))) return nullptr;
    absl::AnyInvocable<void()> first = std::move(held_.front());
    held_.erase(held_.begin());
    return first;
  }

 private:
  testing::FakeMessageBus* const bus_;
  absl::Mutex mu_;
  std::vector<absl::AnyInvocable<void()>> held_ ABSL_GUARDED_BY(mu_);
};

// Forwards to a FakeClock; Now() on the gated thread stops until Open().
class GatedClock final : public Clock {
 public:
  explicit GatedClock(testing::FakeClock* clock) : clock_(clock) {}

  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    if (gated_ == std::this_thread::get_id()) {
      waiting_ = true;
      mu_.Await(absl::Condition(&open_));
    }
    return clock_->Now();
  }
  TimerId RunAt(absl::Time deadline, absl::AnyInvocable<void()> fn) override {
    return clock_->RunAt(deadline, std::move(fn));
  }
  bool Cancel(TimerId id) override { return clock_->Cancel(id); }

  // Stops the calling thread at its next Now().
  void GateThisThread() {
    absl::MutexLock lock(&mu_);
    gated_ = std::this_thread::get_id();
  }
  bool WaitUntilStopped() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&waiting_), absl::Seconds(10));
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }

 private:
  testing::FakeClock* const clock_;
  absl::Mutex mu_;
  std::thread::id gated_ ABSL_GUARDED_BY(mu_);
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

PeerCallInfo Caller(const std::string& peer_id) {
  PeerCallInfo info;
  info.has_peer_id = true;
  info.peer_id = peer_id;
  return info;
}

class WebRtcRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EdgeOptions options;
    options.edge_id = "edge-1";
    options.topics.commands = kCommands;
    options.topics.deadletter = kDeadLetters;
    options.catalog_pull_on_connect = false;
    auto edge = Edge::Create(options, EdgeParts{&transport_, &bus_, &tracker_, &clock_, nullptr});
    ASSERT_TRUE(edge.ok()) << edge.status();
    edge_ = std::move(*edge);
    ASSERT_TRUE(edge_->Start().ok());
    peer_ = transport_.Connect("peer-1");
    ASSERT_TRUE(peer_->WaitForAdmission());
    ASSERT_TRUE(peer_->admission().has_value() && peer_->admission()->ok());
  }

  void TearDown() override { edge_->Shutdown(fake_clock_.Now() + absl::Seconds(5)); }

  void Produce(const std::string& value) {
    ASSERT_TRUE(fake_bus_.Produce(kCommands, "peer-1", value).ok());
  }

  void ProduceCandidate(const std::string& id) {
    Produce(R"({"type":"webrtc","peer_id":"peer-1","request_id":")" + id +
            R"(","webrtc":{"ice_candidate":{"session_id":"s1","candidate":")" + id + R"("}}})");
  }

  // A command that reaches the peer after everything produced before it.
  void WaitForMarker(const std::string& id) {
    Produce(R"({"type":"catalog_announcement","peer_id":"peer-1","request_id":")" + id + "\"}");
    ASSERT_TRUE(testing::WaitFor([&] {
      for (const EdgeMessage& m : peer_->Received()) {
        if (m.request_id() == id) return true;
      }
      return false;
    }));
  }

  std::vector<std::string> WebRtcReceived() {
    std::vector<std::string> ids;
    for (const EdgeMessage& m : peer_->Received()) {
      if (m.has_webrtc()) ids.push_back(m.request_id());
    }
    return ids;
  }

  // Opens session s1: request, then the backend's reply.
  void OpenSession() {
    EdgeWebRTCMessage request;
    request.set_request_id("req-1");
    request.mutable_stream_session_request()->set_session_id("s1");
    std::thread backend([&] {
      ASSERT_TRUE(fake_bus_.WaitForPublished(kSignaling, 1, absl::Seconds(10)));
      Produce(R"({"type":"webrtc_reply","peer_id":"peer-1","request_id":"req-1",)"
              R"("webrtc":{"sdp_offer":{"session_id":"s1","sdp":"v=0"}}})");
    });
    auto reply = transport_.CallWebRtc(Caller("peer-1"), request);
    backend.join();
    ASSERT_TRUE(reply.ok()) << reply.status();
  }

  testing::FakeClock fake_clock_;
  GatedClock clock_{&fake_clock_};
  testing::FakeMessageBus fake_bus_;
  AnswerHoldingBus bus_{&fake_bus_};
  testing::FakePeerTransport transport_;
  testing::FakeTrackerCluster cluster_;
  testing::FakeTracker tracker_{&cluster_, "edge-1"};
  std::unique_ptr<Edge> edge_;
  std::shared_ptr<testing::FakePeerTransport::Peer> peer_;
};

// Kafka confirms the answer on its producer thread while its consumer
// thread routes commands: a backend candidate that arrives while the held
// ones are being released must still come after them.
TEST_F(WebRtcRelayTest, CandidateArrivingWhileHeldOnesAreReleasedComesAfterThem) {
  OpenSession();
  ProduceCandidate("c1");
  ProduceCandidate("c2");
  WaitForMarker("m1");
  EXPECT_THAT(WebRtcReceived(), IsEmpty());

  EdgeWebRTCMessage answer;
  answer.set_request_id("ans-1");
  answer.mutable_sdp_answer()->set_session_id("s1");
  std::optional<absl::StatusOr<PeerWebRTCMessage>> ack;
  std::thread caller([&] { ack = transport_.CallWebRtc(Caller("peer-1"), answer); });
  absl::AnyInvocable<void()> confirm = bus_.TakeAnswerCompletion();
  ASSERT_TRUE(confirm != nullptr);

  // The "producer thread" confirms the answer and stops at its next clock
  // reading: when it starts handing the held candidates to the peer.
  std::thread producer([&] {
    clock_.GateThisThread();
    confirm();
  });
  ASSERT_TRUE(clock_.WaitUntilStopped());
  ProduceCandidate("c3");
  WaitForMarker("m2");
  clock_.Open();
  producer.join();
  caller.join();
  ASSERT_TRUE(ack.has_value() && ack->ok()) << (ack ? ack->status().ToString() : "no reply");

  ASSERT_TRUE(testing::WaitFor([&] { return WebRtcReceived().size() == 3; }));
  EXPECT_THAT(WebRtcReceived(), ElementsAre("c1", "c2", "c3"));
}

TEST_F(WebRtcRelayTest, WebRtcCommandWithoutSessionIdIsDeadLettered) {
  Produce(R"({"type":"webrtc","peer_id":"peer-1","request_id":"x",)"
          R"("webrtc":{"ice_candidate":{"candidate":"c"}}})");
  ASSERT_TRUE(fake_bus_.WaitForPublished(kDeadLetters, 1, absl::Seconds(10)));
  const std::string letter = fake_bus_.Published(kDeadLetters)[0].value;
  EXPECT_THAT(letter, HasSubstr("\"reason\":\"invalid_command\""));
  EXPECT_THAT(letter, HasSubstr("ice_candidate has no session_id"));
  WaitForMarker("m1");
  EXPECT_THAT(WebRtcReceived(), IsEmpty());
}

}  // namespace
}  // namespace edge
