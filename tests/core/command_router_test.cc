// CommandRouter alone, against a small CommandRouterHost on a FakeClock, a
// FakeMessageBus stepped by hand and a FakeTracker cluster: each command
// reaches exactly one outcome (its peer's stream, the hold, one hop, or a
// dead letter).
#include "core/command_router.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "core/command_hold.h"
#include "core/peer_session.h"
#include "core/test_session_host.h"
#include "edge/testing/fake_clock.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_tracker.h"
#include "edge_fixture.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

class TestRouterHost final : public CommandRouterHost {
 public:
  TestRouterHost(EdgeOptions options, testing::FakeTrackerCluster* cluster)
      : options_(std::move(options)),
        bus_(ManualBus()),
        tracker_(cluster, options_.edge_id),
        sessions_host_(options_) {
    EXPECT_TRUE(tracker_.Start().ok());
    EXPECT_TRUE(bus_.Start().ok());
  }
  ~TestRouterHost() override { tracker_.Shutdown(clock_.Now()); }

  static testing::FakeMessageBusOptions ManualBus() {
    testing::FakeMessageBusOptions o;
    o.mode = testing::DeliveryMode::kManual;
    return o;
  }

  const EdgeOptions& options() const override { return options_; }
  Clock& clock() override { return clock_; }
  Logger& log() override { return Logger::Null(); }
  Metrics& metrics() override { return NullMetrics(); }
  MessageBus& bus() override { return bus_; }
  Tracker& tracker() override { return tracker_; }
  std::shared_ptr<PeerSession> Find(const std::string& peer_id) override {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(peer_id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  bool HasHeld(const std::string& peer_id) override {
    absl::MutexLock lock(&mu_);
    for (const Command& c : held_) {
      if (c.peer_id == peer_id) return true;
    }
    return false;
  }
  void Hold(Command command, IncomingRecord, RecordDone) override {
    absl::MutexLock lock(&mu_);
    held_.push_back(std::move(command));
  }
  WebRtcRelay& webrtc() override { return sessions_host_.webrtc(); }
  void PublishForCommand(absl::AnyInvocable<void()> publish) override { publish(); }
  void CountDelivered() override { ++delivered_; }
  void CountDeadLettered() override { ++deadlettered_; }
  void CountForwarded() override { ++forwarded_; }

  testing::FakeMessageBus& fake_bus() { return bus_; }
  // An admitted session of `peer_id`, writing to `stream`.
  std::shared_ptr<PeerSession> AddSession(std::shared_ptr<TestPeerStream> stream) {
    const std::string peer_id = stream->info().peer_id;
    auto session =
        std::make_shared<PeerSession>(&sessions_host_, std::move(stream), peer_id, clock_.Now());
    session->Activate(PeerClaim{});
    absl::MutexLock lock(&mu_);
    sessions_[peer_id] = session;
    return session;
  }
  std::vector<Command> held() {
    absl::MutexLock lock(&mu_);
    return held_;
  }

  std::atomic<int> delivered_{0}, deadlettered_{0}, forwarded_{0};

 private:
  const EdgeOptions options_;
  testing::FakeClock clock_;
  testing::FakeMessageBus bus_;
  testing::FakeTracker tracker_;
  TestSessionHost sessions_host_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<PeerSession>> sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<Command> held_ ABSL_GUARDED_BY(mu_);
};

class CommandRouterTest : public ::testing::Test {
 protected:
  // Publishes still waiting complete into the router: while it lives.
  void TearDown() override { host_.fake_bus().Shutdown(absl::Now() + absl::Seconds(10)); }

  // Routes `json` as the record at `offset`; the flag returned turns true
  // with its outcome (shared: an outcome may come after the test's body).
  std::shared_ptr<std::atomic<bool>> Route(const std::string& json, int64_t offset) {
    auto done = std::make_shared<std::atomic<bool>>(false);
    IncomingRecord record;
    record.topic = host_.options().topics.commands;
    record.offset = offset;
    record.value = json;
    router_.OnCommand(std::move(record), [done] { *done = true; });
    return done;
  }

  std::vector<OutgoingRecord> DeadLetters() {
    return host_.fake_bus().Published(host_.options().topics.deadletter);
  }

  testing::FakeTrackerCluster cluster_;
  TestRouterHost host_{TestEdgeOptions(), &cluster_};
  CommandRouter router_{&host_};
};

TEST_F(CommandRouterTest, InvalidCommandIsDeadLetteredOnceStored) {
  auto done = Route("{not json", 3);
  auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(Field(letters[0].value, "reason"), "invalid_json");
  EXPECT_EQ(host_.deadlettered_, 1);
  EXPECT_FALSE(*done) << "the outcome is the letter's storage";
  host_.fake_bus().DeliverPending();
  EXPECT_TRUE(*done);
}

TEST_F(CommandRouterTest, CommandForAnAdmittedPeerIsWrittenToItsStream) {
  auto stream = std::make_shared<TestPeerStream>("peer-1");
  host_.AddSession(stream);
  auto done =
      Route(R"({"type":"file_hash","peer_id":"peer-1","request_id":"r1","catalog_id":"c1"})", 1);
  auto written = stream->written();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].request_id(), "r1");
  EXPECT_EQ(written[0].edge_id(), "edge-1");
  EXPECT_EQ(written[0].file_hash_request().catalog_id(), "c1");
  EXPECT_FALSE(*done);
  ASSERT_TRUE(stream->CompleteWrite(true));
  EXPECT_TRUE(*done);
  EXPECT_TRUE(DeadLetters().empty());
}

TEST_F(CommandRouterTest, CommandForAnAbsentPeerIsHeld) {
  auto done = Route(R"({"type":"file_delete","peer_id":"peer-2","catalog_ids":["x"]})", 1);
  auto held = host_.held();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].peer_id, "peer-2");
  EXPECT_TRUE(DeadLetters().empty());
  EXPECT_FALSE(*done);
}

TEST_F(CommandRouterTest, LaterCommandsQueueBehindHeldOnes) {
  Route(R"({"type":"file_delete","peer_id":"peer-1","catalog_ids":["x"]})", 1);
  auto stream = std::make_shared<TestPeerStream>("peer-1");
  host_.AddSession(stream);
  auto done = Route(R"({"type":"file_delete","peer_id":"peer-1","catalog_ids":["y"]})", 2);
  EXPECT_EQ(host_.held().size(), 2u);
  EXPECT_TRUE(stream->written().empty()) << "passed a command still held";
  EXPECT_FALSE(*done);
}

TEST_F(CommandRouterTest, DisconnectForAPeerOnAnotherEdgeMakesOneHop) {
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  absl::Status claimed = absl::UnknownError("unanswered");
  other.Claim("peer-3", host_.clock().Now() + absl::Seconds(1),
              [&claimed](absl::StatusOr<PeerClaim> claim) { claimed = claim.status(); });
  ASSERT_TRUE(claimed.ok()) << claimed;

  auto done = Route(R"({"type":"disconnect","peer_id":"peer-3"})", 5);
  auto hops = host_.fake_bus().Published("edge-commands-edge-2");
  ASSERT_EQ(hops.size(), 1u);
  ASSERT_EQ(hops[0].headers.size(), 1u);
  EXPECT_EQ(hops[0].headers[0].key, kForwardedHeader);
  EXPECT_EQ(hops[0].headers[0].value, "edge-1");
  EXPECT_TRUE(host_.held().empty()) << "a disconnect is never held";
  host_.fake_bus().DeliverPending();
  EXPECT_TRUE(*done);
  EXPECT_EQ(host_.forwarded_, 1);
  other.Shutdown(host_.clock().Now());
}

TEST_F(CommandRouterTest, ExpiredCommandIsDeadLetteredExpired) {
  auto done = Route(R"({"type":"file_delete","peer_id":"peer-1","catalog_ids":["x"],)"
                    R"("expires_at":"2000-01-01T00:00:00Z"})",
                    4);
  auto letters = DeadLetters();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(Field(letters[0].value, "reason"), "expired");
  EXPECT_TRUE(host_.held().empty());
  host_.fake_bus().DeliverPending();
  EXPECT_TRUE(*done);
}

}  // namespace
}  // namespace edge
