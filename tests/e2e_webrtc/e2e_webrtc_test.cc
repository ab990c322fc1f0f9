// WebRTC session negotiation end to end (contract §6, and the webrtc rows of
// §1, §3, §4, §5): peers over real gRPC, a viewer backend over Kafka
// (EmbeddedKafka), and an edge in this process wired as edged wires it.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "e2e_webrtc/edge_harness.h"
#include "e2e_webrtc/viewer_backend.h"
#include "e2e_webrtc/webrtc_peer.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "support/child_process.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

using google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// ---- messages ----

gp::EdgeWebRTCMessage SessionRequest(const std::string& request_id, const std::string& session_id) {
  gp::EdgeWebRTCMessage m;
  m.set_request_id(request_id);
  m.mutable_stream_session_request()->set_catalog_id("movie-1");
  m.mutable_stream_session_request()->set_session_id(session_id);
  return m;
}

gp::EdgeWebRTCMessage Answer(const std::string& request_id, const std::string& session_id) {
  gp::EdgeWebRTCMessage m;
  m.set_request_id(request_id);
  m.mutable_sdp_answer()->set_session_id(session_id);
  m.mutable_sdp_answer()->set_sdp("v=0\r\na=mid:0\r\na=sendonly\r\n");
  return m;
}

gp::ICECandidate Candidate(const std::string& session_id, const std::string& text) {
  gp::ICECandidate c;
  c.set_session_id(session_id);
  c.set_candidate(text);
  c.set_sdp_mid("0");
  c.set_sdp_m_line_index(0);
  return c;
}

gp::EdgeWebRTCMessage IceCall(const std::string& request_id, const std::string& session_id,
                              const std::string& text) {
  gp::EdgeWebRTCMessage m;
  m.set_request_id(request_id);
  *m.mutable_ice_candidate() = Candidate(session_id, text);
  return m;
}

gp::PeerWebRTCMessage Offer(const std::string& session_id) {
  gp::PeerWebRTCMessage m;
  m.mutable_sdp_offer()->set_session_id(session_id);
  m.mutable_sdp_offer()->set_sdp("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n");
  return m;
}

bool IsAck(const absl::StatusOr<gp::PeerWebRTCMessage>& reply, const std::string& request_id,
           const std::string& session_id) {
  return reply.ok() && reply->request_id() == request_id &&
         reply->stream_session_response().session_id() == session_id &&
         reply->stream_session_response().success();
}

size_t CountWebRtc(const std::vector<gp::EdgeMessage>& received) {
  size_t n = 0;
  for (const gp::EdgeMessage& m : received) n += m.has_webrtc() ? 1 : 0;
  return n;
}

template <typename Message>
Message ParseMessage(const std::string& json) {
  Message m;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok()) << json;
  return m;
}

// Threads of this process now (/proc/self/status).
int ThreadCount() {
  std::string status;
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) status.append(buffer, n);
  std::fclose(f);
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::ConsumePrefix(&line, "Threads:")) {
      int threads = -1;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &threads)) return threads;
    }
  }
  return -1;
}

// The outcome of a call made with StartCall, awaited by the test. The
// callback shares its state, so a call that ends after a failed test
// returned finds it still there.
class Result {
 public:
  WebRtcPeer::Done Callback() {
    return [state = state_](absl::StatusOr<gp::PeerWebRTCMessage> reply) {
      absl::MutexLock lock(&state->mu);
      state->reply = std::move(reply);
      state->done = true;
    };
  }
  std::optional<absl::StatusOr<gp::PeerWebRTCMessage>> Wait(
      absl::Duration timeout = absl::Seconds(15)) {
    absl::MutexLock lock(&state_->mu);
    if (!state_->mu.AwaitWithTimeout(absl::Condition(&state_->done), timeout)) {
      return std::nullopt;
    }
    return state_->reply;
  }
  bool done() {
    absl::MutexLock lock(&state_->mu);
    return state_->done;
  }

 private:
  struct State {
    absl::Mutex mu;
    bool done ABSL_GUARDED_BY(mu) = false;
    absl::StatusOr<gp::PeerWebRTCMessage> reply ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// ---- fixture ----

class E2eWebRtcTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto kafka = kafka::EmbeddedKafka::Create(1);
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = kafka->release();
  }
  static void TearDownTestSuite() {
    delete kafka_;
    kafka_ = nullptr;
  }

  void StartEdge(EdgeHarnessOptions options = {}) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    options.edge_id = absl::StrCat("e-", info->name());
    auto harness = EdgeHarness::Start(*kafka_, std::move(options));
    ASSERT_TRUE(harness.ok()) << harness.status();
    harness_ = std::move(*harness);
    channel_ = TestPeer::NewChannel(harness_->port());
  }

  // Waits until the edge consumes commands; the probe's dead letter counts.
  void WaitUntilConsuming() {
    auto seen = harness_->WaitUntilConsuming();
    ASSERT_TRUE(seen.ok()) << seen.status();
    dead_letters_seen_ = *seen;
  }

  std::unique_ptr<WebRtcPeer> Connect(const std::string& peer_id) {
    auto peer = std::make_unique<WebRtcPeer>(channel_, peer_id);
    EXPECT_TRUE(peer->Admitted()) << peer_id << " was not admitted";
    return peer;
  }

  ViewerBackend& backend() { return harness_->backend(); }

  // Waits for the signaling event of `request_id` and returns it.
  SignalingEvent EventOf(const std::string& request_id) {
    auto match = [&](const SignalingEvent& e) { return e.request_id == request_id; };
    EXPECT_TRUE(backend().WaitForSignaling(1, absl::Seconds(15), match))
        << "no signaling event for " << request_id;
    for (const SignalingEvent& e : backend().Signaling()) {
      if (match(e)) return e;
    }
    return {};
  }

  // Opens `session_id` for `peer` (request, then the backend's offer).
  void OpenSession(WebRtcPeer& peer, const std::string& request_id, const std::string& session_id) {
    Result opened;
    peer.StartCall(SessionRequest(request_id, session_id), opened.Callback());
    EventOf(request_id);
    ASSERT_TRUE(backend()
                    .Send(peer.peer_id(), ViewerBackend::ReplyCommand(peer.peer_id(), request_id,
                                                                      Offer(session_id)))
                    .ok());
    auto reply = opened.Wait();
    ASSERT_TRUE(reply.has_value() && reply->ok());
    ASSERT_TRUE((*reply)->has_sdp_offer());
  }

  static kafka::EmbeddedKafka* kafka_;
  std::unique_ptr<EdgeHarness> harness_;
  std::shared_ptr<grpc::Channel> channel_;
  size_t dead_letters_seen_ = 0;
};

kafka::EmbeddedKafka* E2eWebRtcTest::kafka_ = nullptr;

// ---- the whole session ----

TEST_F(E2eWebRtcTest, FullSessionRelaysEveryMessageInOrder) {
  StartEdge();
  WaitUntilConsuming();
  auto peer = Connect("peer-1");

  // 1. The peer asks for a session; the request waits for the backend.
  Result opened;
  const gp::EdgeWebRTCMessage request = SessionRequest("req-1", "s1");
  peer->StartCall(request, opened.Callback());
  SignalingEvent event = EventOf("req-1");
  EXPECT_EQ(event.kind, "stream_session_request");
  EXPECT_FALSE(opened.done());

  // 2. The backend offers, and trickles two candidates before the peer can
  // have answered; a catalog request after them marks their passage.
  gp::PeerWebRTCMessage offer = Offer("s1");
  ASSERT_TRUE(backend().Send("peer-1", ViewerBackend::ReplyCommand("peer-1", "req-1", offer)).ok());
  auto reply = opened.Wait();
  ASSERT_TRUE(reply.has_value());
  ASSERT_TRUE(reply->ok()) << reply->status();
  offer.set_request_id("req-1");
  EXPECT_TRUE(MessageDifferencer::Equals(**reply, offer)) << (*reply)->ShortDebugString();

  const std::vector<std::pair<std::string, std::string>> early = {
      {"b-b1", "candidate:b1 1 udp 9 198.51.100.1 4001 typ host"},
      {"b-b2", "candidate:b2 1 udp 8 198.51.100.1 4002 typ srflx"}};
  for (const auto& [id, text] : early) {
    gp::EdgeWebRTCMessage ice;
    *ice.mutable_ice_candidate() = Candidate("s1", text);
    ASSERT_TRUE(backend().Send("peer-1", ViewerBackend::WebRtcCommand("peer-1", id, ice)).ok());
  }
  ASSERT_TRUE(backend()
                  .Send("peer-1", R"({"type":"catalog_announcement","peer_id":"peer-1",)"
                                  R"("request_id":"marker"})")
                  .ok());
  ASSERT_TRUE(peer->WaitForReceived([](const std::vector<gp::EdgeMessage>& r) {
    for (const auto& m : r) {
      if (m.request_id() == "marker") return true;
    }
    return false;
  }));
  EXPECT_THAT(peer->WebRtcReceived(), IsEmpty()) << "candidates before the answer must be held";

  // 3. The answer is acknowledged, and releases the held candidates in order.
  auto ack = peer->Call(Answer("ans-1", "s1"));
  EXPECT_TRUE(IsAck(ack, "ans-1", "s1")) << ack.status();
  ASSERT_TRUE(peer->WaitForReceived(
      [](const std::vector<gp::EdgeMessage>& r) { return CountWebRtc(r) >= 2; }));

  // 4. A later backend candidate goes straight through.
  gp::EdgeWebRTCMessage late;
  *late.mutable_ice_candidate() =
      Candidate("s1", "candidate:b3 1 udp 7 198.51.100.2 4003 typ relay");
  ASSERT_TRUE(backend().Send("peer-1", ViewerBackend::WebRtcCommand("peer-1", "b-b3", late)).ok());
  ASSERT_TRUE(peer->WaitForReceived(
      [](const std::vector<gp::EdgeMessage>& r) { return CountWebRtc(r) >= 3; }));
  std::vector<gp::EdgeMessage> webrtc = peer->WebRtcReceived();
  ASSERT_EQ(webrtc.size(), 3u);
  std::vector<std::string> order;
  for (const gp::EdgeMessage& m : webrtc) {
    order.push_back(m.request_id());
    EXPECT_EQ(m.edge_id(), harness_->options().edge_id);
    EXPECT_EQ(m.webrtc().request_id(), m.request_id());
    EXPECT_EQ(m.webrtc().ice_candidate().session_id(), "s1");
  }
  EXPECT_THAT(order, ElementsAre("b-b1", "b-b2", "b-b3"));

  // 5. The peer trickles its own candidates: one by WebRTCOperations, one
  // on the stream (acknowledged there once published).
  auto ice_ack =
      peer->Call(IceCall("ice-1", "s1", "candidate:p1 1 udp 5 192.0.2.10 5001 typ host"));
  EXPECT_TRUE(IsAck(ice_ack, "ice-1", "s1")) << ice_ack.status();
  gp::PeerMessage on_stream;
  on_stream.set_request_id("ice-2");
  *on_stream.mutable_webrtc()->mutable_ice_candidate() =
      Candidate("s1", "candidate:p2 1 udp 4 192.0.2.11 5002 typ host");
  on_stream.mutable_webrtc()->set_request_id("ice-2");
  ASSERT_TRUE(peer->Send(on_stream));
  ASSERT_TRUE(peer->WaitForReceived([](const std::vector<gp::EdgeMessage>& r) {
    for (const auto& m : r) {
      if (m.request_id() == "ice-2" && !m.has_webrtc()) return true;
    }
    return false;
  })) << "the stream message was not acknowledged";

  // 6. The backend saw the session's every message, in order.
  ASSERT_TRUE(backend().WaitForSignaling(
      4, absl::Seconds(15), [](const SignalingEvent& e) { return e.session_id == "s1"; }));
  std::vector<SignalingEvent> events;
  for (const SignalingEvent& e : backend().Signaling()) {
    if (e.session_id == "s1") events.push_back(e);
  }
  ASSERT_EQ(events.size(), 4u);
  const std::vector<std::string> kinds = {"stream_session_request", "sdp_answer", "ice_candidate",
                                          "ice_candidate"};
  const std::vector<std::string> origins = {"call", "call", "call", "stream"};
  const std::vector<std::string> ids = {"req-1", "ans-1", "ice-1", "ice-2"};
  for (size_t i = 0; i < events.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("event ", i, ": ", events[i].raw));
    EXPECT_EQ(events[i].key, "peer-1");
    EXPECT_EQ(events[i].peer_id, "peer-1");
    EXPECT_EQ(events[i].edge_id, harness_->options().edge_id);
    EXPECT_FALSE(events[i].timestamp.empty());
    EXPECT_EQ(events[i].kind, kinds[i]);
    EXPECT_EQ(events[i].origin, origins[i]);
    EXPECT_EQ(events[i].request_id, ids[i]);
  }
  EXPECT_TRUE(MessageDifferencer::Equals(
      ParseMessage<gp::EdgeWebRTCMessage>(events[0].message_json), request));
  EXPECT_TRUE(MessageDifferencer::Equals(
      ParseMessage<gp::EdgeWebRTCMessage>(events[1].message_json), Answer("ans-1", "s1")));
  EXPECT_TRUE(MessageDifferencer::Equals(
      ParseMessage<gp::EdgeWebRTCMessage>(events[2].message_json),
      IceCall("ice-1", "s1", "candidate:p1 1 udp 5 192.0.2.10 5001 typ host")));
  EXPECT_TRUE(MessageDifferencer::Equals(
      ParseMessage<gp::PeerWebRTCMessage>(events[3].message_json), on_stream.webrtc()));
  // Nothing went to the dead letters but the probe.
  EXPECT_EQ(backend().DeadLetters().size(), dead_letters_seen_);
}

// ---- errors of WebRTCOperations ----

TEST_F(E2eWebRtcTest, NoReplyInTimeIsDeadlineExceeded) {
  EdgeHarnessOptions options;
  options.webrtc_reply_timeout = absl::Milliseconds(300);
  StartEdge(options);
  auto peer = Connect("peer-1");
  auto reply = peer->Call(SessionRequest("req-1", "s1"));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDeadlineExceeded) << reply.status();
  EXPECT_THAT(std::string(reply.status().message()), HasSubstr("webrtc_reply"));
  // The request was published all the same.
  EXPECT_EQ(EventOf("req-1").kind, "stream_session_request");
}

TEST_F(E2eWebRtcTest, UnknownSessionIsNotFound) {
  StartEdge();
  WaitUntilConsuming();
  auto peer = Connect("peer-1");
  auto answer = peer->Call(Answer("ans-1", "never-opened"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound) << answer.status();
  auto ice = peer->Call(IceCall("ice-1", "never-opened", "candidate:x"));
  EXPECT_EQ(ice.status().code(), absl::StatusCode::kNotFound) << ice.status();

  // Another peer's session is not this peer's to continue.
  auto owner = Connect("peer-2");
  OpenSession(*owner, "req-2", "s2");
  auto stolen = peer->Call(Answer("ans-2", "s2"));
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kNotFound) << stolen.status();
  EXPECT_TRUE(IsAck(owner->Call(Answer("ans-3", "s2")), "ans-3", "s2"));
}

TEST_F(E2eWebRtcTest, CallerWithoutStreamIsFailedPrecondition) {
  StartEdge();
  auto reply = CallWebRtc(channel_, std::string("peer-nostream"), SessionRequest("req-1", "s1"));
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kFailedPrecondition) << reply.status();

  // Nor once its stream has ended.
  auto peer = Connect("peer-gone");
  peer->Disconnect();
  EXPECT_TRUE(WaitFor([&] {
    return CallWebRtc(channel_, std::string("peer-gone"), SessionRequest("req-2", "s2"))
               .status()
               .code() == absl::StatusCode::kFailedPrecondition;
  }));
}

TEST_F(E2eWebRtcTest, MissingPeerIdIsUnauthenticated) {
  StartEdge();
  auto peer = Connect("peer-1");  // connected: the caller is not
  auto none = CallWebRtc(channel_, std::nullopt, SessionRequest("req-1", "s1"));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated) << none.status();
  auto empty = CallWebRtc(channel_, std::string(""), SessionRequest("req-2", "s2"));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnauthenticated) << empty.status();
}

// ---- session lifetime ----

// On a FakeClock (the real gRPC transport and Kafka bus, the core's timers
// on fake time): a session lives WEBRTC_SESSION_TTL_SEC after its last
// message.
TEST_F(E2eWebRtcTest, SessionExpiresTtlAfterItsLastMessage) {
  EdgeHarnessOptions options;
  options.fake_clock = true;
  options.webrtc_session_ttl = absl::Seconds(300);
  options.peer_timeout = absl::Hours(10);
  StartEdge(options);
  WaitUntilConsuming();
  testing::FakeClock& clock = *harness_->fake_clock();
  auto peer = Connect("peer-1");
  OpenSession(*peer, "req-1", "s1");
  EXPECT_TRUE(IsAck(peer->Call(Answer("ans-1", "s1")), "ans-1", "s1"));

  clock.Advance(absl::Seconds(299));
  EXPECT_TRUE(IsAck(peer->Call(IceCall("ice-1", "s1", "candidate:1")), "ice-1", "s1"));
  clock.Advance(absl::Seconds(299));  // 598 s after opening, 299 s of silence
  EXPECT_TRUE(IsAck(peer->Call(IceCall("ice-2", "s1", "candidate:2")), "ice-2", "s1"));
  clock.Advance(absl::Seconds(301));
  auto expired = peer->Call(IceCall("ice-3", "s1", "candidate:3"));
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kNotFound) << expired.status();
}

TEST_F(E2eWebRtcTest, ExpiryFailsAPendingRequest) {
  EdgeHarnessOptions options;
  options.fake_clock = true;
  options.webrtc_session_ttl = absl::Seconds(60);
  options.webrtc_reply_timeout = absl::Seconds(600);  // expiry comes first
  options.peer_timeout = absl::Hours(10);
  StartEdge(options);
  testing::FakeClock& clock = *harness_->fake_clock();
  auto peer = Connect("peer-1");
  Result pending;
  peer->StartCall(SessionRequest("req-1", "s1"), pending.Callback());
  EventOf("req-1");
  clock.Advance(absl::Seconds(59));
  EXPECT_FALSE(pending.done());
  clock.Advance(absl::Seconds(2));
  auto reply = pending.Wait();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->status().code(), absl::StatusCode::kUnavailable) << reply->status();
  EXPECT_THAT(std::string(reply->status().message()), HasSubstr("expired"));
}

TEST_F(E2eWebRtcTest, PeerDisconnectFailsAPendingCallAndEndsItsSessions) {
  StartEdge();
  auto peer = Connect("peer-1");
  Result pending;
  peer->StartCall(SessionRequest("req-1", "s1"), pending.Callback());
  EventOf("req-1");
  EXPECT_FALSE(pending.done());
  peer->Disconnect();
  auto reply = pending.Wait();
  ASSERT_TRUE(reply.has_value()) << "the pending call did not end";
  EXPECT_THAT(reply->status().code(),
              ::testing::AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kCancelled))
      << reply->status();

  // The session ended with the stream: a new stream does not find it.
  auto again = Connect("peer-1");
  auto answer = again->Call(Answer("ans-1", "s1"));
  EXPECT_EQ(answer.status().code(), absl::StatusCode::kNotFound) << answer.status();
}

// ---- malformed commands ----

TEST_F(E2eWebRtcTest, MalformedWebRtcCommandsAreDeadLettered) {
  StartEdge();
  WaitUntilConsuming();
  auto peer = Connect("peer-1");
  struct Case {
    std::string value;
    std::string reason;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {R"({"type":"webrtc","peer_id":"peer-1","webrtc":{"ice_candidate":{"session_id":"s1",)"
       R"("candidate":"c","bogus":1}}})",
       "invalid_command", "field webrtc is not a valid EdgeWebRTCMessage"},
      {R"({"type":"webrtc","peer_id":"peer-1","webrtc":{"ice_candidate":{"session_id":7}}})",
       "invalid_command", "field webrtc is not a valid EdgeWebRTCMessage"},
      {R"({"type":"webrtc","peer_id":"peer-1","webrtc":"sdp"})", "invalid_command",
       "field webrtc must be an object"},
      {R"({"type":"webrtc","peer_id":"peer-1","webrtc":{"request_id":"x"}})", "invalid_command",
       "field webrtc has no payload"},
      {R"({"type":"webrtc","peer_id":"peer-1","webrtc":{"ice_candidate":{"candidate":"c"}}})",
       "invalid_command", "no session_id"},
      {R"({"type":"webrtc_reply","peer_id":"peer-1","webrtc":{"sdp_offer":{"session_id":"s1"}}})",
       "invalid_command", "webrtc_reply needs the request_id"},
      {R"({"type":"webrtc_reply","peer_id":"peer-1","request_id":"nobody-waits",)"
       R"("webrtc":{"sdp_offer":{"session_id":"s1","sdp":"v=0"}}})",
       "invalid_command", "no pending WebRTCOperations call with request_id \"nobody-waits\""},
      {R"({"type":"webrtc_reply","peer_id":"peer-1","request_id":"r","webrtc":{"sdp_answer":{}}})",
       "invalid_command", "field webrtc is not a valid PeerWebRTCMessage"},
      {R"({"type":"webrtc","peer_id":"peer-1","webrtc":{)", "invalid_json", "not valid JSON"},
  };
  for (const Case& c : cases) ASSERT_TRUE(backend().SendAsync("peer-1", c.value).ok());
  ASSERT_TRUE(backend().Flush().ok());
  ASSERT_TRUE(backend().WaitForDeadLetters(dead_letters_seen_ + cases.size()));
  std::vector<DeadLetter> letters = backend().DeadLetters();
  letters.erase(letters.begin(), letters.begin() + dead_letters_seen_);
  ASSERT_EQ(letters.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].value);
    EXPECT_EQ(letters[i].reason, cases[i].reason);
    EXPECT_THAT(letters[i].detail, HasSubstr(cases[i].detail));
    EXPECT_EQ(letters[i].original_message, cases[i].value);
    EXPECT_EQ(letters[i].key, "peer-1");
  }
  // None reached the peer, and the edge kept consuming.
  EXPECT_THAT(peer->WebRtcReceived(), IsEmpty());
  gp::EdgeWebRTCMessage good;
  *good.mutable_ice_candidate() = Candidate("s9", "candidate:ok");
  ASSERT_TRUE(backend().Send("peer-1", ViewerBackend::WebRtcCommand("peer-1", "good", good)).ok());
  ASSERT_TRUE(peer->WaitForReceived(
      [](const std::vector<gp::EdgeMessage>& r) { return CountWebRtc(r) >= 1; }));
  EXPECT_EQ(peer->WebRtcReceived()[0].request_id(), "good");
}

// ---- load ----

// 500 session requests wait at once for the backend, from four peers, on
// the callback APIs of both sides: the process does not grow a thread per
// pending call. The backend then answers them all in one burst.
TEST_F(E2eWebRtcTest, FiveHundredPendingSessionsHoldNoThreadEach) {
  constexpr int kPeers = 4;
  constexpr int kPerPeer = 125;
  EdgeHarnessOptions options;
  options.webrtc_max_sessions_per_peer = kPerPeer + 1;  // The warm-up's session too.
  StartEdge(options);
  WaitUntilConsuming();
  std::vector<std::unique_ptr<WebRtcPeer>> peers;
  for (int p = 0; p < kPeers; ++p) peers.push_back(Connect(absl::StrCat("peer-", p)));
  // Warm up: one whole request/reply per peer, so that every pool exists.
  for (int p = 0; p < kPeers; ++p) {
    OpenSession(*peers[p], absl::StrCat("warm-", p), absl::StrCat("warm-s", p));
  }
  const int threads_before = ThreadCount();
  ASSERT_GT(threads_before, 0);

  std::vector<std::unique_ptr<Result>> results;
  for (int p = 0; p < kPeers; ++p) {
    for (int i = 0; i < kPerPeer; ++i) {
      auto& result = results.emplace_back(std::make_unique<Result>());
      std::string id = absl::StrCat(p, "-", i);
      peers[p]->StartCall(SessionRequest(absl::StrCat("req-", id), absl::StrCat("s-", id)),
                          result->Callback());
    }
  }
  // Every request is published, so every call is pending at the edge.
  ASSERT_TRUE(backend().WaitForSignaling(
      kPeers * kPerPeer, absl::Seconds(60),
      [](const SignalingEvent& e) { return absl::StartsWith(e.request_id, "req-"); }));
  int done_early = 0;
  for (auto& r : results) done_early += r->done() ? 1 : 0;
  EXPECT_EQ(done_early, 0);
  const int threads_during = ThreadCount();
  RecordProperty("threads_before", threads_before);
  RecordProperty("threads_with_500_pending", threads_during);
  EXPECT_LT(threads_during - threads_before, 20)
      << "threads before: " << threads_before << ", with 500 calls pending: " << threads_during;

  for (int p = 0; p < kPeers; ++p) {
    for (int i = 0; i < kPerPeer; ++i) {
      std::string id = absl::StrCat(p, "-", i);
      ASSERT_TRUE(backend()
                      .SendAsync(absl::StrCat("peer-", p),
                                 ViewerBackend::ReplyCommand(absl::StrCat("peer-", p),
                                                             absl::StrCat("req-", id),
                                                             Offer(absl::StrCat("s-", id))))
                      .ok());
    }
  }
  ASSERT_TRUE(backend().Flush(absl::Seconds(30)).ok());
  for (int p = 0; p < kPeers; ++p) {
    for (int i = 0; i < kPerPeer; ++i) {
      std::string id = absl::StrCat(p, "-", i);
      auto reply = results[p * kPerPeer + i]->Wait(absl::Seconds(60));
      ASSERT_TRUE(reply.has_value()) << "call " << id << " did not end";
      ASSERT_TRUE(reply->ok()) << id << ": " << reply->status();
      EXPECT_EQ((*reply)->request_id(), absl::StrCat("req-", id));
      EXPECT_EQ((*reply)->sdp_offer().session_id(), absl::StrCat("s-", id));
    }
  }
  EXPECT_EQ(backend().DeadLetters().size(), dead_letters_seen_);
}

// ---- the example peer ----

// edge_example_peer --stream runs the whole session against the edge: the
// backend offers (and trickles candidates at once, before the peer could
// answer), the peer answers in the offer's media section and trickles its
// own candidates, and logs the backend's, which the edge held until the
// answer went out.
TEST_F(E2eWebRtcTest, ExamplePeerNegotiatesAWholeSession) {
#ifndef EDGE_EXAMPLE_PEER_BINARY
  GTEST_SKIP() << "built without the examples";
#else
  StartEdge();
  WaitUntilConsuming();
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string log_path =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/example-peer-", getpid(), ".log");
  auto peer = ChildProcess::Start(
      {EDGE_EXAMPLE_PEER_BINARY, absl::StrCat("--edge=127.0.0.1:", harness_->port()),
       "--peer-id=example-1", "--catalog=movie-1", "--stream=movie-1"},
      log_path);
  ASSERT_TRUE(peer.ok()) << peer.status();

  auto from_example = [](const std::string& kind) {
    return [kind](const SignalingEvent& e) { return e.peer_id == "example-1" && e.kind == kind; };
  };
  ASSERT_TRUE(
      backend().WaitForSignaling(1, absl::Seconds(20), from_example("stream_session_request")))
      << (*peer)->Output();
  SignalingEvent request;
  for (const SignalingEvent& e : backend().Signaling()) {
    if (from_example("stream_session_request")(e)) request = e;
  }
  EXPECT_EQ(request.origin, "call");
  auto opened = ParseMessage<gp::EdgeWebRTCMessage>(request.message_json);
  EXPECT_EQ(opened.stream_session_request().catalog_id(), "movie-1");
  const std::string session = request.session_id;
  ASSERT_FALSE(session.empty());

  gp::PeerWebRTCMessage offer;
  offer.mutable_sdp_offer()->set_session_id(session);
  offer.mutable_sdp_offer()->set_sdp("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v1\r\n");
  ASSERT_TRUE(
      backend()
          .Send("example-1", ViewerBackend::ReplyCommand("example-1", request.request_id, offer))
          .ok());
  for (int i = 1; i <= 2; ++i) {
    gp::EdgeWebRTCMessage ice;
    *ice.mutable_ice_candidate() = Candidate(
        session, absl::StrCat("candidate:", i, " 1 udp 9 198.51.100.", i, " 4000 typ host"));
    ice.mutable_ice_candidate()->set_sdp_mid("v1");
    ASSERT_TRUE(backend()
                    .Send("example-1", ViewerBackend::WebRtcCommand(
                                           "example-1", absl::StrCat("backend-ice-", i), ice))
                    .ok());
  }

  // The peer's answer and two candidates, in the offer's media section.
  ASSERT_TRUE(backend().WaitForSignaling(2, absl::Seconds(20), from_example("ice_candidate")))
      << (*peer)->Output();
  std::vector<SignalingEvent> events;
  for (const SignalingEvent& e : backend().Signaling()) {
    if (e.session_id == session) events.push_back(e);
  }
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].kind, "sdp_answer");
  EXPECT_THAT(ParseMessage<gp::EdgeWebRTCMessage>(events[1].message_json).sdp_answer().sdp(),
              HasSubstr("a=mid:v1"));
  for (size_t i = 2; i < 4; ++i) {
    EXPECT_EQ(events[i].kind, "ice_candidate");
    EXPECT_EQ(events[i].origin, "call");
    EXPECT_EQ(ParseMessage<gp::EdgeWebRTCMessage>(events[i].message_json).ice_candidate().sdp_mid(),
              "v1");
  }
  ASSERT_TRUE((*peer)->WaitForOutput("negotiated")) << (*peer)->Output();
  ASSERT_TRUE((*peer)->WaitForOutput("backend candidate 2")) << (*peer)->Output();
  const std::string output = (*peer)->Output();
  EXPECT_LT(output.find("backend candidate 1 \"candidate:1 "),
            output.find("backend candidate 2 \"candidate:2 "));
  EXPECT_EQ(output.find("failed"), std::string::npos) << output;

  (*peer)->Signal(SIGTERM).IgnoreError();  // It may have ended by itself.
  EXPECT_EQ((*peer)->WaitForExit().value_or(-1), 0) << (*peer)->Output();
  std::remove(log_path.c_str());
#endif
}

}  // namespace
}  // namespace edge::testing
