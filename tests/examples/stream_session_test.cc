#include "examples/peer/stream_session.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "examples/peer/example_peer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace example {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kOffer[] =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:video0\r\na=recvonly\r\n";

class StreamSessionTest : public ::testing::Test {
 protected:
  StreamSessionTest() : session_("movie-1", [this] { return absl::StrCat("id-", ++ids_); }) {}

  PeerWebRTCMessage Offer(const std::string& request_id, const std::string& session_id) {
    PeerWebRTCMessage reply;
    reply.set_request_id(request_id);
    reply.mutable_sdp_offer()->set_session_id(session_id);
    reply.mutable_sdp_offer()->set_sdp(kOffer);
    return reply;
  }

  PeerWebRTCMessage Ack(const EdgeWebRTCMessage& sent, bool success = true) {
    PeerWebRTCMessage reply;
    reply.set_request_id(sent.request_id());
    reply.mutable_stream_session_response()->set_session_id(session_.session_id());
    reply.mutable_stream_session_response()->set_success(success);
    return reply;
  }

  // Request, offer, answer, acknowledgement: a connected session.
  void Connect() {
    EdgeWebRTCMessage request = session_.Request();
    auto answer = session_.OnOffer(Offer(request.request_id(), "id-1"));
    ASSERT_TRUE(answer.ok()) << answer.status();
    ASSERT_TRUE(session_.OnAcknowledged(*answer, Ack(*answer)).ok());
  }

  int ids_ = 0;
  StreamSession session_;
};

TEST_F(StreamSessionTest, RequestOpensAFreshSessionForTheCatalogId) {
  EXPECT_EQ(session_.session_id(), "id-1");
  EdgeWebRTCMessage request = session_.Request();
  EXPECT_EQ(request.request_id(), "id-2");
  ASSERT_TRUE(request.has_stream_session_request());
  EXPECT_EQ(request.stream_session_request().catalog_id(), "movie-1");
  EXPECT_EQ(request.stream_session_request().session_id(), "id-1");
  EXPECT_EQ(SessionIdOf(request), "id-1");
  EXPECT_EQ(session_.state(), StreamSession::State::kRequested);
}

TEST_F(StreamSessionTest, OfferIsAnsweredInTheOffersMediaSection) {
  EdgeWebRTCMessage request = session_.Request();
  auto answer = session_.OnOffer(Offer(request.request_id(), "id-1"));
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->request_id(), "id-3");  // a call of its own
  ASSERT_TRUE(answer->has_sdp_answer());
  EXPECT_EQ(answer->sdp_answer().session_id(), "id-1");
  EXPECT_THAT(answer->sdp_answer().sdp(), HasSubstr("a=mid:video0\r\n"));
  EXPECT_THAT(answer->sdp_answer().sdp(), HasSubstr("a=sendonly"));
  EXPECT_EQ(session_.offer_sdp(), kOffer);
  EXPECT_EQ(session_.state(), StreamSession::State::kAnswered);
  // No candidates before the answer is acknowledged.
  EXPECT_THAT(session_.LocalCandidates(), IsEmpty());

  ASSERT_TRUE(session_.OnAcknowledged(*answer, Ack(*answer)).ok());
  EXPECT_EQ(session_.state(), StreamSession::State::kConnected);
}

TEST_F(StreamSessionTest, LocalCandidatesTrickleWithFreshRequestIds) {
  Connect();
  std::vector<EdgeWebRTCMessage> candidates = session_.LocalCandidates();
  ASSERT_THAT(candidates, SizeIs(StreamSession::kLocalCandidates));
  EXPECT_EQ(candidates[0].request_id(), "id-4");
  EXPECT_EQ(candidates[1].request_id(), "id-5");
  for (const EdgeWebRTCMessage& candidate : candidates) {
    ASSERT_TRUE(candidate.has_ice_candidate());
    EXPECT_EQ(candidate.ice_candidate().session_id(), "id-1");
    EXPECT_EQ(candidate.ice_candidate().sdp_mid(), "video0");
    EXPECT_EQ(candidate.ice_candidate().sdp_m_line_index(), 0);
    EXPECT_THAT(candidate.ice_candidate().candidate(), HasSubstr("typ host"));
    EXPECT_TRUE(session_.OnAcknowledged(candidate, Ack(candidate)).ok());
  }
  EXPECT_NE(candidates[0].ice_candidate().candidate(), candidates[1].ice_candidate().candidate());
}

TEST_F(StreamSessionTest, RefusalFailsTheSessionWithItsReason) {
  EdgeWebRTCMessage request = session_.Request();
  PeerWebRTCMessage refusal;
  refusal.set_request_id(request.request_id());
  auto* response = refusal.mutable_stream_session_response();
  response->set_session_id("id-1");
  response->set_success(false);
  response->set_error(giggityflix_grpc_peer::FILE_GONE);
  auto answer = session_.OnOffer(refusal);
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(answer.status().message()), HasSubstr("FILE_GONE"));
  EXPECT_EQ(session_.state(), StreamSession::State::kFailed);
  EXPECT_EQ(session_.error(), answer.status());
}

TEST_F(StreamSessionTest, OfferForAnotherSessionOrRequestIsRejected) {
  EdgeWebRTCMessage request = session_.Request();
  auto wrong_session = session_.OnOffer(Offer(request.request_id(), "other"));
  EXPECT_EQ(wrong_session.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session_.state(), StreamSession::State::kFailed);

  StreamSession second("movie-2", [n = 0]() mutable { return absl::StrCat("s-", ++n); });
  second.Request();
  auto wrong_request = second.OnOffer(Offer("not-the-request", "s-1"));
  EXPECT_EQ(wrong_request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong_request.status().message()), HasSubstr("not-the-request"));
}

TEST_F(StreamSessionTest, OfferWithoutRequestIsNotAnswered) {
  auto answer = session_.OnOffer(Offer("id-2", "id-1"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(session_.state(), StreamSession::State::kNew);
}

TEST_F(StreamSessionTest, UnsuccessfulOrMismatchedAcknowledgementFails) {
  EdgeWebRTCMessage request = session_.Request();
  auto answer = session_.OnOffer(Offer(request.request_id(), "id-1"));
  ASSERT_TRUE(answer.ok());
  PeerWebRTCMessage other = Ack(*answer);
  other.set_request_id("someone-else");
  EXPECT_EQ(session_.OnAcknowledged(*answer, other).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(session_.state(), StreamSession::State::kFailed);

  StreamSession second("movie-2", [n = 0]() mutable { return absl::StrCat("s-", ++n); });
  EdgeWebRTCMessage second_request = second.Request();
  auto second_answer = second.OnOffer(Offer(second_request.request_id(), "s-1"));
  ASSERT_TRUE(second_answer.ok());
  PeerWebRTCMessage refused;
  refused.set_request_id(second_answer->request_id());
  refused.mutable_stream_session_response()->set_session_id("s-1");
  refused.mutable_stream_session_response()->set_success(false);
  EXPECT_FALSE(second.OnAcknowledged(*second_answer, refused).ok());
  EXPECT_EQ(second.state(), StreamSession::State::kFailed);
}

TEST_F(StreamSessionTest, FailKeepsTheFirstError) {
  session_.Request();
  session_.Fail(absl::DeadlineExceededError("no reply"));
  session_.Fail(absl::UnavailableError("later"));
  EXPECT_EQ(session_.state(), StreamSession::State::kFailed);
  EXPECT_EQ(session_.error().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(StreamSessionTest, RemoteCandidatesAreKeptInOrder) {
  Connect();
  for (const char* text : {"candidate:a 1 udp 1 198.51.100.1 1000 typ host",
                           "candidate:b 1 udp 1 198.51.100.2 1000 typ srflx", ""}) {
    EdgeWebRTCMessage message;
    message.set_request_id("backend");
    message.mutable_ice_candidate()->set_session_id("id-1");
    message.mutable_ice_candidate()->set_candidate(text);
    std::string note = session_.OnRemote(message);
    EXPECT_THAT(note, HasSubstr("id-1"));
    if (*text == '\0') {
      EXPECT_THAT(note, HasSubstr("no more candidates"));
    }
  }
  std::vector<ICECandidate> remote = session_.remote_candidates();
  ASSERT_THAT(remote, SizeIs(3));
  EXPECT_THAT(remote[0].candidate(), HasSubstr("candidate:a"));
  EXPECT_THAT(remote[1].candidate(), HasSubstr("candidate:b"));
  EXPECT_EQ(remote[2].candidate(), "");
}

TEST(ExamplePeerStreamTest, BackendCandidatesOnTheStreamReachTheirSession) {
  int ids = 0;
  auto new_id = [&ids] { return absl::StrCat("id-", ++ids); };
  ExamplePeer peer({"movie-1"}, new_id);
  auto session = std::make_shared<StreamSession>("movie-1", new_id);
  peer.AttachStream(session);

  EdgeMessage message;
  message.set_request_id("cmd-1");
  message.set_edge_id("edge-1");
  auto* candidate = message.mutable_webrtc()->mutable_ice_candidate();
  candidate->set_session_id(session->session_id());
  candidate->set_candidate("candidate:x 1 udp 1 198.51.100.9 9 typ host");
  Outcome outcome = peer.Handle(message, absl::FromUnixSeconds(0));
  EXPECT_THAT(outcome.replies, IsEmpty());  // signaling needs no answer
  EXPECT_THAT(outcome.note, HasSubstr("backend candidate 1"));
  ASSERT_THAT(session->remote_candidates(), SizeIs(1));

  candidate->set_session_id("unknown");
  outcome = peer.Handle(message, absl::FromUnixSeconds(0));
  EXPECT_THAT(outcome.note, HasSubstr("unknown session \"unknown\""));
  EXPECT_THAT(session->remote_candidates(), SizeIs(1));
  EXPECT_THAT(peer.waiting(), IsEmpty());
}

}  // namespace
}  // namespace example
}  // namespace edge
