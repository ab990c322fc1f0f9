// The core's behaviour through its public interfaces, on the fakes.
#include <thread>

#include "core/events.h"
#include "edge_fixture.h"

namespace edge {
namespace {

using ::edge::testing::WaitFor;
namespace gp = giggityflix_grpc_peer;

constexpr char kLifecycle[] = "peer-lifecycle-events";
constexpr char kDeadLetters[] = "edge-commands-edge-1.deadletter";

PeerCallInfo Caller(const std::string& peer_id, const std::string& cert = "") {
  PeerCallInfo info;
  info.has_peer_id = true;
  info.peer_id = peer_id;
  info.cert_identity = cert;
  return info;
}

PeerMessage Keepalive(const std::string& request_id) {
  PeerMessage m;
  m.set_request_id(request_id);
  m.mutable_catalog_announcement();
  return m;
}

class EdgeTest : public EdgeFixture {};

// --- admission (contract §2) ---

TEST_F(EdgeTest, RefusesInTheContractOrderWithTheContractCodes) {
  EdgeOptions options = TestEdgeOptions();
  options.peer_id_from_cert = true;
  StartEdge(options);
  PeerCallInfo none;
  EXPECT_EQ(Refusal(none).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Refusal(Caller("")).code(), absl::StatusCode::kUnauthenticated);
  // Row 2 comes before row 3: an invalid id with a matching certificate.
  EXPECT_EQ(Refusal(Caller("bad id", "bad id")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Refusal(Caller(std::string(129, 'a'))).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Refusal(Caller("peer-1", "peer-2")).code(), absl::StatusCode::kPermissionDenied);
  auto ok = transport_.Connect(Caller("peer-1", "peer-1"));
  ASSERT_TRUE(ok->WaitForAdmission());
  EXPECT_TRUE(ok->admission()->ok());
  EXPECT_EQ(edge_->stats().rejected, 5);
  // Refused streams published nothing.
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  EXPECT_EQ(Values(kLifecycle).size(), 1u);
}

TEST_F(EdgeTest, DrainingEdgeRefusesWithUnavailable) {
  StartEdge();
  edge_->Drain();
  EXPECT_FALSE(edge_->Ready());
  EXPECT_EQ(Refusal(Caller("peer-1")).code(), absl::StatusCode::kUnavailable);
}

TEST_F(EdgeTest, FullEventBufferRefusesWithUnavailable) {
  testing::FakeMessageBusOptions bus;
  bus.capacity = 1;
  StartEdge(TestEdgeOptions(), bus);
  bus_->SetUnavailable(true);
  auto first = Admit("peer-1");  // Its `connected` event fills the buffer.
  ASSERT_TRUE(WaitFor([&] { return bus_->Saturated(); }));
  EXPECT_EQ(Refusal(Caller("peer-2")).code(), absl::StatusCode::kUnavailable);
  bus_->SetUnavailable(false);
  ASSERT_TRUE(WaitFor([&] { return !bus_->Saturated(); }));
  Admit("peer-2");
}

TEST_F(EdgeTest, NewStreamsBeyondTheRateAreRefusedWithUnavailable) {
  EdgeOptions options = TestEdgeOptions();
  options.max_new_streams_per_sec = 2;
  StartEdge(options);
  Admit("peer-1");
  Admit("peer-2");
  absl::Status refused = Refusal(Caller("peer-3"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("MAX_NEW_STREAMS_PER_SEC"), absl::string_view::npos);
  clock_.Advance(absl::Milliseconds(500));  // One token back.
  Admit("peer-3");
  EXPECT_EQ(Refusal(Caller("peer-4")).code(), absl::StatusCode::kUnavailable);
}

TEST_F(EdgeTest, MaxPeersAndDescriptorHeadroomRefuseWithResourceExhausted) {
  EdgeOptions options = TestEdgeOptions();
  options.max_peers = 2;
  bool headroom = true;
  options.has_descriptor_headroom = [&] { return headroom; };
  StartEdge(options);
  Admit("peer-1");
  headroom = false;
  EXPECT_EQ(Refusal(Caller("peer-2")).code(), absl::StatusCode::kResourceExhausted);
  headroom = true;
  Admit("peer-2");
  absl::Status full = Refusal(Caller("peer-3"));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("2"), absl::string_view::npos);
}

// §2 checks capacity (5) before duplicates (6): at MAX_PEERS a second stream
// of a held peer_id is refused RESOURCE_EXHAUSTED under either policy, and
// the stream it would have replaced keeps running.
class CapacityBeforeDuplicateTest : public EdgeFixture,
                                    public ::testing::WithParamInterface<DuplicatePolicy> {};

TEST_P(CapacityBeforeDuplicateTest, FullEdgeRefusesASecondStreamOfAHeldPeer) {
  EdgeOptions options = TestEdgeOptions();
  options.max_peers = 1;
  options.duplicate_policy = GetParam();
  StartEdge(options);
  auto held = Admit("peer-1");
  absl::Status refused = Refusal(Caller("peer-1"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted) << refused;
  EXPECT_FALSE(held->final_status().has_value());
}

INSTANTIATE_TEST_SUITE_P(Policies, CapacityBeforeDuplicateTest,
                         ::testing::Values(DuplicatePolicy::kReject, DuplicatePolicy::kReplace),
                         [](const ::testing::TestParamInfo<DuplicatePolicy>& info) {
                           return info.param == DuplicatePolicy::kReject ? "Reject" : "Replace";
                         });

TEST_F(EdgeTest, DuplicateIsRejectedByDefault) {
  StartEdge();
  auto first = Admit("peer-1");
  EXPECT_EQ(Refusal(Caller("peer-1")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(first->final_status().has_value());
}

TEST_F(EdgeTest, ReplacePolicyAbortsTheOldStreamAndAdmitsTheNew) {
  EdgeOptions options = TestEdgeOptions();
  options.duplicate_policy = DuplicatePolicy::kReplace;
  StartEdge(options);
  auto first = Admit("peer-1");
  auto second = Admit("peer-1");
  ASSERT_TRUE(first->WaitForEnd());
  EXPECT_EQ(first->final_status()->code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 3, absl::Seconds(5)));
  auto events = Values(kLifecycle);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(Field(events[0], "event_type"), "connected");
  EXPECT_EQ(Field(events[1], "event_type"), "disconnected");
  EXPECT_EQ(Field(events[1], "reason"), "replaced");
  EXPECT_EQ(Field(events[2], "event_type"), "connected");
  // The claim moved to the new stream: another edge still cannot take it.
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  absl::Status claimed;
  other.Claim("peer-1", clock_.Now() + absl::Seconds(1),
              [&](absl::StatusOr<PeerClaim> c) { claimed = c.status(); });
  EXPECT_EQ(claimed.code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(EdgeTest, PeerHeldByAnotherEdgeIsRefusedNamingThatEdge) {
  StartEdge();
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-1", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  absl::Status refused = Refusal(Caller("peer-1"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(refused.message().find("edge-2"), absl::string_view::npos) << refused;
}

TEST_F(EdgeTest, UnreachableTrackerRefusesUnlessFailOpen) {
  StartEdge();
  cluster_.SetUnavailable(true);
  EXPECT_EQ(Refusal(Caller("peer-1")).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(edge_->stats().peers, 0);  // No state left behind.
}

TEST_F(EdgeTest, UnreachableTrackerAdmitsWhenFailOpen) {
  EdgeOptions options = TestEdgeOptions();
  options.tracker_fail_open = true;
  StartEdge(options);
  cluster_.SetUnavailable(true);
  Admit("peer-1");
}

TEST_F(EdgeTest, ReplacingAStreamAdmittedFailingOpenClaimsThePeer) {
  EdgeOptions options = TestEdgeOptions();
  options.tracker_fail_open = true;
  options.duplicate_policy = DuplicatePolicy::kReplace;
  StartEdge(options);
  cluster_.SetUnavailable(true);
  auto first = Admit("peer-1");
  EXPECT_FALSE(cluster_.Holder("peer-1").has_value());

  // The tracker is back: the replacing stream has no claim to inherit, so
  // it claims the peer, and its events carry the claim's epoch.
  cluster_.SetUnavailable(false);
  auto second = Admit("peer-1");
  ASSERT_TRUE(first->WaitForEnd());
  EXPECT_EQ(cluster_.Holder("peer-1"), "edge-1");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 3, absl::Seconds(5)));
  auto events = Values(kLifecycle);
  EXPECT_EQ(Field(events[0], "epoch"), "<absent>");
  EXPECT_EQ(Field(events[2], "event_type"), "connected");
  EXPECT_EQ(Field(events[2], "epoch"), std::to_string(cluster_.Epoch("peer-1").value_or(-1)));

  // Its end releases that claim.
  second->Close();
  ASSERT_TRUE(second->WaitForEnd());
  EXPECT_TRUE(WaitFor([&] { return !cluster_.Holder("peer-1").has_value(); }));
}

// --- on admission, events and acknowledgements (§2, §3, §5) ---

TEST_F(EdgeTest, AdmissionPublishesConnectedAndPullsTheCatalog) {
  StartEdge();
  auto peer = Admit("peer-1");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  auto connected = bus_->Published(kLifecycle)[0];
  EXPECT_EQ(connected.key, "peer-1");
  EXPECT_EQ(Field(connected.value, "event_type"), "connected");
  EXPECT_EQ(Field(connected.value, "edge_id"), "edge-1");
  EXPECT_EQ(Field(connected.value, "epoch"), "1");
  ASSERT_TRUE(peer->WaitForReceived(1));
  EdgeMessage pull = peer->Received()[0];
  EXPECT_TRUE(pull.has_catalog_announcement_request());
  EXPECT_EQ(pull.request_id().size(), 36u);
  // An empty answer to the pull is a full (empty) catalog, not a keepalive.
  PeerMessage answer;
  answer.set_request_id(pull.request_id());
  answer.mutable_catalog_announcement();
  peer->Send(answer);
  ASSERT_TRUE(bus_->WaitForPublished("peer-catalog-updates", 1, absl::Seconds(5)));
  auto update = Values("peer-catalog-updates")[0];
  EXPECT_EQ(Field(update, "is_full_update"), "true");
  EXPECT_EQ(Field(update, "request_id"), pull.request_id());
}

TEST_F(EdgeTest, NoCatalogPullWhenDisabled) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  peer->Send(Keepalive("k1"));
  ASSERT_TRUE(peer->WaitForReceived(1));
  EXPECT_EQ(peer->Received()[0].request_id(), "k1");  // The ack, no pull before it.
}

TEST_F(EdgeTest, KeepalivesAreAcknowledgedAndNotPublished) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  for (int i = 0; i < 3; ++i) peer->Send(Keepalive("k" + std::to_string(i)));
  ASSERT_TRUE(peer->WaitForReceived(3));
  for (const EdgeMessage& ack : peer->Received()) {
    EXPECT_EQ(ack.payload_case(), EdgeMessage::PAYLOAD_NOT_SET);
    EXPECT_EQ(ack.edge_id(), "edge-1");
  }
  EXPECT_TRUE(bus_->Published("peer-catalog-updates").empty());
  EXPECT_EQ(edge_->stats().keepalives, 3);
}

TEST_F(EdgeTest, MessagesBecomeEventsAndAreAcknowledgedOnceStored) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  bus_->SetUnavailable(true);
  PeerMessage del;
  del.set_request_id("d1");
  del.mutable_file_delete_response()->set_catalog_id("c1");
  del.mutable_file_delete_response()->set_success(true);
  peer->Send(del);
  transport_.Flush();
  EXPECT_TRUE(peer->Received().empty());  // Not stored yet: no ack.
  bus_->SetUnavailable(false);
  ASSERT_TRUE(peer->WaitForReceived(1));
  EXPECT_EQ(peer->Received()[0].request_id(), "d1");
  auto event = bus_->Published("file-delete-responses").at(0);
  EXPECT_EQ(event.key, "peer-1");
  EXPECT_EQ(Field(event.value, "catalog_id"), "c1");
  EXPECT_EQ(Field(event.value, "success"), "true");
}

// An event the bus refuses is not acknowledged (the peer sends it again);
// the stream goes on, and the next message is.
TEST_F(EdgeTest, AMessageWhoseEventIsRefusedIsNotAcknowledged) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  bus_->FailNextPublishes(1, absl::InvalidArgumentError("refused"));
  for (const char* id : {"d1", "d2"}) {
    PeerMessage del;
    del.set_request_id(id);
    del.mutable_file_delete_response()->set_catalog_id("c1");
    peer->Send(del);
  }
  ASSERT_TRUE(peer->WaitForReceived(1));
  ASSERT_TRUE(bus_->WaitForPublished("file-delete-responses", 1, absl::Seconds(5)));
  transport_.Flush();
  ASSERT_EQ(peer->Received().size(), 1u);
  EXPECT_EQ(peer->Received()[0].request_id(), "d2");
  EXPECT_EQ(Field(bus_->Published("file-delete-responses").at(0).value, "request_id"), "d2");
  EXPECT_FALSE(peer->final_status().has_value());
}

TEST_F(EdgeTest, FileOffersArePublishedButNotAcknowledged) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  PeerMessage offer;
  offer.set_request_id("o1");
  auto* file = offer.mutable_batch_file_offer()->add_files();
  file->set_relative_path("a.mkv");
  file->set_size_bytes(10);
  peer->Send(offer);
  peer->Send(Keepalive("k1"));
  ASSERT_TRUE(peer->WaitForReceived(1));
  ASSERT_TRUE(bus_->WaitForPublished("peer-file-offers", 1, absl::Seconds(5)));
  transport_.Flush();
  ASSERT_EQ(peer->Received().size(), 1u);
  EXPECT_EQ(peer->Received()[0].request_id(), "k1");
  EXPECT_EQ(Field(Values("peer-file-offers")[0], "request_id"), "o1");
}

TEST_F(EdgeTest, UnknownPayloadsAreCountedNotPublished) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  PeerMessage empty;
  empty.set_request_id("x");
  peer->Send(empty);
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().messages_unknown == 1; }));
}

TEST_F(EdgeTest, SaturatedBusPausesReadingInsteadOfDropping) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.peer_max_messages_per_sec = 0;
  testing::FakeMessageBusOptions bus;
  bus.capacity = 4;
  StartEdge(options, bus);
  auto peer = Admit("peer-1");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  bus_->SetUnavailable(true);
  constexpr int kMessages = 50;
  for (int i = 0; i < kMessages; ++i) {
    PeerMessage m;
    m.set_request_id("h" + std::to_string(i));
    m.mutable_file_hash_response()->set_catalog_id("c" + std::to_string(i));
    peer->Send(m);
  }
  transport_.Flush();
  EXPECT_GT(peer->unread(), 0u);  // Reading stopped: the peer is pushed back.
  bus_->SetUnavailable(false);
  ASSERT_TRUE(bus_->WaitForPublished("file-hash-responses", kMessages, absl::Seconds(10)));
  auto events = Values("file-hash-responses");
  ASSERT_EQ(events.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i)
    EXPECT_EQ(Field(events[i], "catalog_id"), "c" + std::to_string(i));
  ASSERT_TRUE(peer->WaitForReceived(kMessages));
}

TEST_F(EdgeTest, UnansweredMessagesPauseReadingInsteadOfOverflowingTheSendQueue) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.peer_max_messages_per_sec = 0;
  options.peer_send_queue_max = 8;
  testing::FakeMessageBusOptions bus;
  bus.capacity = 1000000;  // The bus takes everything: only the ack window holds the peer.
  StartEdge(options, bus);
  auto peer = Admit("peer-1");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  bus_->SetUnavailable(true);  // A broker outage: events wait, acks wait.
  constexpr int kMessages = 40;
  for (int i = 0; i < kMessages; ++i) {
    PeerMessage m;
    m.set_request_id("d" + std::to_string(i));
    m.mutable_file_delete_response()->set_catalog_id("c" + std::to_string(i));
    peer->Send(m);
  }
  transport_.Flush();
  EXPECT_EQ(peer->unread(), static_cast<size_t>(kMessages - 8));
  // Back: the burst of acks goes out without the peer being taken for slow.
  bus_->SetUnavailable(false);
  ASSERT_TRUE(peer->WaitForReceived(kMessages));
  EXPECT_FALSE(peer->final_status().has_value());
  EXPECT_EQ(Values("file-delete-responses").size(), static_cast<size_t>(kMessages));
}

TEST_F(EdgeTest, DeadLetterTooLargeForTheTopicIsSentWithTheOriginalTruncated) {
  StartEdge();
  std::string huge = "{not json " + std::string(200 * 1024, 'x');
  bus_->FailNextPublishes(1, absl::InvalidArgumentError("message too large"));
  Produce(huge);
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  std::string letter = bus_->Published(kDeadLetters)[0].value;
  EXPECT_EQ(Field(letter, "reason"), "invalid_json");
  EXPECT_EQ(Field(letter, "original_message_truncated"), "true");
  EXPECT_EQ(Field(letter, "original_size"), std::to_string(huge.size()));
  EXPECT_EQ(Field(letter, "original_message").size(), kReducedOriginalBytes);
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == 1; }));
}

TEST_F(EdgeTest, DeadLetterNotStoredAtShutdownLeavesTheCommandUncommitted) {
  EdgeOptions options = TestEdgeOptions();
  options.command_hold = absl::ZeroDuration();  // "nobody" is not waited for
  StartEdge(options);
  bus_->FailNextPublishes(1, absl::CancelledError("bus shutting down"));
  Produce("{not json");
  Produce(R"({"type":"catalog_announcement","peer_id":"nobody"})", "nobody");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return bus_->OutstandingRecords() == 1; }));
  EXPECT_EQ(bus_->Committed("edge-commands-edge-1", 0), 0);  // Redelivered after a restart.
}

TEST_F(EdgeTest, TooManyMessagesPerSecondDisconnects) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.peer_max_messages_per_sec = 5;
  StartEdge(options);
  auto peer = Admit("peer-1");
  for (int i = 0; i < 6; ++i) peer->Send(Keepalive("k" + std::to_string(i)));
  ASSERT_TRUE(peer->WaitForEnd());
  EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kResourceExhausted);
}

// --- commands (§4) ---

TEST_F(EdgeTest, CommandsReachThePeerInOrderAndAreCommitted) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options);
  auto peer = Admit("peer-1");
  for (int i = 0; i < 20; ++i) {
    Produce(R"({"type":"file_hash","peer_id":"peer-1","catalog_id":"c)" + std::to_string(i) +
            R"(","hash_types":["sha256"]})");
  }
  Produce(R"({"type":"file_delete","peer_id":"peer-1","request_id":"mine","catalog_ids":["x"]})");
  ASSERT_TRUE(peer->WaitForReceived(21));
  auto got = peer->Received();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(got[i].file_hash_request().catalog_id(), "c" + std::to_string(i));
    EXPECT_EQ(got[i].request_id().size(), 36u);  // generated
    EXPECT_EQ(got[i].edge_id(), "edge-1");
  }
  EXPECT_EQ(got[20].request_id(), "mine");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == 21; }));
  EXPECT_EQ(edge_->stats().commands_delivered, 21);
}

TEST_F(EdgeTest, MalformedCommandsAreDeadLetteredAndTheConsumerGoesOn) {
  EdgeOptions options = TestEdgeOptions();
  options.command_hold = absl::ZeroDuration();  // "nobody" is not waited for
  StartEdge(options);
  Produce("{not json");
  Produce(R"({"type":"reboot","peer_id":"peer-1"})");
  Produce(R"({"type":"file_delete","peer_id":"peer-1","catalog_ids":7})");
  Produce(R"({"type":"file_delete","peer_id":"nobody","catalog_ids":["a"]})", "nobody");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 4, absl::Seconds(5)));
  auto letters = bus_->Published(kDeadLetters);
  EXPECT_EQ(Field(letters[0].value, "reason"), "invalid_json");
  EXPECT_EQ(Field(letters[0].value, "original_message"), "{not json");
  EXPECT_EQ(Field(letters[0].value, "original_topic"), "edge-commands-edge-1");
  EXPECT_EQ(Field(letters[1].value, "reason"), "unknown_type");
  EXPECT_EQ(Field(letters[2].value, "reason"), "invalid_command");
  EXPECT_EQ(Field(letters[3].value, "reason"), "peer_not_connected");
  EXPECT_EQ(letters[3].key, "nobody");
  EXPECT_EQ(Field(letters[3].value, "original_offset"), "3");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == 4; }));
}

TEST_F(EdgeTest, SlowPeerIsDisconnectedAndItsCommandsDeadLettered) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.peer_send_queue_max = 3;
  StartEdge(options);
  auto peer = Admit("peer-1");
  peer->StopReading();
  for (int i = 0; i < 5; ++i) {
    Produce(R"({"type":"file_hash","peer_id":"peer-1","catalog_id":"c)" + std::to_string(i) +
            R"("})");
  }
  // One write is stuck in flight, two wait, the fourth overflows the queue:
  // the peer is ended as slow and what it did not take is dead-lettered.
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[1], "reason"), "slow");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 4, absl::Seconds(5)));
  // The stuck write fails when the connection finally goes (a real
  // transport's write timeout does this): every command has an outcome.
  peer->Close();
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 5, absl::Seconds(5)));
  for (const auto& letter : bus_->Published(kDeadLetters)) {
    EXPECT_EQ(Field(letter.value, "reason"), "peer_slow");
  }
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == 5; }));
  EXPECT_TRUE(peer->Received().empty());
}

TEST_F(EdgeTest, DisconnectCommandKicksThePeer) {
  StartEdge();
  auto peer = Admit("peer-1");
  Produce(R"({"type":"disconnect","peer_id":"peer-1","reason":"maintenance"})");
  ASSERT_TRUE(peer->WaitForEnd());
  EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[1], "reason"), "kicked");
}

TEST_F(EdgeTest, CommandForAPeerOnAnotherEdgeIsForwardedOnce) {
  EdgeOptions options = TestEdgeOptions();
  options.command_hold = absl::ZeroDuration();  // the returned hop is not waited for
  StartEdge(options);
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  Produce(R"({"type":"catalog_announcement","peer_id":"peer-9"})", "peer-9");
  ASSERT_TRUE(bus_->WaitForPublished("edge-commands-edge-2", 1, absl::Seconds(5)));
  auto hop = bus_->Published("edge-commands-edge-2")[0];
  EXPECT_EQ(hop.key, "peer-9");
  // The hop, and the claim it went to.
  ASSERT_EQ(hop.headers.size(), 2u);
  EXPECT_EQ(hop.headers[0].value, "edge-1");
  EXPECT_EQ(hop.headers[1].key, "edge-forwarded-epoch");
  // A forwarded command that still finds no peer is dead-lettered, not bounced.
  ASSERT_TRUE(bus_->Produce("edge-commands-edge-1", "peer-9", hop.value, hop.headers).ok());
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  EXPECT_EQ(Field(bus_->Published(kDeadLetters)[0].value, "reason"), "peer_not_connected");
}

// --- liveness and shutdown (§7) ---

TEST_F(EdgeTest, SilentPeerIsEndedAfterTheTimeout) {
  StartEdge();
  auto peer = Admit("peer-1");
  clock_.Advance(absl::Seconds(60));
  peer->Send(Keepalive("k"));
  transport_.Flush();
  clock_.Advance(absl::Seconds(119));
  EXPECT_FALSE(peer->final_status().has_value());
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(peer->WaitForEnd());
  EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  auto disconnected = Values(kLifecycle)[1];
  EXPECT_EQ(Field(disconnected, "reason"), "timeout");
  EXPECT_EQ(Field(disconnected, "duration_ms"), "180000");  // Swept at 60 s + 120 s.
}

TEST_F(EdgeTest, ClosedStreamPublishesStreamClosedOnceAndReleasesTheClaim) {
  StartEdge();
  auto peer = Admit("peer-1");
  peer->Close();
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[1], "reason"), "stream_closed");
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().peers == 0; }));
  Admit("peer-1");  // Claim released: the peer can come back.
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 3, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[2], "epoch"), "2");
}

// §5: a replacing stream is a new claim with its own, greater epoch; the
// old stream's disconnected (its epoch) comes before the new connected.
TEST_F(EdgeTest, ReplacingStreamGetsItsOwnGreaterEpoch) {
  EdgeOptions options = TestEdgeOptions();
  options.duplicate_policy = DuplicatePolicy::kReplace;
  StartEdge(options);
  auto first = Admit("peer-1");
  auto second = Admit("peer-1");
  ASSERT_TRUE(first->WaitForEnd());
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 3, absl::Seconds(5)));
  auto events = Values(kLifecycle);
  const std::string old_epoch = Field(events[0], "epoch");
  EXPECT_EQ(Field(events[1], "event_type"), "disconnected");
  EXPECT_EQ(Field(events[1], "epoch"), old_epoch);
  EXPECT_EQ(Field(events[2], "event_type"), "connected");
  EXPECT_GT(std::stoll(Field(events[2], "epoch")), std::stoll(old_epoch));
  // The old stream's release (after its disconnected is stored) leaves the
  // new claim alone.
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().peers == 1; }));
  EXPECT_EQ(cluster_.Holder("peer-1"), "edge-1");
  EXPECT_EQ(std::to_string(cluster_.Epoch("peer-1").value_or(-1)), Field(events[2], "epoch"));
}

// §5: the claim goes only once the bus has stored the stream's disconnected,
// so no later connected of the peer (on any edge) can precede it.
TEST_F(EdgeTest, ClaimIsReleasedOnlyOnceTheDisconnectedIsStored) {
  testing::FakeMessageBusOptions bus_options;
  bus_options.mode = testing::DeliveryMode::kManual;
  StartEdge(TestEdgeOptions(), bus_options);
  auto peer = Admit("peer-1");
  peer->Close();
  ASSERT_TRUE(peer->WaitForEnd());
  ASSERT_TRUE(WaitFor([&] { return bus_->Published(kLifecycle).size() == 2; }));
  EXPECT_EQ(Field(Values(kLifecycle)[1], "event_type"), "disconnected");
  EXPECT_EQ(cluster_.Holder("peer-1"), "edge-1");  // not stored yet: still held
  EXPECT_EQ(edge_->stats().peers, 1);

  bus_->DeliverPending();
  ASSERT_TRUE(WaitFor([&] { return !cluster_.Holder("peer-1").has_value(); }));
  EXPECT_TRUE(WaitFor([&] { return edge_->stats().peers == 0; }));
}

// §5: an edge that dies holding claims (here its lease expires) gets, from
// a live edge, one disconnected per claim: reason edge_lost, the dead
// edge's id and the claim's epoch; the peer can then be claimed anew.
TEST_F(EdgeTest, DeadEdgesClaimsArePublishedAsEdgeLost) {
  StartEdge();
  testing::FakeTracker dead(&cluster_, "edge-dead");
  ASSERT_TRUE(dead.Start().ok());
  int64_t epoch = -1;
  dead.Claim("peer-9", clock_.Now() + absl::Seconds(1),
             [&](absl::StatusOr<PeerClaim> c) { epoch = c->epoch.value_or(-1); });
  ASSERT_GT(epoch, 0);

  cluster_.ExpireEdge("edge-dead");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  auto lost = bus_->Published(kLifecycle)[0];
  EXPECT_EQ(lost.key, "peer-9");
  EXPECT_EQ(Field(lost.value, "peer_id"), "peer-9");
  EXPECT_EQ(Field(lost.value, "event_type"), "disconnected");
  EXPECT_EQ(Field(lost.value, "reason"), "edge_lost");
  EXPECT_EQ(Field(lost.value, "edge_id"), "edge-dead");
  EXPECT_EQ(Field(lost.value, "epoch"), std::to_string(epoch));
  EXPECT_NE(Field(lost.value, "timestamp"), "<absent>");
  ASSERT_TRUE(WaitFor([&] { return cluster_.lost_count() == 0; }));

  Admit("peer-9");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  auto connected = Values(kLifecycle)[1];
  EXPECT_EQ(Field(connected, "event_type"), "connected");
  EXPECT_GT(std::stoll(Field(connected, "epoch")), epoch);
}

// §5: with no edge alive when a claim was lost, the first edge to start
// publishes its edge_lost.
TEST_F(EdgeTest, FirstEdgeToStartPublishesClaimsLostWhileNoneWasAlive) {
  testing::FakeTracker dead(&cluster_, "edge-dead");
  ASSERT_TRUE(dead.Start().ok());
  dead.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  cluster_.ExpireEdge("edge-dead");
  EXPECT_EQ(cluster_.lost_count(), 1u);

  StartEdge();
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  auto lost = Values(kLifecycle)[0];
  EXPECT_EQ(Field(lost, "reason"), "edge_lost");
  EXPECT_EQ(Field(lost, "edge_id"), "edge-dead");
  EXPECT_TRUE(WaitFor([&] { return cluster_.lost_count() == 0; }));
}

TEST_F(EdgeTest, ShutdownEndsEveryStreamWithUnavailableAndPublishesEveryDisconnect) {
  StartEdge();
  std::vector<std::shared_ptr<testing::FakePeerTransport::Peer>> peers;
  for (int i = 0; i < 10; ++i) peers.push_back(Admit("peer-" + std::to_string(i)));
  edge_->Shutdown(clock_.Now() + absl::Seconds(15));
  for (auto& peer : peers) {
    ASSERT_TRUE(peer->final_status().has_value());
    EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kUnavailable);
  }
  auto events = Values(kLifecycle);
  ASSERT_EQ(events.size(), 20u);
  int shutdowns = 0;
  for (const auto& e : events) shutdowns += Field(e, "reason") == "shutdown";
  EXPECT_EQ(shutdowns, 10);
  EXPECT_EQ(Refusal(Caller("late")).code(), absl::StatusCode::kUnavailable);
}

TEST_F(EdgeTest, DrainEndsStreamsAtTheConfiguredRate) {
  EdgeOptions options = TestEdgeOptions();
  options.drain_rate_per_sec = 20;  // Two per 100 ms step.
  StartEdge(options);
  std::vector<std::shared_ptr<testing::FakePeerTransport::Peer>> peers;
  for (int i = 0; i < 6; ++i) peers.push_back(Admit("peer-" + std::to_string(i)));
  const auto ended = [&] {
    int n = 0;
    for (auto& p : peers) n += p->final_status().has_value();
    return n;
  };
  edge_->Drain();
  ASSERT_TRUE(WaitFor([&] { return ended() == 2; }));
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return ended() == 4; }));
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return ended() == 6; }));
}

// --- WebRTC (§6) ---

TEST_F(EdgeTest, WebRtcSessionRequestIsAnsweredByTheBackendReply) {
  StartEdge();
  auto peer = Admit("peer-1");
  EdgeWebRTCMessage request;
  request.set_request_id("w1");
  request.mutable_stream_session_request()->set_session_id("s1");
  request.mutable_stream_session_request()->set_catalog_id("c1");
  std::thread backend([&] {
    ASSERT_TRUE(bus_->WaitForPublished("webrtc-signaling", 1, absl::Seconds(5)));
    auto event = Values("webrtc-signaling")[0];
    EXPECT_EQ(Field(event, "origin"), "call");
    EXPECT_EQ(Field(event, "kind"), "stream_session_request");
    Produce(R"({"type":"webrtc_reply","peer_id":"peer-1","request_id":")" +
            Field(event, "request_id") +
            R"(","webrtc":{"sdp_offer":{"session_id":"s1","sdp":"v=0"}}})");
  });
  auto reply = transport_.CallWebRtc(Caller("peer-1"), request);
  backend.join();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->sdp_offer().sdp(), "v=0");
  // The session is open: an answer is published and acknowledged.
  EdgeWebRTCMessage answer;
  answer.set_request_id("w2");
  answer.mutable_sdp_answer()->set_session_id("s1");
  auto ack = transport_.CallWebRtc(Caller("peer-1"), answer);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->stream_session_response().success());
  EXPECT_EQ(ack->stream_session_response().session_id(), "s1");
}

TEST_F(EdgeTest, WebRtcCallerChecksAndUnknownSessions) {
  StartEdge();
  EdgeWebRTCMessage answer;
  answer.mutable_sdp_answer()->set_session_id("nope");
  EXPECT_EQ(transport_.CallWebRtc(PeerCallInfo{}, answer).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(transport_.CallWebRtc(Caller("peer-1"), answer).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto peer = Admit("peer-1");
  EXPECT_EQ(transport_.CallWebRtc(Caller("peer-1"), answer).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EdgeTest, WebRtcReplyTimesOutAndSessionsExpire) {
  StartEdge();
  auto peer = Admit("peer-1");
  EdgeWebRTCMessage request;
  request.mutable_stream_session_request()->set_session_id("s1");
  std::thread advance([&] {
    ASSERT_TRUE(bus_->WaitForPublished("webrtc-signaling", 1, absl::Seconds(5)));
    clock_.Advance(absl::Seconds(10));
  });
  auto reply = transport_.CallWebRtc(Caller("peer-1"), request);
  advance.join();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded);
  // Keep the peer alive while the session ages past its TTL.
  EdgeWebRTCMessage ice;
  ice.mutable_ice_candidate()->set_session_id("s1");
  ASSERT_TRUE(transport_.CallWebRtc(Caller("peer-1"), ice).ok());
  for (int i = 0; i < 6; ++i) {
    peer->Send(Keepalive("k" + std::to_string(i)));
    transport_.Flush();
    clock_.Advance(absl::Seconds(60));
  }
  EXPECT_EQ(transport_.CallWebRtc(Caller("peer-1"), ice).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(EdgeTest, DisconnectFailsAPendingWebRtcCall) {
  StartEdge();
  auto peer = Admit("peer-1");
  EdgeWebRTCMessage request;
  request.mutable_stream_session_request()->set_session_id("s1");
  std::thread closer([&] {
    ASSERT_TRUE(bus_->WaitForPublished("webrtc-signaling", 1, absl::Seconds(5)));
    peer->Close();
  });
  auto reply = transport_.CallWebRtc(Caller("peer-1"), request);
  closer.join();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
}

// --- memory bounded in bytes (issue: hostile inputs) ---

// A file_hash command whose catalog_id has `bytes` bytes.
std::string BigCommand(const std::string& peer_id, size_t bytes, int n) {
  return R"({"type":"file_hash","peer_id":")" + peer_id + R"(","request_id":"big-)" +
         std::to_string(n) + R"(","catalog_id":")" + std::string(bytes, 'c') + R"("})";
}

TEST_F(EdgeTest, SendQueueBoundedInBytesMakesThePeerSlow) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.peer_send_queue_max_bytes = 1 << 20;
  StartEdge(options);
  auto peer = Admit("peer-1");
  peer->StopReading();
  // Each command holds ~400 KB (its message and its record): one in flight,
  // one queued, the third passes 1 MiB, though far below the count bound.
  for (int i = 0; i < 3; ++i) Produce(BigCommand("peer-1", 200 * 1024, i));
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[1], "reason"), "slow");
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 2, absl::Seconds(5)));
  // The stuck write fails when the connection goes: every command has an
  // outcome.
  peer->Close();
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 3, absl::Seconds(5)));
  auto letters = bus_->Published(kDeadLetters);
  for (const auto& letter : letters) EXPECT_EQ(Field(letter.value, "reason"), "peer_slow");
  EXPECT_EQ(Field(letters[0].value, "detail"),
            "the peer's send queue was full (PEER_SEND_QUEUE_MAX_BYTES)");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == 3; }));
}

TEST_F(EdgeTest, CommandLargerThanTheByteBoundAloneIsDelivered) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.peer_send_queue_max_bytes = 64 * 1024;
  StartEdge(options);
  auto peer = Admit("peer-1");
  // Written one after the other: each finds the queue empty. A command
  // counts against the bound until its write completes (its outcome), which
  // may come just after the peer has read it: wait for the outcome.
  for (int i = 0; i < 3; ++i) {
    Produce(BigCommand("peer-1", 100 * 1024, i));
    ASSERT_TRUE(peer->WaitForReceived(static_cast<size_t>(i + 1)));
    ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == i + 1; }));
  }
  EXPECT_FALSE(peer->final_status().has_value());
  EXPECT_TRUE(bus_->Published(kDeadLetters).empty());
}

TEST_F(EdgeTest, DeadLettersWaitWhileTheEventBufferIsFull) {
  testing::FakeMessageBusOptions bus;
  bus.capacity = 2;
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options, bus);
  auto peer = Admit("peer-1");
  // `connected` stored and completed: nothing waits.
  ASSERT_TRUE(
      WaitFor([&] { return Values(kLifecycle).size() == 1 && bus_->PendingPublishes() == 0; }));
  bus_->SetUnavailable(true);  // The broker stops answering.
  PeerMessage m;
  m.set_request_id("d1");
  m.mutable_file_delete_response()->set_catalog_id("c1");
  peer->Send(m);
  peer->Send(m);
  ASSERT_TRUE(WaitFor([&] { return bus_->PendingPublishes() == 2; }));
  EXPECT_FALSE(edge_->Ready());

  // A poison command's letter does not grow the full buffer: it waits, and
  // so does the command's commit.
  Produce("{not json");
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().commands_deadlettered == 1; }));
  EXPECT_EQ(bus_->PendingPublishes(), 2u);
  EXPECT_EQ(bus_->OutstandingRecords(), 1u);
  EXPECT_EQ(bus_->Committed("edge-commands-edge-1", 0), 0);

  bus_->SetUnavailable(false);
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(5)));
  EXPECT_EQ(Field(bus_->Published(kDeadLetters)[0].value, "reason"), "invalid_json");
  ASSERT_TRUE(WaitFor([&] { return bus_->Committed("edge-commands-edge-1", 0) == 1; }));
  ASSERT_TRUE(WaitFor([&] { return edge_->Ready(); }));
}

TEST_F(EdgeTest, WaitingDeadLettersGoToTheBusAtShutdown) {
  testing::FakeMessageBusOptions bus;
  bus.capacity = 1;
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options, bus);
  auto peer = Admit("peer-1");
  // `connected` stored and completed: nothing waits.
  ASSERT_TRUE(
      WaitFor([&] { return Values(kLifecycle).size() == 1 && bus_->PendingPublishes() == 0; }));
  bus_->SetUnavailable(true);
  PeerMessage m;
  m.set_request_id("d1");
  m.mutable_file_delete_response()->set_catalog_id("c1");
  peer->Send(m);
  ASSERT_TRUE(WaitFor([&] { return bus_->PendingPublishes() == 1; }));
  Produce("{not json");
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().commands_deadlettered == 1; }));
  EXPECT_EQ(bus_->PendingPublishes(), 1u);
  // The bus waits for outcomes until a real-time deadline.
  std::thread shutdown([&] { edge_->Shutdown(absl::Now() + absl::Seconds(10)); });
  // Handed to the bus at shutdown; stored once the broker answers again.
  ASSERT_TRUE(WaitFor([&] { return bus_->PendingPublishes() >= 3; }));
  bus_->SetUnavailable(false);
  shutdown.join();
  ASSERT_EQ(bus_->Published(kDeadLetters).size(), 1u);
  EXPECT_EQ(bus_->Committed("edge-commands-edge-1", 0), 1);
}

TEST_F(EdgeTest, WebRtcCallIsRefusedWhileTheEventBufferIsFull) {
  testing::FakeMessageBusOptions bus;
  bus.capacity = 1;
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  StartEdge(options, bus);
  bus_->SetUnavailable(true);
  auto peer = Admit("peer-1");  // Its `connected` fills the buffer.
  ASSERT_TRUE(WaitFor([&] { return bus_->PendingPublishes() == 1; }));
  EdgeWebRTCMessage request;
  request.set_request_id("w1");
  request.mutable_stream_session_request()->set_session_id("s1");
  request.mutable_stream_session_request()->set_catalog_id("c1");
  auto reply = transport_.CallWebRtc(Caller("peer-1"), request);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(bus_->PendingPublishes(), 1u);  // Nothing more was buffered.
  bus_->SetUnavailable(false);
}

TEST_F(EdgeTest, WebRtcSessionsPerPeerAreCappedAndFreedByDisconnect) {
  EdgeOptions options = TestEdgeOptions();
  options.webrtc_max_sessions_per_peer = 2;
  StartEdge(options);
  auto peer = Admit("peer-1");
  auto other = Admit("peer-2");
  auto open = [&](const std::string& caller, const std::string& session) {
    EdgeWebRTCMessage request;
    request.mutable_stream_session_request()->set_session_id(session);
    // No backend answers and the clock stands still: the session stays open
    // and the caller stops waiting after a moment.
    return transport_.CallWebRtc(Caller(caller), request, absl::Milliseconds(100)).status();
  };
  EXPECT_EQ(open("peer-1", "s1").code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(open("peer-1", "s2").code(), absl::StatusCode::kDeadlineExceeded);
  absl::Status third = open("peer-1", "s3");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted) << third;
  EXPECT_NE(third.message().find("WEBRTC_MAX_SESSIONS_PER_PEER"), absl::string_view::npos);
  // Another peer has its own allowance.
  EXPECT_EQ(open("peer-2", "t1").code(), absl::StatusCode::kDeadlineExceeded);
  // The disconnect ends peer-1's sessions, and only those.
  peer->Close();
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().peers == 1; }));
  peer = Admit("peer-1");
  EXPECT_EQ(open("peer-1", "s3").code(), absl::StatusCode::kDeadlineExceeded);
  EdgeWebRTCMessage ice;
  ice.mutable_ice_candidate()->set_session_id("t1");
  EXPECT_TRUE(transport_.CallWebRtc(Caller("peer-2"), ice).ok());
}

TEST_F(EdgeTest, WebRtcCallsShareThePeersMessageRateLimit) {
  EdgeOptions options = TestEdgeOptions();
  options.peer_max_messages_per_sec = 2;
  StartEdge(options);
  auto peer = Admit("peer-1");
  EdgeWebRTCMessage ice;
  ice.mutable_ice_candidate()->set_session_id("unknown");
  // The bucket holds one second's worth: two calls, then the third is over.
  EXPECT_EQ(transport_.CallWebRtc(Caller("peer-1"), ice).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(transport_.CallWebRtc(Caller("peer-1"), ice).status().code(),
            absl::StatusCode::kNotFound);
  absl::Status over = transport_.CallWebRtc(Caller("peer-1"), ice).status();
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted) << over;
  EXPECT_NE(over.message().find("PEER_MAX_MESSAGES_PER_SEC"), absl::string_view::npos);
  // As for stream messages, the peer is disconnected.
  ASSERT_TRUE(peer->WaitForEnd());
  EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[1], "reason"), "error");
}

TEST_F(EdgeTest, LargeCatalogIsSplitIntoRecordsThatFitAndAcknowledgedOnceAllAreStored) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.max_event_bytes = 2000;
  StartEdge(options);
  auto peer = Admit("peer-1");
  PeerMessage catalog;
  catalog.set_request_id("c1");
  for (int i = 0; i < 300; ++i) {
    // Control characters take six bytes each in JSON.
    catalog.mutable_catalog_announcement()->add_catalog_ids(absl::StrCat("movie-\x01-", i));
  }
  bus_->SetUnavailable(true);
  peer->Send(catalog);
  transport_.Flush();
  EXPECT_TRUE(peer->Received().empty());  // No part stored yet: no ack.
  bus_->SetUnavailable(false);
  ASSERT_TRUE(peer->WaitForReceived(1));
  EXPECT_EQ(peer->Received()[0].request_id(), "c1");
  auto records = bus_->Published("peer-catalog-updates");
  ASSERT_GT(records.size(), 1u);
  int joined = 0;
  for (size_t k = 0; k < records.size(); ++k) {
    EXPECT_LE(records[k].value.size(), 2000u);
    EXPECT_EQ(records[k].key, "peer-1");
    auto part = ParseJson(records[k].value);
    EXPECT_EQ(Field(records[k].value, "request_id"), "c1");
    EXPECT_EQ(Field(records[k].value, "part"), std::to_string(k + 1));
    EXPECT_EQ(Field(records[k].value, "parts"), std::to_string(records.size()));
    for (const auto& id : part.fields().at("catalog_ids").list_value().values()) {
      EXPECT_EQ(id.string_value(), absl::StrCat("movie-\x01-", joined++));
    }
  }
  EXPECT_EQ(joined, 300);
}

TEST_F(EdgeTest, MessageWhoseEventCannotFitEndsTheStreamAndPublishesNothing) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.max_event_bytes = 2000;
  StartEdge(options);
  auto peer = Admit("peer-1");
  PeerMessage hash;
  hash.set_request_id("h1");
  hash.mutable_file_hash_response()->set_catalog_id("c1");
  (*hash.mutable_file_hash_response()->mutable_hashes())["sha256"] = std::string(3000, 'a');
  peer->Send(hash);
  ASSERT_TRUE(peer->WaitForEnd());
  EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(peer->final_status()->message().find("over the event bus's limit of 2000 bytes"),
            absl::string_view::npos)
      << *peer->final_status();
  EXPECT_TRUE(bus_->Published("file-hash-responses").empty());
  // A catalog with one id too large for any record is refused the same way.
  auto second = Admit("peer-2");
  PeerMessage catalog;
  catalog.set_request_id("c1");
  catalog.mutable_catalog_announcement()->add_catalog_ids(std::string(2500, 'x'));
  second->Send(catalog);
  ASSERT_TRUE(second->WaitForEnd());
  EXPECT_EQ(second->final_status()->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(bus_->Published("peer-catalog-updates").empty());
}

TEST_F(EdgeTest, StreamThatLeavesDuringItsClaimPublishesNothingAndHoldsNoClaim) {
  StartEdge();
  cluster_.SetManualDelivery(true);
  auto peer = transport_.Connect("peer-1");
  ASSERT_TRUE(WaitFor([&] { return cluster_.pending() > 0; }));
  peer->Close();  // Reset while the tracker answers, as in a rapid reset.
  ASSERT_TRUE(WaitFor([&] { return peer->final_status().has_value(); }));
  cluster_.DeliverPending();  // The claim succeeds; then its release is queued.
  cluster_.DeliverPending();
  transport_.Flush();
  EXPECT_TRUE(bus_->Published(kLifecycle).empty());
  EXPECT_EQ(cluster_.claim_count(), 0u);
  EXPECT_EQ(edge_->stats().peers, 0);
  EXPECT_EQ(edge_->stats().admitted, 0);
  // The peer can come back at once.
  cluster_.SetManualDelivery(false);
  Admit("peer-1");
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
}

// --- the operator's view (§10) ---

TEST_F(EdgeTest, OperatorFindsListsAndKicksPeersAsTheDisconnectCommandDoes) {
  StartEdge();
  auto b = Admit("peer-b");
  auto a = Admit("peer-a");
  auto c = Admit("peer-c");

  absl::StatusOr<PeerInfo> found = edge_->FindPeer("peer-a");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->peer_id, "peer-a");
  EXPECT_EQ(found->connected_at, clock_.Now());
  EXPECT_TRUE(found->epoch.has_value());
  EXPECT_TRUE(absl::IsNotFound(edge_->FindPeer("peer-z").status()));

  std::vector<std::string> ids;
  for (const PeerInfo& info : edge_->ListPeers("", 2)) ids.push_back(info.peer_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"peer-a", "peer-b"}));
  ids.clear();
  for (const PeerInfo& info : edge_->ListPeers("peer-b", 10)) ids.push_back(info.peer_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"peer-c"}));

  ASSERT_TRUE(edge_->Kick("peer-b", "disconnected by the operator").ok());
  ASSERT_TRUE(b->WaitForEnd());
  EXPECT_EQ(b->final_status()->code(), absl::StatusCode::kAborted);
  // connected x3, then the kicked peer's disconnected.
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 4, absl::Seconds(5)));
  EXPECT_EQ(Field(Values(kLifecycle)[3], "reason"), "kicked");
  EXPECT_EQ(Field(Values(kLifecycle)[3], "peer_id"), "peer-b");
  EXPECT_TRUE(absl::IsNotFound(edge_->Kick("peer-b", "again")));
  EXPECT_TRUE(absl::IsNotFound(edge_->FindPeer("peer-b").status()));
}

}  // namespace
}  // namespace edge
