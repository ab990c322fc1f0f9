// WebRtcRelay alone, against a TestSessionHost: calls published, replies
// relayed or timed out, early ICE candidates held until the answer.
#include "core/webrtc_relay.h"

#include <optional>
#include <string>

#include "core/events.h"
#include "core/test_session_host.h"
#include "edge_fixture.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

class WebRtcRelayUnitTest : public ::testing::Test {
 protected:
  void SetUp() override { host_.SetPeerActive("peer-1", true); }

  static EdgeWebRTCMessage SessionRequest(const std::string& request_id,
                                          const std::string& session_id) {
    EdgeWebRTCMessage m;
    m.set_request_id(request_id);
    m.mutable_stream_session_request()->set_session_id(session_id);
    return m;
  }

  // Calls the relay; the reply lands in `*out`.
  void Call(EdgeWebRTCMessage request, std::optional<absl::StatusOr<PeerWebRTCMessage>>* out) {
    relay().OnCall("peer-1", std::move(request),
                   [out](absl::StatusOr<PeerWebRTCMessage> reply) { *out = std::move(reply); });
  }

  WebRtcRelay& relay() { return host_.webrtc(); }

  TestSessionHost host_{TestEdgeOptions()};
};

TEST_F(WebRtcRelayUnitTest, SessionRequestIsPublishedAndItsReplyRelayed) {
  std::optional<absl::StatusOr<PeerWebRTCMessage>> reply;
  Call(SessionRequest("req-1", "s1"), &reply);
  auto calls = host_.PublishedOn(host_.options().topics.webrtc_signaling);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].key, "peer-1");
  EXPECT_EQ(Field(calls[0].value, "peer_id"), "peer-1");
  EXPECT_EQ(relay().pending_calls(), 1u);
  EXPECT_FALSE(reply.has_value());

  PeerWebRTCMessage answer;
  answer.set_request_id("req-1");
  answer.mutable_stream_session_response()->set_session_id("s1");
  answer.mutable_stream_session_response()->set_success(true);
  EXPECT_TRUE(relay().OnReply("req-1", answer));
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->ok()) << reply->status();
  EXPECT_EQ((*reply)->stream_session_response().session_id(), "s1");
  EXPECT_EQ(relay().pending_calls(), 0u);
  EXPECT_FALSE(relay().OnReply("req-1", answer)) << "a reply is relayed once";
}

TEST_F(WebRtcRelayUnitTest, CallWithoutReplyTimesOut) {
  std::optional<absl::StatusOr<PeerWebRTCMessage>> reply;
  Call(SessionRequest("req-1", "s1"), &reply);
  host_.fake_clock().Advance(host_.options().webrtc_reply_timeout - absl::Milliseconds(1));
  EXPECT_FALSE(reply.has_value());
  host_.fake_clock().Advance(absl::Milliseconds(1));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(relay().OnReply("req-1", PeerWebRTCMessage()));
}

TEST_F(WebRtcRelayUnitTest, CallOfAPeerThatIsGoneFails) {
  host_.SetPeerActive("peer-1", false);
  std::optional<absl::StatusOr<PeerWebRTCMessage>> reply;
  Call(SessionRequest("req-1", "s1"), &reply);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(relay().sessions(), 0u);
  EXPECT_EQ(host_.fake_clock().pending_timers(), 0u);
}

TEST_F(WebRtcRelayUnitTest, EarlyCandidateIsHeldUntilTheAnswerIsStored) {
  std::optional<absl::StatusOr<PeerWebRTCMessage>> opened;
  Call(SessionRequest("req-1", "s1"), &opened);

  EdgeMessage candidate;
  candidate.mutable_webrtc()->mutable_ice_candidate()->set_session_id("s1");
  candidate.mutable_webrtc()->mutable_ice_candidate()->set_candidate("cand-1");
  IncomingRecord record;
  RecordDone done = [] {};
  EXPECT_TRUE(relay().HoldIfEarly("peer-1", candidate, record, done));
  EXPECT_TRUE(host_.sent().empty());

  EdgeWebRTCMessage answer;
  answer.set_request_id("req-2");
  answer.mutable_sdp_answer()->set_session_id("s1");
  std::optional<absl::StatusOr<PeerWebRTCMessage>> answered;
  Call(answer, &answered);
  EXPECT_TRUE(host_.sent().empty()) << "sent before the answer was stored";
  ASSERT_TRUE(host_.StoreNext());  // the session request's publish
  ASSERT_TRUE(host_.StoreNext());  // the answer's publish
  ASSERT_TRUE(answered.has_value());
  EXPECT_TRUE(answered->ok()) << answered->status();
  auto sent = host_.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].peer_id, "peer-1");
  EXPECT_EQ(sent[0].message.webrtc().ice_candidate().candidate(), "cand-1");

  // After the answer, candidates go straight through.
  EdgeMessage later = candidate;
  EXPECT_FALSE(relay().HoldIfEarly("peer-1", later, record, done));
}

TEST_F(WebRtcRelayUnitTest, PeerGoneFailsItsCallsAndDeadLettersHeldCandidates) {
  std::optional<absl::StatusOr<PeerWebRTCMessage>> reply;
  Call(SessionRequest("req-1", "s1"), &reply);
  EdgeMessage candidate;
  candidate.mutable_webrtc()->mutable_ice_candidate()->set_session_id("s1");
  IncomingRecord record;
  record.offset = 5;
  bool done_ran = false;
  RecordDone done = [&done_ran] { done_ran = true; };
  ASSERT_TRUE(relay().HoldIfEarly("peer-1", candidate, record, done));

  relay().OnPeerGone("peer-1");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), absl::StatusCode::kUnavailable);
  ASSERT_EQ(host_.dead_letter_count(), 1u);
  EXPECT_EQ(host_.dead_letter(0).reason, DeadLetterReason::kPeerNotConnected);
  EXPECT_EQ(host_.dead_letter(0).record.offset, 5);
  EXPECT_TRUE(done_ran);
  EXPECT_EQ(relay().sessions(), 0u);
  EXPECT_EQ(host_.fake_clock().pending_timers(), 0u);
}

}  // namespace
}  // namespace edge
