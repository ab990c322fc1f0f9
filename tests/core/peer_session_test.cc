// PeerSession alone, against a TestSessionHost: what it publishes, writes,
// dead-letters and tells its host, through its public methods.
#include "core/peer_session.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/events.h"
#include "core/test_session_host.h"
#include "edge_fixture.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

class PeerSessionTest : public ::testing::Test {
 protected:
  static EdgeOptions Options() {
    EdgeOptions o = TestEdgeOptions();
    o.peer_send_queue_max = 2;
    return o;
  }

  void SetUp() override {
    stream_ = std::make_shared<TestPeerStream>("peer-1");
    session_ = std::make_shared<PeerSession>(&host_, stream_, "peer-1", host_.clock().Now());
  }

  // Writes left under way hold their session; completing them (failed)
  // lets it go.
  void TearDown() override {
    while (stream_->CompleteWrite(false)) {
    }
  }

  static EdgeMessage Command(const std::string& request_id) {
    EdgeMessage m;
    m.set_request_id(request_id);
    m.mutable_file_hash_request()->set_catalog_id("c1");
    return m;
  }

  TestSessionHost host_{Options()};
  std::shared_ptr<TestPeerStream> stream_;
  std::shared_ptr<PeerSession> session_;
};

TEST_F(PeerSessionTest, ActivatePublishesConnectedKeyedByPeer) {
  EXPECT_FALSE(session_->active());
  session_->Activate(PeerClaim{7});
  EXPECT_TRUE(session_->active());
  auto lifecycle = host_.PublishedOn(host_.options().topics.lifecycle);
  ASSERT_EQ(lifecycle.size(), 1u);
  EXPECT_EQ(lifecycle[0].key, "peer-1");
  EXPECT_EQ(Field(lifecycle[0].value, "event_type"), "connected");
  EXPECT_EQ(Field(lifecycle[0].value, "peer_id"), "peer-1");
  EXPECT_EQ(Field(lifecycle[0].value, "edge_id"), "edge-1");
  EXPECT_EQ(Field(lifecycle[0].value, "epoch"), "7");
}

TEST_F(PeerSessionTest, PeerMessageIsPublishedAndAcknowledgedOnceStored) {
  session_->Activate(PeerClaim{});
  PeerMessage message;
  message.set_request_id("r1");
  message.mutable_file_hash_response()->set_catalog_id("c1");
  EXPECT_TRUE(session_->OnMessage(message));
  EXPECT_EQ(host_.peer_messages(SessionHost::PeerMessageKind::kRead), 1);

  auto events = host_.PublishedOn(host_.options().topics.file_hash_responses);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, "peer-1");
  EXPECT_EQ(Field(events[0].value, "request_id"), "r1");
  EXPECT_TRUE(stream_->written().empty()) << "acknowledged before the event was stored";

  ASSERT_TRUE(host_.StoreNext());  // the event (`connected` asks for no answer)
  auto written = stream_->written();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].request_id(), "r1");
  EXPECT_EQ(written[0].edge_id(), "edge-1");
  EXPECT_EQ(written[0].payload_case(), EdgeMessage::PAYLOAD_NOT_SET);
}

TEST_F(PeerSessionTest, EmptyCatalogAnnouncementIsAKeepaliveNotPublished) {
  session_->Activate(PeerClaim{});
  PeerMessage keepalive;
  keepalive.set_request_id("k1");
  keepalive.mutable_catalog_announcement();
  EXPECT_TRUE(session_->OnMessage(keepalive));
  EXPECT_EQ(host_.peer_messages(SessionHost::PeerMessageKind::kKeepalive), 1);
  EXPECT_TRUE(host_.PublishedOn(host_.options().topics.catalog_updates).empty());
  auto written = stream_->written();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].request_id(), "k1");
}

TEST_F(PeerSessionTest, SaturatedBusStopsReading) {
  session_->Activate(PeerClaim{});
  host_.SetKeepReading(false);
  PeerMessage message;
  message.set_request_id("r1");
  message.mutable_file_delete_response()->set_catalog_id("c1");
  EXPECT_FALSE(session_->OnMessage(message));
}

TEST_F(PeerSessionTest, CommandIsDeliveredWhenItsWriteCompletes) {
  session_->Activate(PeerClaim{});
  bool done = false;
  session_->SendCommand(Command("cmd-1"), IncomingRecord{}, [&done] { done = true; });
  auto written = stream_->written();
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].request_id(), "cmd-1");
  EXPECT_FALSE(done);
  ASSERT_TRUE(stream_->CompleteWrite(true));
  EXPECT_TRUE(done);
  EXPECT_EQ(host_.delivered(), 1);
  EXPECT_EQ(host_.dead_letter_count(), 0u);
}

TEST_F(PeerSessionTest, FailedWriteDeadLettersTheCommand) {
  session_->Activate(PeerClaim{});
  bool done = false;
  IncomingRecord record;
  record.offset = 41;
  session_->SendCommand(Command("cmd-1"), record, [&done] { done = true; });
  ASSERT_TRUE(stream_->CompleteWrite(false));
  ASSERT_EQ(host_.dead_letter_count(), 1u);
  EXPECT_EQ(host_.dead_letter(0).reason, DeadLetterReason::kPeerWriteFailed);
  EXPECT_EQ(host_.dead_letter(0).peer_id, "peer-1");
  EXPECT_EQ(host_.dead_letter(0).record.offset, 41);
  EXPECT_TRUE(done) << "the dead letter is the command's outcome";
  EXPECT_EQ(host_.delivered(), 0);
}

TEST_F(PeerSessionTest, FullSendQueueEndsThePeerAsSlow) {
  session_->Activate(PeerClaim{});
  // The first is in flight (pending), the second queued: the queue holds
  // PEER_SEND_QUEUE_MAX (2); the third makes the peer slow.
  for (int i = 0; i < 3; ++i) {
    IncomingRecord record;
    record.offset = i;
    session_->SendCommand(Command(absl::StrCat("cmd-", i)), record, nullptr);
  }
  ASSERT_TRUE(stream_->finished().has_value());
  EXPECT_EQ(stream_->finished()->code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(session_->ended_slow());
  ASSERT_EQ(host_.dead_letter_count(), 2u);
  EXPECT_EQ(host_.dead_letter(0).reason, DeadLetterReason::kPeerSlow);
  EXPECT_EQ(host_.dead_letter(0).record.offset, 1);
  EXPECT_EQ(host_.dead_letter(1).record.offset, 2);
  auto disconnected = host_.PublishedOn(host_.options().topics.lifecycle);
  ASSERT_EQ(disconnected.size(), 2u);
  EXPECT_EQ(Field(disconnected[1].value, "event_type"), "disconnected");
  EXPECT_EQ(Field(disconnected[1].value, "reason"), "slow");
}

TEST_F(PeerSessionTest, EndsWithItsHostOnlyOnceDisconnectedIsStored) {
  session_->Activate(PeerClaim{});
  session_->OnEnd(absl::CancelledError("the peer went away"));
  EXPECT_TRUE(session_->ending());
  auto lifecycle = host_.PublishedOn(host_.options().topics.lifecycle);
  ASSERT_EQ(lifecycle.size(), 2u);
  EXPECT_EQ(Field(lifecycle[1].value, "event_type"), "disconnected");
  EXPECT_EQ(Field(lifecycle[1].value, "reason"), "stream_closed");
  EXPECT_EQ(host_.sessions_ended(), 0);
  ASSERT_TRUE(host_.StoreNext());  // disconnected
  EXPECT_EQ(host_.sessions_ended(), 1);
}

TEST_F(PeerSessionTest, CommandsQueuedAtTheEndAreDeadLettered) {
  session_->Activate(PeerClaim{});
  session_->SendCommand(Command("in-flight"), IncomingRecord{}, nullptr);
  IncomingRecord queued;
  queued.offset = 9;
  session_->SendCommand(Command("queued"), queued, nullptr);
  session_->OnEnd(absl::CancelledError("the peer went away"));
  ASSERT_EQ(host_.dead_letter_count(), 1u);
  EXPECT_EQ(host_.dead_letter(0).reason, DeadLetterReason::kPeerWriteFailed);
  EXPECT_EQ(host_.dead_letter(0).record.offset, 9);
  ASSERT_TRUE(stream_->CompleteWrite(false));
  ASSERT_EQ(host_.dead_letter_count(), 2u);
  EXPECT_EQ(host_.dead_letter(1).reason, DeadLetterReason::kPeerWriteFailed);
}

}  // namespace
}  // namespace edge
