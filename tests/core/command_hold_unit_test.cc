// CommandHold alone, against a small CommandHoldHost on a FakeClock and a
// FakeTracker cluster: how a held command ends (handed over, forwarded,
// dead-lettered, dropped at shutdown), through the hold's public methods.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "core/command_hold.h"
#include "core/peer_session.h"
#include "core/test_session_host.h"
#include "edge/testing/fake_clock.h"
#include "edge/testing/fake_tracker.h"
#include "edge_fixture.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

class TestHoldHost final : public CommandHoldHost {
 public:
  struct Outcome {
    std::string kind;  // "delivered", "forwarded", "deadlettered"
    std::string peer_id;
    std::string request_id;  // of the command (delivered only)
    std::string to;          // the holder (forwarded only)
    DeadLetterReason reason = DeadLetterReason::kInvalidJson;
    std::string detail;
    int64_t offset = -1;
  };

  TestHoldHost(EdgeOptions options, testing::FakeTrackerCluster* cluster)
      : options_(std::move(options)), tracker_(cluster, options_.edge_id) {
    EXPECT_TRUE(tracker_.Start().ok());
  }
  ~TestHoldHost() override { tracker_.Shutdown(clock_.Now()); }

  const EdgeOptions& options() const override { return options_; }
  Clock& clock() override { return clock_; }
  Logger& log() override { return Logger::Null(); }
  Metrics& metrics() override { return NullMetrics(); }
  Tracker& tracker() override { return tracker_; }
  std::shared_ptr<PeerSession> Find(const std::string& peer_id) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(peer_id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  void Deliver(const std::shared_ptr<PeerSession>& session, Command command, IncomingRecord record,
               RecordDone done) override {
    Record({"delivered", session->peer_id(), command.request_id, "", {}, "", record.offset});
    if (done) done();
  }
  void ForwardTo(const std::string& holder, const std::string& peer_id, IncomingRecord record,
                 RecordDone done, std::optional<int64_t> /*epoch*/) override {
    Record({"forwarded", peer_id, "", holder, {}, "", record.offset});
    if (done) done();
  }
  void DeadLetter(DeadLetterReason reason, absl::string_view detail, absl::string_view peer_id,
                  IncomingRecord record, RecordDone done) override {
    Record(
        {"deadlettered", std::string(peer_id), "", "", reason, std::string(detail), record.offset});
    if (done) done();
  }

  testing::FakeClock& fake_clock() { return clock_; }
  void AddSession(std::shared_ptr<PeerSession> session) {
    absl::MutexLock lock(&mu_);
    sessions_[session->peer_id()] = std::move(session);
  }
  std::vector<Outcome> outcomes() {
    absl::MutexLock lock(&mu_);
    return outcomes_;
  }

 private:
  void Record(Outcome outcome) {
    absl::MutexLock lock(&mu_);
    outcomes_.push_back(std::move(outcome));
  }

  const EdgeOptions options_;
  testing::FakeClock clock_;
  testing::FakeTracker tracker_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<PeerSession>> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
};

class CommandHoldUnitTest : public ::testing::Test {
 protected:
  static EdgeOptions Options() {
    EdgeOptions o = TestEdgeOptions();
    o.command_hold = absl::Seconds(2);
    o.peer_send_queue_max = 3;
    return o;
  }

  void TearDown() override { hold_.StopHolding(); }

  // Holds a command for `peer_id`; `*done` turns true with its outcome.
  void HoldCommand(const std::string& peer_id, const std::string& request_id, int64_t offset,
                   bool* done = nullptr, std::optional<absl::Time> expires_at = std::nullopt) {
    Command command;
    command.type = CommandType::kFileHash;
    command.peer_id = peer_id;
    command.request_id = request_id;
    command.expires_at = expires_at;
    IncomingRecord record;
    record.offset = offset;
    hold_.Hold(std::move(command), std::move(record), [done] {
      if (done != nullptr) *done = true;
    });
  }

  // An admitted session of `peer_id`, as the edge would have it.
  std::shared_ptr<PeerSession> ActiveSession(const std::string& peer_id) {
    auto session =
        std::make_shared<PeerSession>(&session_host_, std::make_shared<TestPeerStream>(peer_id),
                                      peer_id, session_host_.clock().Now());
    session->Activate(PeerClaim{});
    return session;
  }

  testing::FakeTrackerCluster cluster_;
  TestHoldHost host_{Options(), &cluster_};
  TestSessionHost session_host_{Options()};
  CommandHold hold_{&host_};
};

TEST_F(CommandHoldUnitTest, HeldCommandIsDeadLetteredWhenTheHoldEnds) {
  bool done = false;
  HoldCommand("p1", "r1", 10, &done);
  EXPECT_TRUE(hold_.HasHeld("p1"));
  EXPECT_EQ(hold_.held(), 1);
  EXPECT_TRUE(host_.outcomes().empty());

  host_.fake_clock().Advance(absl::Seconds(1));
  EXPECT_TRUE(host_.outcomes().empty()) << "ended before COMMAND_HOLD_MS";
  host_.fake_clock().Advance(absl::Seconds(2));
  auto outcomes = host_.outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, "deadlettered");
  EXPECT_EQ(outcomes[0].reason, DeadLetterReason::kPeerNotConnected);
  EXPECT_TRUE(absl::StrContains(outcomes[0].detail, "COMMAND_HOLD_MS")) << outcomes[0].detail;
  EXPECT_EQ(outcomes[0].offset, 10);
  EXPECT_TRUE(done);
  EXPECT_FALSE(hold_.HasHeld("p1"));
  EXPECT_EQ(hold_.held(), 0);
}

TEST_F(CommandHoldUnitTest, AdmittedPeerGetsWhatWaitedInOrder) {
  HoldCommand("p1", "r1", 1);
  HoldCommand("p1", "r2", 2);
  HoldCommand("p2", "other", 3);
  host_.AddSession(ActiveSession("p1"));
  hold_.ReleaseHeld("p1");
  auto outcomes = host_.outcomes();
  ASSERT_EQ(outcomes.size(), 2u);
  EXPECT_EQ(outcomes[0].kind, "delivered");
  EXPECT_EQ(outcomes[0].request_id, "r1");
  EXPECT_EQ(outcomes[1].request_id, "r2");
  EXPECT_FALSE(hold_.HasHeld("p1"));
  EXPECT_TRUE(hold_.HasHeld("p2"));
}

TEST_F(CommandHoldUnitTest, PeerHeldByAnotherEdgeIsForwardedThere) {
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  absl::Status claimed = absl::UnknownError("unanswered");
  other.Claim("p1", host_.clock().Now() + absl::Seconds(1),
              [&claimed](absl::StatusOr<PeerClaim> claim) { claimed = claim.status(); });
  ASSERT_TRUE(claimed.ok()) << claimed;

  bool done = false;
  HoldCommand("p1", "r1", 7, &done);
  auto outcomes = host_.outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, "forwarded");
  EXPECT_EQ(outcomes[0].to, "edge-2");
  EXPECT_EQ(outcomes[0].offset, 7);
  EXPECT_TRUE(done);
  EXPECT_FALSE(hold_.HasHeld("p1"));
  other.Shutdown(host_.clock().Now());
}

TEST_F(CommandHoldUnitTest, FullPeerHoldDeadLettersTheNextCommand) {
  for (int i = 0; i < 3; ++i) HoldCommand("p1", "r", i);
  HoldCommand("p1", "r", 3);
  auto outcomes = host_.outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].kind, "deadlettered");
  EXPECT_EQ(outcomes[0].offset, 3);
  EXPECT_TRUE(absl::StrContains(outcomes[0].detail, "PEER_SEND_QUEUE_MAX")) << outcomes[0].detail;
  EXPECT_EQ(hold_.held(), 3);
}

TEST_F(CommandHoldUnitTest, ExpiredWhileHeldIsDeadLetteredExpired) {
  HoldCommand("p1", "r1", 4, nullptr, host_.clock().Now() + absl::Milliseconds(500));
  host_.fake_clock().Advance(absl::Seconds(1));
  auto outcomes = host_.outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].reason, DeadLetterReason::kExpired);
  EXPECT_EQ(outcomes[0].offset, 4);
}

TEST_F(CommandHoldUnitTest, StopLeavesHeldCommandsWithoutOutcome) {
  bool done = false;
  HoldCommand("p1", "r1", 1, &done);
  hold_.StopHolding();
  EXPECT_EQ(hold_.held(), 0);
  EXPECT_FALSE(hold_.HasHeld("p1"));
  EXPECT_EQ(host_.fake_clock().pending_timers(), 0u);
  host_.fake_clock().Advance(absl::Seconds(10));
  HoldCommand("p1", "r2", 2, &done);
  EXPECT_TRUE(host_.outcomes().empty());
  EXPECT_FALSE(done) << "a command dropped at shutdown is read again after a restart";
}

}  // namespace
}  // namespace edge
