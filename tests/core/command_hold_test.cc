// Commands that wait for their peer (contract §4: COMMAND_HOLD_MS,
// COMMAND_HOLD_MAX, expires_at), on the fakes with a FakeClock.
#include "edge_fixture.h"

namespace edge {
namespace {

using ::edge::testing::WaitFor;

constexpr char kCommands[] = "edge-commands-edge-1";
constexpr char kDeadLetters[] = "edge-commands-edge-1.deadletter";

std::string Hash(const std::string& peer_id, const std::string& request_id,
                 const std::string& extra = "") {
  return R"({"type":"file_hash","peer_id":")" + peer_id + R"(","request_id":")" + request_id +
         R"(","catalog_id":"c1")" + extra + "}";
}

class CommandHoldTest : public EdgeFixture {
 protected:
  EdgeOptions Options() {
    EdgeOptions options = TestEdgeOptions();
    options.catalog_pull_on_connect = false;
    return options;
  }
  // Moves the fake time on in hold ticks, so every timer due runs.
  void Advance(absl::Duration by) {
    for (absl::Duration done; done < by; done += absl::Milliseconds(100)) {
      clock_.Advance(absl::Milliseconds(100));
    }
  }
  bool WaitHeld(int64_t n) {
    return WaitFor([&] { return edge_->stats().commands_held == n; });
  }
  // With the tracker's answers queued (manual delivery), answers the hold's
  // lookup for a new command before the test moves time on: the lookup
  // starts on the bus's thread after the command counts as held, and a hold
  // ended before its answer is in cannot say what kept the command.
  void AnswerTheFirstLookup() {
    ASSERT_TRUE(WaitFor([&] { return cluster_.pending() == 1; }));
    EXPECT_EQ(cluster_.DeliverPending(), 1u);
    cluster_.SetManualDelivery(false);
  }
  std::vector<std::string> Reasons() {
    std::vector<std::string> reasons;
    for (const auto& r : bus_->Published(kDeadLetters)) reasons.push_back(Field(r.value, "reason"));
    return reasons;
  }
};

TEST_F(CommandHoldTest, HeldCommandsReachThePeerInOrderWhenItConnects) {
  StartEdge(Options());
  for (int i = 0; i < 3; ++i) Produce(Hash("peer-1", "r" + std::to_string(i)));
  ASSERT_TRUE(WaitHeld(3));
  // Held commands have no outcome: the committed position stays behind them.
  EXPECT_EQ(bus_->Committed(kCommands, 0), 0);
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());

  auto peer = Admit("peer-1");
  ASSERT_TRUE(peer->WaitForReceived(3));
  Produce(Hash("peer-1", "r3"));
  ASSERT_TRUE(peer->WaitForReceived(4));
  auto got = peer->Received();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i].request_id(), "r" + std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 4; }));
  EXPECT_EQ(edge_->stats().commands_held, 0);
  EXPECT_EQ(edge_->stats().commands_delivered, 4);
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
}

// A stream whose claim the tracker has not answered yet is no peer here: a
// command that comes meanwhile waits in the hold, not in that stream's
// queue. When the claim is refused (another edge still holds the peer, e.g.
// a dead edge's claim before its lease expires), the command follows the
// peer to that edge instead of vanishing with the refused stream.
TEST_F(CommandHoldTest, CommandDuringAPendingAdmissionFollowsThePeerWhenTheClaimIsRefused) {
  StartEdge(Options());
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-7", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  cluster_.SetManualDelivery(true);
  auto peer = transport_.Connect("peer-7");
  ASSERT_TRUE(WaitFor([&] { return cluster_.pending() == 1; }));  // the claim
  Produce(Hash("peer-7", "x"), "peer-7");
  ASSERT_TRUE(WaitHeld(1));
  ASSERT_TRUE(WaitFor([&] {
    cluster_.DeliverPending();
    Advance(absl::Milliseconds(100));
    return bus_->Published("edge-commands-edge-2").size() == 1;
  }));
  cluster_.SetManualDelivery(false);
  ASSERT_TRUE(peer->WaitForAdmission());
  EXPECT_TRUE(absl::IsAlreadyExists(peer->admission().value_or(absl::OkStatus())));
  EXPECT_EQ(Field(bus_->Published("edge-commands-edge-2")[0].value, "request_id"), "x");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 1; }));
  EXPECT_EQ(edge_->stats().commands_held, 0);
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
}

TEST_F(CommandHoldTest, HeldCommandsFollowThePeerToTheEdgeThatClaimsIt) {
  StartEdge(Options());
  Produce(Hash("peer-9", "a"), "peer-9");
  Produce(Hash("peer-9", "b"), "peer-9");
  ASSERT_TRUE(WaitHeld(2));
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  Advance(absl::Seconds(1));
  ASSERT_TRUE(bus_->WaitForPublished("edge-commands-edge-2", 2, absl::Seconds(5)));
  auto hops = bus_->Published("edge-commands-edge-2");
  EXPECT_EQ(Field(hops[0].value, "request_id"), "a");
  EXPECT_EQ(Field(hops[1].value, "request_id"), "b");
  // The hop, and the claim it went to.
  ASSERT_EQ(hops[0].headers.size(), 2u);
  EXPECT_EQ(hops[0].headers[0].value, "edge-1");
  EXPECT_EQ(hops[0].headers[1].key, "edge-forwarded-epoch");
  EXPECT_EQ(hops[0].headers[1].value, std::to_string(cluster_.Epoch("peer-9").value()));
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 2; }));
  EXPECT_EQ(edge_->stats().commands_forwarded, 2);
  EXPECT_EQ(edge_->stats().commands_held, 0);
}

// A peer that moves while its command chases it (a rolling restart moves
// it once per edge): every hop goes to a newer claim, so earlier hops never
// stop the command from following it. Each forward names the claim's epoch.
TEST_F(CommandHoldTest, CommandsFollowAMovingPeerToEachNewClaim) {
  StartEdge(Options());
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  const int64_t epoch = cluster_.Epoch("peer-9").value();
  // Three hops already made, each to an earlier claim of the peer.
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-9", Hash("peer-9", "x"),
                            {{"edge-forwarded-from", "edge-1"},
                             {"edge-forwarded-epoch", std::to_string(epoch - 3)},
                             {"edge-forwarded-from", "edge-2"},
                             {"edge-forwarded-epoch", std::to_string(epoch - 2)},
                             {"edge-forwarded-from", "edge-3"},
                             {"edge-forwarded-epoch", std::to_string(epoch - 1)}})
                  .ok());
  ASSERT_TRUE(bus_->WaitForPublished("edge-commands-edge-2", 1, absl::Seconds(5)));
  auto hop = bus_->Published("edge-commands-edge-2")[0];
  EXPECT_EQ(Field(hop.value, "request_id"), "x");
  ASSERT_EQ(hop.headers.size(), 8u);
  EXPECT_EQ(hop.headers[6].key, "edge-forwarded-from");
  EXPECT_EQ(hop.headers[6].value, "edge-1");
  EXPECT_EQ(hop.headers[7].key, "edge-forwarded-epoch");
  EXPECT_EQ(hop.headers[7].value, std::to_string(epoch));
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 1; }));
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
}

// A command that was already forwarded to the peer's current claim is not
// sent there again (it would circle): it waits, and the commands behind it
// keep their place. When the peer moves on, all follow it in order.
TEST_F(CommandHoldTest, CommandIsForwardedToOneClaimOnce) {
  StartEdge(Options());
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  const int64_t epoch = cluster_.Epoch("peer-9").value();
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-9", Hash("peer-9", "back"),
                            {{"edge-forwarded-from", "edge-1"},
                             {"edge-forwarded-epoch", std::to_string(epoch)}})
                  .ok());
  Produce(Hash("peer-9", "next"), "peer-9");
  ASSERT_TRUE(WaitHeld(2));
  Advance(absl::Seconds(2));
  EXPECT_TRUE(bus_->Published("edge-commands-edge-2").empty());
  EXPECT_EQ(edge_->stats().commands_held, 2);

  testing::FakeTracker third(&cluster_, "edge-3");
  ASSERT_TRUE(third.Start().ok());
  cluster_.Steal("peer-9", "edge-3");
  Advance(absl::Seconds(1));
  ASSERT_TRUE(bus_->WaitForPublished("edge-commands-edge-3", 2, absl::Seconds(5)));
  auto hops = bus_->Published("edge-commands-edge-3");
  EXPECT_EQ(Field(hops[0].value, "request_id"), "back");
  EXPECT_EQ(Field(hops[1].value, "request_id"), "next");
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
}

// The dead letter of a command whose hold ends says what kept it, not that
// no edge held the peer when one did.
TEST_F(CommandHoldTest, HoldEndsWithADetailSayingWhatKeptTheCommand) {
  StartEdge(Options());
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  const int64_t epoch = cluster_.Epoch("peer-9").value();
  cluster_.SetManualDelivery(true);
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-9", Hash("peer-9", "back"),
                            {{"edge-forwarded-from", "edge-1"},
                             {"edge-forwarded-epoch", std::to_string(epoch)}})
                  .ok());
  ASSERT_TRUE(WaitHeld(1));
  ASSERT_NO_FATAL_FAILURE(AnswerTheFirstLookup());
  Advance(absl::Seconds(31));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  auto letter = bus_->Published(kDeadLetters)[0];
  EXPECT_EQ(Field(letter.value, "reason"), "peer_not_connected");
  const std::string detail = Field(letter.value, "detail");
  EXPECT_NE(detail.find("COMMAND_HOLD_MS"), std::string::npos) << detail;
  EXPECT_NE(detail.find("edge edge-2 holds the peer"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("no edge held"), std::string::npos) << detail;
}

// The hop limit stops a command chasing a peer that keeps moving ahead of
// it: dead-lettered at once, saying so, and the peer's later commands are
// not kept waiting behind it.
TEST_F(CommandHoldTest, CommandAtTheHopLimitIsDeadLetteredAtOnce) {
  StartEdge(Options());
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  std::vector<RecordHeader> headers;
  for (int i = 0; i < 10; ++i) {
    headers.push_back({"edge-forwarded-from", "edge-" + std::to_string(i % 3 + 1)});
    headers.push_back({"edge-forwarded-epoch", std::to_string(1000 + i)});
  }
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-9", Hash("peer-9", "far"), headers).ok());
  Produce(Hash("peer-9", "next"), "peer-9");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  auto letter = bus_->Published(kDeadLetters)[0];
  EXPECT_EQ(Field(letter.value, "reason"), "peer_not_connected");
  EXPECT_NE(Field(letter.value, "detail").find("hop limit"), std::string::npos) << letter.value;
  EXPECT_EQ(Field(letter.value, "original_offset"), "0");
  ASSERT_TRUE(bus_->WaitForPublished("edge-commands-edge-2", 1, absl::Seconds(5)));
  EXPECT_EQ(Field(bus_->Published("edge-commands-edge-2")[0].value, "request_id"), "next");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 2; }));
  EXPECT_EQ(bus_->Published(kDeadLetters).size(), 1u);
}

// A lookup the tracker cannot answer keeps the command, and its dead letter
// at the hold's end says so.
TEST_F(CommandHoldTest, HoldEndedWhileTheTrackerCannotBeAskedSaysSo) {
  StartEdge(Options());
  cluster_.SetUnavailable(true);
  cluster_.SetManualDelivery(true);
  Produce(Hash("peer-9", "x"), "peer-9");
  ASSERT_TRUE(WaitHeld(1));
  ASSERT_NO_FATAL_FAILURE(AnswerTheFirstLookup());
  Advance(absl::Seconds(31));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  const std::string detail = Field(bus_->Published(kDeadLetters)[0].value, "detail");
  EXPECT_NE(detail.find("the tracker could not be asked"), std::string::npos) << detail;
}

TEST_F(CommandHoldTest, HoldEndsWithPeerNotConnected) {
  StartEdge(Options());
  Produce(Hash("ghost", "g"), "ghost");
  ASSERT_TRUE(WaitHeld(1));
  Advance(absl::Seconds(29));
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
  Advance(absl::Seconds(2));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  auto letter = bus_->Published(kDeadLetters)[0];
  EXPECT_EQ(Field(letter.value, "reason"), "peer_not_connected");
  EXPECT_NE(Field(letter.value, "detail").find("COMMAND_HOLD_MS"), std::string::npos);
  EXPECT_EQ(letter.key, "ghost");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 1; }));
  EXPECT_EQ(edge_->stats().commands_held, 0);
}

TEST_F(CommandHoldTest, HoldIsBoundedPerPeerAndPerEdge) {
  EdgeOptions options = Options();
  options.peer_send_queue_max = 2;
  options.command_hold_max = 3;
  StartEdge(options);
  for (int i = 0; i < 3; ++i) Produce(Hash("peer-a", "a" + std::to_string(i)), "peer-a");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  auto first = bus_->Published(kDeadLetters)[0];
  EXPECT_EQ(Field(first.value, "reason"), "peer_not_connected");
  EXPECT_NE(Field(first.value, "detail").find("PEER_SEND_QUEUE_MAX"), std::string::npos)
      << first.value;
  EXPECT_EQ(Field(first.value, "original_offset"), "2");
  Produce(Hash("peer-b", "b0"), "peer-b");
  Produce(Hash("peer-b", "b1"), "peer-b");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 2, absl::Seconds(5)));
  auto second = bus_->Published(kDeadLetters)[1];
  EXPECT_NE(Field(second.value, "detail").find("COMMAND_HOLD_MAX"), std::string::npos)
      << second.value;
  EXPECT_EQ(Field(second.value, "original_offset"), "4");
  ASSERT_TRUE(WaitHeld(3));
  // What was held is still delivered.
  auto a = Admit("peer-a");
  ASSERT_TRUE(a->WaitForReceived(2));
  EXPECT_EQ(a->Received()[0].request_id(), "a0");
  EXPECT_EQ(a->Received()[1].request_id(), "a1");
}

TEST_F(CommandHoldTest, HoldingOffDeadLettersAtOnce) {
  EdgeOptions options = Options();
  options.command_hold = absl::ZeroDuration();
  StartEdge(options);
  Produce(Hash("ghost", "g"), "ghost");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  EXPECT_EQ(Reasons()[0], "peer_not_connected");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 1; }));
}

TEST_F(CommandHoldTest, ExpiredCommandsAreDeadLetteredExpired) {
  StartEdge(Options());
  // The fake clock starts at 2026-01-01T00:00:00Z.
  Produce(Hash("peer-1", "late", R"(,"expires_at":"2025-12-31T23:59:59Z")"));
  Produce(Hash("peer-1", "soon", R"(,"expires_at":"2026-01-01T00:00:01.5+00:00")"));
  Produce(Hash("peer-1", "bad", R"(,"expires_at":"tomorrow")"));
  Produce(Hash("peer-1", "kept", R"(,"expires_at":"2026-01-01T01:00:00Z")"));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 2, absl::Seconds(5)));
  ASSERT_TRUE(WaitHeld(2));
  auto letters = bus_->Published(kDeadLetters);
  EXPECT_EQ(Field(letters[0].value, "reason"), "expired");
  EXPECT_EQ(Field(letters[0].value, "original_offset"), "0");
  EXPECT_EQ(Field(letters[1].value, "reason"), "invalid_command");
  EXPECT_NE(Field(letters[1].value, "detail").find("expires_at"), std::string::npos);
  Advance(absl::Seconds(2));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 3, absl::Seconds(5)));
  letters = bus_->Published(kDeadLetters);
  EXPECT_EQ(Field(letters[2].value, "reason"), "expired");
  EXPECT_EQ(Field(letters[2].value, "original_offset"), "1");
  auto peer = Admit("peer-1");
  ASSERT_TRUE(peer->WaitForReceived(1));
  EXPECT_EQ(peer->Received()[0].request_id(), "kept");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 4; }));
}

TEST_F(CommandHoldTest, CommandThatExpiresInThePeersQueueIsNotWritten) {
  StartEdge(Options());
  auto peer = Admit("peer-1");
  peer->StopReading();
  Produce(Hash("peer-1", "first"));
  Produce(Hash("peer-1", "second", R"(,"expires_at":"2026-01-01T00:00:01Z")"));
  // The first write hangs (the peer does not read); the second waits behind
  // it past its expires_at.
  ASSERT_TRUE(WaitFor([&] { return bus_->OutstandingRecords() == 2; }));
  Advance(absl::Seconds(2));
  peer->ResumeReading();
  ASSERT_TRUE(peer->WaitForReceived(1));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  EXPECT_EQ(Reasons()[0], "expired");
  EXPECT_EQ(Field(bus_->Published(kDeadLetters)[0].value, "original_offset"), "1");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed(kCommands, 0) == 2; }));
  ASSERT_EQ(peer->Received().size(), 1u);
  EXPECT_EQ(peer->Received()[0].request_id(), "first");
}

TEST_F(CommandHoldTest, ShutdownLeavesHeldCommandsToBeReadAgain) {
  StartEdge(Options());
  Produce(Hash("peer-1", "r0"));
  ASSERT_TRUE(WaitHeld(1));
  edge_->Shutdown(clock_.Now() + absl::Seconds(5));
  EXPECT_EQ(bus_->Committed(kCommands, 0), 0);
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
}

}  // namespace
}  // namespace edge

namespace edge {
namespace {

// A tracker that never answers a lookup until told to (a wedged etcd), and
// counts them. Claims and releases succeed at once.
class WedgedTracker final : public Tracker {
 public:
  absl::Status Start() override { return absl::OkStatus(); }
  void Claim(const std::string&, absl::Time, ClaimDone done) override { done(PeerClaim{}); }
  void Release(const std::string&, const PeerClaim&, ReleaseDone done) override {
    done(absl::OkStatus());
  }
  void Lookup(const std::string& peer_id, absl::Time, LookupDone done) override {
    absl::MutexLock lock(&mu_);
    ++lookups_;
    pending_.emplace_back(peer_id, std::move(done));
  }
  void SetLostListener(LostListener) override {}
  void Shutdown(absl::Time) override {}

  int lookups() {
    absl::MutexLock lock(&mu_);
    return lookups_;
  }
  size_t pending() {
    absl::MutexLock lock(&mu_);
    return pending_.size();
  }
  // Answers every pending lookup: nobody holds the peer.
  void AnswerNotFound() {
    std::vector<std::pair<std::string, LookupDone>> answer;
    {
      absl::MutexLock lock(&mu_);
      answer.swap(pending_);
    }
    for (auto& [peer_id, done] : answer) done(absl::NotFoundError(peer_id));
  }

 private:
  absl::Mutex mu_;
  int lookups_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, LookupDone>> pending_ ABSL_GUARDED_BY(mu_);
};

class WedgedTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EdgeOptions options = TestEdgeOptions();
    options.catalog_pull_on_connect = false;
    auto edge = Edge::Create(options, EdgeParts{&transport_, &bus_, &tracker_, &clock_, nullptr});
    ASSERT_TRUE(edge.ok()) << edge.status();
    edge_ = std::move(*edge);
    ASSERT_TRUE(edge_->Start().ok());
  }
  void TearDown() override {
    tracker_.AnswerNotFound();
    edge_->Shutdown(clock_.Now() + absl::Seconds(5));
  }
  void Produce(const std::string& peer_id, const std::string& request_id) {
    ASSERT_TRUE(bus_.Produce(kCommands, peer_id, Hash(peer_id, request_id)).ok());
  }

  testing::FakeClock clock_;
  testing::FakePeerTransport transport_;
  testing::FakeMessageBus bus_;
  WedgedTracker tracker_;
  std::unique_ptr<Edge> edge_;
};

TEST_F(WedgedTrackerTest, LookupsStayBoundedWhileTheTrackerDoesNotAnswer) {
  // A flood for one absent peer asks once; 200 absent peers ask at most 64
  // questions at a time.
  for (int i = 0; i < 50; ++i) Produce("peer-x", "x" + std::to_string(i));
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().commands_held == 50; }));
  EXPECT_EQ(tracker_.lookups(), 1);
  for (int i = 0; i < 200; ++i) Produce("peer-" + std::to_string(i), "p");
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().commands_held == 250; }));
  for (int tick = 0; tick < 20; ++tick) clock_.Advance(absl::Milliseconds(100));
  EXPECT_EQ(tracker_.lookups(), 64);
  EXPECT_EQ(tracker_.pending(), 64u);
  // Answered "nobody": each answer stands for half a second, then the next
  // 64 peers are asked.
  tracker_.AnswerNotFound();
  EXPECT_EQ(tracker_.lookups(), 64);
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_EQ(tracker_.lookups(), 128);
  // The flood for peer-x is still one peer: never more than one question.
  EXPECT_TRUE(bus_.Published(kDeadLetters).empty());
}

TEST_F(WedgedTrackerTest, PeerAdmittedWhileItsLookupHangsGetsItsCommands) {
  Produce("peer-1", "r0");
  Produce("peer-1", "r1");
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().commands_held == 2; }));
  ASSERT_EQ(tracker_.pending(), 1u);
  auto peer = transport_.Connect("peer-1");
  ASSERT_TRUE(peer->WaitForAdmission());
  ASSERT_TRUE(peer->admission()->ok());
  // The lookup under way owns the queue; its answer hands it over.
  tracker_.AnswerNotFound();
  ASSERT_TRUE(peer->WaitForReceived(2));
  EXPECT_EQ(peer->Received()[0].request_id(), "r0");
  EXPECT_EQ(peer->Received()[1].request_id(), "r1");
  ASSERT_TRUE(WaitFor([&] { return bus_.Committed(kCommands, 0) == 2; }));
}

}  // namespace
}  // namespace edge

namespace edge {
namespace {

// A FakeMessageBus that says it is not reading until told otherwise.
class SlowStartBus final : public MessageBus {
 public:
  void Publish(OutgoingRecord record, PublishDone done) override {
    bus_.Publish(std::move(record), std::move(done));
  }
  bool Saturated() const override { return bus_.Saturated(); }
  void SetDrainListener(absl::AnyInvocable<void()> listener) override {
    bus_.SetDrainListener(std::move(listener));
  }
  absl::Status Subscribe(const std::string& topic, RecordHandler handler) override {
    return bus_.Subscribe(topic, std::move(handler));
  }
  absl::Status Start() override { return bus_.Start(); }
  bool Reading() const override { return reading_.load(); }
  void StopConsuming() override { bus_.StopConsuming(); }
  void Shutdown(absl::Time deadline) override { bus_.Shutdown(deadline); }

  std::atomic<bool> reading_{false};
  testing::FakeMessageBus bus_;
};

TEST(EdgeReadinessTest, NotReadyUntilTheBusReadsItsCommandTopic) {
  testing::FakeClock clock;
  testing::FakePeerTransport transport;
  testing::FakeTrackerCluster cluster;
  testing::FakeTracker tracker(&cluster, "edge-1");
  SlowStartBus bus;
  auto edge =
      Edge::Create(TestEdgeOptions(), EdgeParts{&transport, &bus, &tracker, &clock, nullptr});
  ASSERT_TRUE(edge.ok()) << edge.status();
  ASSERT_TRUE((*edge)->Start().ok());
  EXPECT_FALSE((*edge)->Ready());
  // Peers are admitted meanwhile: commands produced now wait in the topic.
  auto peer = transport.Connect("peer-1");
  ASSERT_TRUE(peer->WaitForAdmission());
  EXPECT_TRUE(peer->admission()->ok());
  bus.reading_.store(true);
  EXPECT_TRUE((*edge)->Ready());
  (*edge)->Shutdown(clock.Now() + absl::Seconds(5));
}

}  // namespace
}  // namespace edge
