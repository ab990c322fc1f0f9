// GrpcPeerTransport against real generated clients on 127.0.0.1, port 0.
#include "edge/grpc/grpc_peer_transport.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "contract/peer_transport/recording_handler.h"
#include "edge/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "grpc/grpc_test_util.h"
#include "gtest/gtest.h"
#include "support/test_peer.h"
#include "support/wait.h"

namespace edge {
namespace {

using ::edge::testing::NumberedEdgeMessage;
using ::edge::testing::NumberedPeerMessage;
using ::edge::testing::RecordingHandler;
using ::edge::testing::RecordingObserver;
using ::edge::testing::TestPeer;
using ::edge::testing::WaitFor;
using ::testing::HasSubstr;

// How long a test watches for something that must NOT happen.
constexpr absl::Duration kQuietPeriod = absl::Milliseconds(300);

// Writes 1 MiB messages to `stream` back to back until one stays outstanding
// (the peer reads nothing, so the HTTP/2 windows and socket buffers fill).
class Flooder {
 public:
  explicit Flooder(std::shared_ptr<PeerStream> stream) : state_(std::make_shared<State>()) {
    state_->stream = std::move(stream);
    WriteNext(state_);
  }
  // True once the writes stopped completing for a while.
  bool WaitUntilStuck(absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      int before = completed();
      if (!WaitFor([&] { return completed() != before || failed(); }, absl::Milliseconds(300))) {
        return true;
      }
      if (failed()) return false;
    }
    return false;
  }
  int completed() {
    absl::MutexLock lock(&state_->mu);
    return state_->completed;
  }
  bool failed() {
    absl::MutexLock lock(&state_->mu);
    return state_->failed;
  }

 private:
  struct State {
    std::shared_ptr<PeerStream> stream;
    absl::Mutex mu;
    int completed ABSL_GUARDED_BY(mu) = 0;
    bool failed ABSL_GUARDED_BY(mu) = false;
  };
  static void WriteNext(std::shared_ptr<State> state) {
    PeerStream& stream = *state->stream;
    stream.Write(NumberedEdgeMessage(0, 1 << 20), [state](bool ok) {
      {
        absl::MutexLock lock(&state->mu);
        if (!ok) {
          state->failed = true;
          return;
        }
        ++state->completed;
      }
      WriteNext(state);
    });
  }
  std::shared_ptr<State> state_;
};

class GrpcPeerTransportTest : public ::testing::Test {
 protected:
  grpc_transport::GrpcPeerTransportOptions Options() {
    grpc_transport::GrpcPeerTransportOptions options;
    options.address = "127.0.0.1:0";
    options.clock = &clock_;
    options.shutdown_grace = absl::Milliseconds(500);
    return options;
  }

  void StartTransport(grpc_transport::GrpcPeerTransportOptions options) {
    auto transport = grpc_transport::GrpcPeerTransport::Create(std::move(options));
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    ASSERT_TRUE(transport_->Start(&handler_).ok());
    ASSERT_GT(transport_->port(), 0);
    channel_ = TestPeer::NewChannel(transport_->port());
  }
  void StartTransport() { StartTransport(Options()); }

  std::unique_ptr<TestPeer> Connect(std::optional<std::string> peer_id, bool read = true) {
    TestPeer::Options options;
    options.peer_id = std::move(peer_id);
    options.read = read;
    return std::make_unique<TestPeer>(channel_, std::move(options));
  }

  // Connects and waits until the handler admitted the stream `index`.
  std::unique_ptr<TestPeer> ConnectAdmitted(std::optional<std::string> peer_id, size_t index,
                                            bool read = true) {
    auto peer = Connect(peer_id, read);
    EXPECT_TRUE(handler_.WaitForStreams(index + 1));
    return peer;
  }

  testing::FakeClock clock_;
  RecordingHandler handler_;
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcPeerTransportTest, AdmittedStreamCarriesMessagesBothWaysInOrder) {
  StartTransport();
  auto peer = ConnectAdmitted("peer-1", 0);
  PeerCallInfo info = handler_.info(0);
  EXPECT_TRUE(info.has_peer_id);
  EXPECT_EQ(info.peer_id, "peer-1");
  EXPECT_EQ(info.cert_identity, "");
  EXPECT_THAT(info.remote_address, HasSubstr("127.0.0.1"));

  constexpr int kCount = 50;
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(peer->Send(NumberedPeerMessage(i)));
  auto observer = handler_.observer(0);
  ASSERT_TRUE(observer->WaitForMessages(kCount));
  auto messages = observer->messages();
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(messages[i].request_id(), absl::StrCat("peer-", i));

  std::vector<EdgeMessage> out;
  for (int i = 0; i < kCount; ++i) out.push_back(NumberedEdgeMessage(i));
  EXPECT_EQ(testing::WriteAll(*handler_.stream(0), out), out.size());
  ASSERT_TRUE(peer->WaitForReceived(kCount));
  auto received = peer->Received();
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(received[i].request_id(), absl::StrCat("edge-", i));
  EXPECT_EQ(observer->end_count(), 0);
  EXPECT_EQ(observer->violations(), 0);
}

TEST_F(GrpcPeerTransportTest, RejectedStreamEndsWithTheDecisionsStatus) {
  StartTransport();
  for (absl::Status status :
       {absl::UnauthenticatedError("peer_id metadata missing"),
        absl::InvalidArgumentError("peer_id has a bad character"),
        absl::AlreadyExistsError("peer-1 is held by edge-7"),
        absl::ResourceExhaustedError("edge full"), absl::UnavailableError("draining")}) {
    handler_.Reject(status);
    auto peer = Connect("peer-1");
    auto end = peer->WaitForEnd();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(static_cast<int>(end->error_code()), static_cast<int>(status.code()));
    EXPECT_EQ(end->error_message(), status.message());
  }
  EXPECT_TRUE(handler_.observers().empty());
}

TEST_F(GrpcPeerTransportTest, PeerIdMetadataMissingOrEmptyIsReportedAsSuch) {
  StartTransport();
  auto without = ConnectAdmitted(std::nullopt, 0);
  auto empty = ConnectAdmitted("", 1);
  PeerCallInfo first = handler_.info(0);
  PeerCallInfo second = handler_.info(1);
  // The two connect concurrently; tell them apart by has_peer_id.
  if (first.has_peer_id) std::swap(first, second);
  EXPECT_FALSE(first.has_peer_id);
  EXPECT_TRUE(second.has_peer_id);
  EXPECT_EQ(second.peer_id, "");
}

TEST_F(GrpcPeerTransportTest, NoMessageIsReadBeforeTheDecision) {
  StartTransport();
  handler_.Hold();
  auto peer = ConnectAdmitted("peer-1", 0);
  ASSERT_TRUE(peer->Send(NumberedPeerMessage(0)));
  ASSERT_TRUE(peer->Send(NumberedPeerMessage(1)));
  auto observer = handler_.AdmitHeld(0);
  ASSERT_TRUE(observer->WaitForMessages(2));
  EXPECT_EQ(observer->messages()[0].request_id(), "peer-0");
}

TEST_F(GrpcPeerTransportTest, PausedStreamDeliversNothingUntilResumed) {
  StartTransport();
  handler_.set_pause_new_streams(true);
  auto peer = ConnectAdmitted("peer-1", 0);
  auto observer = handler_.observer(0);
  auto stream = handler_.stream(0);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(peer->Send(NumberedPeerMessage(i)));
  ASSERT_TRUE(observer->WaitForMessages(1));
  EXPECT_FALSE(observer->WaitForMessages(2, kQuietPeriod));

  stream->ResumeReading();  // Still pausing: exactly one more.
  ASSERT_TRUE(observer->WaitForMessages(2));
  EXPECT_FALSE(observer->WaitForMessages(3, kQuietPeriod));

  observer->set_pause(false);
  stream->ResumeReading();
  ASSERT_TRUE(observer->WaitForMessages(4));
  auto messages = observer->messages();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(messages[i].request_id(), absl::StrCat("peer-", i));
  stream->ResumeReading();  // Not paused: nothing happens.
  ASSERT_TRUE(peer->Send(NumberedPeerMessage(4)));
  ASSERT_TRUE(observer->WaitForMessages(5));
  EXPECT_EQ(observer->violations(), 0);
}

TEST_F(GrpcPeerTransportTest, FinishAfterAWriteDeliversTheWriteThenTheStatus) {
  StartTransport();
  auto peer = ConnectAdmitted("peer-1", 0);
  auto observer = handler_.observer(0);
  auto stream = handler_.stream(0);
  absl::Mutex mu;
  std::optional<bool> write_ok;
  int ends_before_callback = -1;
  stream->Write(NumberedEdgeMessage(1), [&](bool ok) {
    absl::MutexLock lock(&mu);
    write_ok = ok;
    ends_before_callback = observer->end_count();
  });
  stream->Finish(absl::AbortedError("replaced by a newer stream"));
  stream->Finish(absl::InternalError("second finish is ignored"));

  auto end = peer->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(end->error_message(), "replaced by a newer stream");
  ASSERT_EQ(peer->Received().size(), 1u);
  EXPECT_EQ(peer->Received()[0].request_id(), "edge-1");

  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kAborted);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(write_ok, std::optional<bool>(true));
  EXPECT_EQ(ends_before_callback, 0);
}

TEST_F(GrpcPeerTransportTest, WriteRefusedWhileEndingReportsFalseBeforeOnEnd) {
  StartTransport();
  auto peer = ConnectAdmitted("slow-peer", 0, /*read=*/false);
  auto observer = handler_.observer(0);
  auto stream = handler_.stream(0);
  Flooder flooder(stream);
  ASSERT_TRUE(flooder.WaitUntilStuck());

  // The outstanding write holds the end back; a write now is refused.
  stream->Finish(absl::AbortedError("kicked"));
  struct Late {
    absl::Mutex mu;
    std::optional<bool> ok ABSL_GUARDED_BY(mu);
    int ends_seen ABSL_GUARDED_BY(mu) = -1;
  };
  auto late = std::make_shared<Late>();
  stream->Write(NumberedEdgeMessage(1), [late, observer](bool ok) {
    absl::MutexLock lock(&late->mu);
    late->ok = ok;
    late->ends_seen = observer->end_count();
  });
  EXPECT_EQ(observer->end_count(), 0);

  peer->StartReading();  // The outstanding write completes, then the end.
  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kAborted);
  absl::MutexLock lock(&late->mu);
  EXPECT_EQ(late->ok, std::optional<bool>(false));
  EXPECT_EQ(late->ends_seen, 0);
  auto end = peer->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(GrpcPeerTransportTest, WriteTimeoutEndsTheStreamOfAPeerThatStoppedReading) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.write_timeout = absl::Seconds(5);
  StartTransport(options);
  auto peer = ConnectAdmitted("slow-peer", 0, /*read=*/false);
  auto observer = handler_.observer(0);
  auto stream = handler_.stream(0);

  Flooder flooder(stream);
  // Time only moves when told to: once the writes stopped progressing,
  // advance past the timeout.
  ASSERT_TRUE(flooder.WaitUntilStuck());
  clock_.Advance(options.write_timeout);
  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(WaitFor([&] { return flooder.failed(); }));
  EXPECT_GT(flooder.completed(), 0);
  EXPECT_EQ(testing::WriteAndWait(*stream, NumberedEdgeMessage(9)), std::optional<bool>(false));
  peer->StartReading();
  auto end = peer->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(clock_.pending_timers(), 0u);
}

// One timer serves all writes of a stream: when it fires for an earlier
// write's deadline while a later write is stuck, it waits for the later
// write's own deadline instead of ending the stream early.
TEST_F(GrpcPeerTransportTest, WriteTimeoutCountsFromTheStartOfTheStuckWrite) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.write_timeout = absl::Seconds(5);
  StartTransport(options);
  auto peer = ConnectAdmitted("slow-peer", 0, /*read=*/false);
  auto observer = handler_.observer(0);
  auto stream = handler_.stream(0);

  // Completes (the transport buffers it) and arms the timer for t0 + 5 s.
  ASSERT_EQ(testing::WriteAndWait(*stream, NumberedEdgeMessage(1)), std::optional<bool>(true));
  clock_.Advance(absl::Seconds(4));
  Flooder flooder(stream);  // Its last write starts at t0 + 4 s and sticks.
  ASSERT_TRUE(flooder.WaitUntilStuck());
  clock_.Advance(absl::Seconds(1));  // t0 + 5 s: the stuck write is 1 s old.
  EXPECT_FALSE(flooder.failed());
  EXPECT_EQ(clock_.pending_timers(), 1u);  // Re-armed for t0 + 9 s.
  EXPECT_FALSE(observer->end_status().has_value());

  clock_.Advance(absl::Seconds(4));
  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kDeadlineExceeded);
  peer->StartReading();
  ASSERT_TRUE(peer->WaitForEnd().has_value());
  EXPECT_EQ(clock_.pending_timers(), 0u);
}

TEST_F(GrpcPeerTransportTest, PeerCancelEndsTheStreamOnce) {
  StartTransport();
  auto peer = ConnectAdmitted("peer-1", 0);
  auto observer = handler_.observer(0);
  auto stream = handler_.stream(0);
  ASSERT_TRUE(peer->Send(NumberedPeerMessage(0)));
  ASSERT_TRUE(observer->WaitForMessages(1));
  peer->Cancel();
  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kCancelled);

  // Calls after the end do nothing; writes report false.
  EXPECT_EQ(testing::WriteAndWait(*stream, NumberedEdgeMessage(1)), std::optional<bool>(false));
  stream->Finish(absl::AbortedError("too late"));
  stream->ResumeReading();
  transport_->Shutdown();
  EXPECT_EQ(observer->end_count(), 1);
  EXPECT_EQ(observer->violations(), 0);
}

TEST_F(GrpcPeerTransportTest, PeerHalfCloseEndsTheStreamWithOk) {
  StartTransport();
  auto peer = ConnectAdmitted("peer-1", 0);
  auto observer = handler_.observer(0);
  ASSERT_TRUE(peer->Send(NumberedPeerMessage(0)));
  peer->HalfClose();
  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_TRUE(observer->end_status()->ok()) << *observer->end_status();
  EXPECT_EQ(observer->message_count(), 1u);
  auto end = peer->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_TRUE(end->ok()) << end->error_message();
}

TEST_F(GrpcPeerTransportTest, AdmissionAfterThePeerLeftStillEndsTheObserver) {
  StartTransport();
  handler_.Hold();
  auto peer = ConnectAdmitted("peer-1", 0);
  peer->Cancel();
  ASSERT_TRUE(peer->WaitForEnd().has_value());
  auto observer = handler_.AdmitHeld(0);
  ASSERT_TRUE(observer->WaitForEnd());
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kCancelled);
  transport_->Shutdown();
  EXPECT_EQ(observer->end_count(), 1);
}

TEST_F(GrpcPeerTransportTest, OversizedMessageEndsOnlyThatStream) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.max_message_bytes = 64 * 1024;
  StartTransport(options);
  auto big = ConnectAdmitted("big-peer", 0);
  auto small = ConnectAdmitted("small-peer", 1);

  PeerMessage oversized;
  oversized.set_request_id(std::string(100 * 1024, 'r'));
  big->Send(oversized);
  auto end = big->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << end->error_message();

  // Find which admitted stream is whose.
  const size_t small_index = handler_.info(0).peer_id == "small-peer" ? 0 : 1;
  const size_t big_index = 1 - small_index;
  ASSERT_TRUE(handler_.observer(big_index)->WaitForEnd());
  EXPECT_EQ(handler_.observer(big_index)->message_count(), 0u);

  ASSERT_TRUE(small->Send(NumberedPeerMessage(1)));
  ASSERT_TRUE(handler_.observer(small_index)->WaitForMessages(1));
  EXPECT_EQ(testing::WriteAndWait(*handler_.stream(small_index), NumberedEdgeMessage(1)),
            std::optional<bool>(true));
  ASSERT_TRUE(small->WaitForReceived(1));
  EXPECT_EQ(handler_.observer(small_index)->end_count(), 0);
}

TEST_F(GrpcPeerTransportTest, WebRtcCallReachesTheHandlerWithMetadataAndIsAnswered) {
  StartTransport();
  giggityflix_grpc_peer::EdgeWebRTCMessage request;
  request.set_request_id("rq-1");
  request.mutable_stream_session_request()->set_session_id("session-9");
  request.mutable_stream_session_request()->set_catalog_id("catalog-3");
  giggityflix_grpc_peer::PeerWebRTCMessage response;
  grpc::Status status = TestPeer::WebRtcCall(channel_, "peer-1", request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.request_id(), "rq-1");
  EXPECT_EQ(response.stream_session_response().session_id(), "session-9");
  EXPECT_EQ(response.stream_session_response().catalog_id(), "catalog-3");
  ASSERT_TRUE(handler_.WaitForWebRtcCalls(1));
  EXPECT_TRUE(handler_.webrtc_caller(0).has_peer_id);
  EXPECT_EQ(handler_.webrtc_caller(0).peer_id, "peer-1");
  EXPECT_EQ(handler_.webrtc_request(0).request_id(), "rq-1");

  status = TestPeer::WebRtcCall(channel_, std::nullopt, request, &response);
  ASSERT_TRUE(status.ok());
  ASSERT_TRUE(handler_.WaitForWebRtcCalls(2));
  EXPECT_FALSE(handler_.webrtc_caller(1).has_peer_id);
}

TEST_F(GrpcPeerTransportTest, WebRtcReplyErrorReachesTheCallerAndLateRepliesAreIgnored) {
  StartTransport();
  handler_.set_hold_webrtc(true);
  giggityflix_grpc_peer::EdgeWebRTCMessage request;
  request.set_request_id("rq-2");
  std::thread replier([&] {
    ASSERT_TRUE(handler_.WaitForWebRtcCalls(1));
    handler_.ReplyHeld(0, absl::NotFoundError("no such session"));
  });
  giggityflix_grpc_peer::PeerWebRTCMessage response;
  grpc::Status status = TestPeer::WebRtcCall(channel_, "peer-1", request, &response);
  replier.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no such session");

  // A caller whose deadline passes; the handler answers afterwards.
  status = TestPeer::WebRtcCall(channel_, "peer-1", request, &response, absl::Milliseconds(200));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(handler_.WaitForWebRtcCalls(2));
  handler_.ReplyHeld(1, RecordingHandler::EchoReply(request));
}

TEST_F(GrpcPeerTransportTest, HealthServiceFollowsSetServing) {
  StartTransport();
  EXPECT_EQ(testing::HealthCheck(channel_, "").value_or(-1), 1);
  EXPECT_EQ(testing::HealthCheck(channel_, "giggityflix_grpc_peer.PeerEdgeService").value_or(-1),
            1);
  transport_->SetServing(false);
  EXPECT_EQ(testing::HealthCheck(channel_, "").value_or(-1), 2);
  transport_->SetServing(true);
  EXPECT_EQ(testing::HealthCheck(channel_, "").value_or(-1), 1);
}

TEST_F(GrpcPeerTransportTest, ShutdownEndsEverythingAndReturnsAfterEveryOnEnd) {
  StartTransport();
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < 3; ++i) peers.push_back(ConnectAdmitted(absl::StrCat("peer-", i), i));
  auto stuck = ConnectAdmitted("stuck", 3, /*read=*/false);
  // A write that never completes: the stuck peer reads nothing.
  Flooder flooder(handler_.stream(3));
  ASSERT_TRUE(flooder.WaitUntilStuck());
  handler_.Hold();
  auto held = ConnectAdmitted("held", 4);
  handler_.set_hold_webrtc(true);
  grpc::Status webrtc_status;
  std::thread caller([&] {
    giggityflix_grpc_peer::PeerWebRTCMessage response;
    webrtc_status = TestPeer::WebRtcCall(channel_, "peer-0", {}, &response);
  });
  ASSERT_TRUE(handler_.WaitForWebRtcCalls(1));

  transport_->Shutdown();
  for (auto& observer : handler_.observers()) {
    EXPECT_EQ(observer->end_count(), 1);
    EXPECT_EQ(observer->violations(), 0);
  }
  for (auto& peer : peers) {
    auto end = peer->WaitForEnd();
    ASSERT_TRUE(end.has_value());
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  caller.join();
  EXPECT_EQ(webrtc_status.error_code(), grpc::StatusCode::UNAVAILABLE);

  // A decision that comes after the shutdown still ends its observer.
  auto late = handler_.AdmitHeld(4);
  EXPECT_TRUE(late->WaitForEnd());
  EXPECT_FALSE(transport_->Start(&handler_).ok());
  transport_->Shutdown();  // Idempotent.
}

// Writes asked for on threads that are not gRPC's (the message bus's, here
// the tests') are started by gRPC's threads in batches: several streams
// written at once from several threads each get every message, in order.
TEST_F(GrpcPeerTransportTest, WritesFromOtherThreadsArriveInOrderOnEveryStream) {
  StartTransport();
  constexpr int kStreams = 8;
  constexpr int kCount = 200;
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < kStreams; ++i) peers.push_back(ConnectAdmitted(absl::StrCat("peer-", i), i));
  std::vector<std::thread> writers;
  std::vector<size_t> written(kStreams, 0);
  for (int s = 0; s < kStreams; ++s) {
    writers.emplace_back([&, s] {
      std::vector<EdgeMessage> out;
      for (int i = 0; i < kCount; ++i) out.push_back(NumberedEdgeMessage(i));
      written[s] = testing::WriteAll(*handler_.stream(s), out);
    });
  }
  for (std::thread& writer : writers) writer.join();
  for (int s = 0; s < kStreams; ++s) {
    EXPECT_EQ(written[s], static_cast<size_t>(kCount));
    ASSERT_TRUE(peers[s]->WaitForReceived(kCount));
    auto received = peers[s]->Received();
    ASSERT_EQ(received.size(), static_cast<size_t>(kCount));
    for (int i = 0; i < kCount; ++i) {
      EXPECT_EQ(received[i].request_id(), absl::StrCat("edge-", i)) << "stream " << s;
    }
    EXPECT_EQ(handler_.observer(s)->violations(), 0);
  }
}

// Writes waiting to be started when their streams end (Finish, or the
// transport shutting down right after) still each get their callback
// exactly once, and before the observer's OnEnd.
TEST_F(GrpcPeerTransportTest, StreamsEndedWithWritesWaitingReportEveryWriteBeforeOnEnd) {
  StartTransport();
  constexpr int kStreams = 16;
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < kStreams; ++i) peers.push_back(ConnectAdmitted(absl::StrCat("peer-", i), i));
  struct Outcome {
    absl::Mutex mu;
    int calls ABSL_GUARDED_BY(mu) = 0;
    int ends_seen ABSL_GUARDED_BY(mu) = -1;
  };
  std::vector<std::shared_ptr<Outcome>> outcomes;
  for (int i = 0; i < kStreams; ++i) {
    auto outcome = std::make_shared<Outcome>();
    outcomes.push_back(outcome);
    auto observer = handler_.observer(i);
    handler_.stream(i)->Write(NumberedEdgeMessage(i), [outcome, observer](bool) {
      absl::MutexLock lock(&outcome->mu);
      ++outcome->calls;
      outcome->ends_seen = observer->end_count();
    });
    // Half end on their own at once, the rest with the transport.
    if (i % 2 == 0) handler_.stream(i)->Finish(absl::AbortedError("kicked"));
  }
  transport_->Shutdown();
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_EQ(handler_.observer(i)->end_count(), 1) << "stream " << i;
    absl::MutexLock lock(&outcomes[i]->mu);
    EXPECT_EQ(outcomes[i]->calls, 1) << "stream " << i;
    EXPECT_EQ(outcomes[i]->ends_seen, 0) << "stream " << i;
  }
}

TEST_F(GrpcPeerTransportTest, KeepaliveToleratesClientsPingingWithinTheLimit) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.keepalive_time = absl::Milliseconds(100);
  options.keepalive_timeout = absl::Seconds(5);
  options.min_client_ping_interval = absl::Milliseconds(50);
  StartTransport(options);
  channel_ = TestPeer::NewChannel(transport_->port(), {std::nullopt, absl::Milliseconds(100)});
  auto peer = ConnectAdmitted("peer-1", 0);
  // Pings flow both ways for a while; the connection must survive them.
  EXPECT_FALSE(peer->WaitForEnd(absl::Seconds(1)).has_value());
  ASSERT_TRUE(peer->Send(NumberedPeerMessage(0)));
  ASSERT_TRUE(handler_.observer(0)->WaitForMessages(1));
}

TEST_F(GrpcPeerTransportTest, KeepaliveDropsClientsPingingTooOften) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.min_client_ping_interval = absl::Seconds(10);
  options.max_ping_strikes = 1;
  StartTransport(options);
  channel_ = TestPeer::NewChannel(transport_->port(), {std::nullopt, absl::Milliseconds(50)});
  auto peer = ConnectAdmitted("peer-1", 0);
  auto end = peer->WaitForEnd(absl::Seconds(20));
  ASSERT_TRUE(end.has_value());
  EXPECT_FALSE(end->ok());
  EXPECT_TRUE(handler_.observer(0)->WaitForEnd());
}

TEST_F(GrpcPeerTransportTest, StartFailsWhenThePortIsTaken) {
  StartTransport();
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.address = absl::StrCat("127.0.0.1:", transport_->port());
  auto second = grpc_transport::GrpcPeerTransport::Create(options);
  ASSERT_TRUE(second.ok());
  RecordingHandler other;
  absl::Status status = (*second)->Start(&other);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ((*second)->port(), 0);
}

TEST_F(GrpcPeerTransportTest, CreateRejectsBadOptions) {
  struct Case {
    std::string option;
    std::function<void(grpc_transport::GrpcPeerTransportOptions&)> spoil;
  };
  std::vector<Case> cases = {
      {"address", [](auto& o) { o.address = ""; }},
      {"keepalive_time", [](auto& o) { o.keepalive_time = absl::ZeroDuration(); }},
      {"keepalive_timeout", [](auto& o) { o.keepalive_timeout = -absl::Seconds(1); }},
      {"min_client_ping_interval", [](auto& o) { o.min_client_ping_interval = -absl::Seconds(1); }},
      {"max_ping_strikes", [](auto& o) { o.max_ping_strikes = -1; }},
      {"max_message_bytes", [](auto& o) { o.max_message_bytes = 0; }},
      {"max_metadata_bytes", [](auto& o) { o.max_metadata_bytes = -5; }},
      {"write_timeout", [](auto& o) { o.write_timeout = absl::ZeroDuration(); }},
      {"shutdown_grace", [](auto& o) { o.shutdown_grace = -absl::Seconds(1); }},
      {"clock", [](auto& o) { o.clock = nullptr; }},
      {"key_file", [](auto& o) { o.cert_file = "/tmp/cert.pem"; }},
      {"cert_file", [](auto& o) { o.key_file = "/tmp/key.pem"; }},
      {"client_ca_file", [](auto& o) { o.client_ca_file = "/tmp/ca.pem"; }},
  };
  for (const Case& c : cases) {
    grpc_transport::GrpcPeerTransportOptions options = Options();
    c.spoil(options);
    auto transport = grpc_transport::GrpcPeerTransport::Create(options);
    ASSERT_FALSE(transport.ok()) << c.option;
    EXPECT_EQ(transport.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(transport.status().message()), HasSubstr(c.option));
  }
  auto transport = grpc_transport::GrpcPeerTransport::Create(Options());
  ASSERT_TRUE(transport.ok());
  EXPECT_EQ((*transport)->Start(nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*transport)->ReloadCredentials().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace edge
