// Hostile clients against GrpcPeerTransport: each test reproduces an attack
// (raw HTTP/2 from tests/grpc/hostile_h2.py, or a gRPC client) and checks
// the bound that now stops it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "contract/peer_transport/recording_handler.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "grpc/listener_probe.h"
#include "gtest/gtest.h"
#include "support/child_process.h"
#include "support/test_peer.h"
#include "support/wait.h"

namespace edge {
namespace {

using ::edge::testing::ChildProcess;
using ::edge::testing::RecordingHandler;
using ::edge::testing::TestPeer;
using ::testing::HasSubstr;

// gRPC status and HTTP/2 error codes the script reports.
constexpr int kResourceExhausted = 8;
constexpr int kUnimplemented = 12;

class GrpcHostileTest : public ::testing::Test {
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
  }

  // Runs hostile_h2.py against the transport; returns its RESULT line's JSON.
  std::string RunScript(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {EDGE_SYSTEM_PYTHON3, EDGE_HOSTILE_H2_SCRIPT,
                                     absl::StrCat(transport_->port())};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string output =
        ::testing::TempDir() + "/hostile_h2." + std::to_string(getpid()) + ".log";
    auto child = ChildProcess::Start(argv, output);
    if (!child.ok()) return absl::StrCat("cannot start: ", child.status().ToString());
    auto code = (*child)->WaitForExit(absl::Seconds(60));
    std::string text = (*child)->Output();
    if (!code.ok() || *code != 0) return absl::StrCat("script failed: ", text);
    const size_t at = text.find("RESULT ");
    if (at == std::string::npos) return absl::StrCat("no result: ", text);
    std::string line = text.substr(at + 7);
    return line.substr(0, line.find('\n'));
  }

  testing::FakeClock clock_;
  RecordingHandler handler_;
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
};

TEST_F(GrpcHostileTest, OneConnectionCannotHoldMoreStreamsThanItsBound) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.max_streams_per_connection = 2;
  StartTransport(options);
  auto channel = TestPeer::NewChannel(transport_->port());
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < 2; ++i) {
    TestPeer::Options peer;
    peer.peer_id = absl::StrCat("peer-", i);
    peers.push_back(std::make_unique<TestPeer>(channel, std::move(peer)));
    ASSERT_TRUE(handler_.WaitForStreams(i + 1));
  }
  TestPeer::Options third;
  third.peer_id = "peer-2";
  TestPeer refused(channel, std::move(third));
  auto end = refused.WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(end->error_message(), HasSubstr("AsyncOperations stream"));
  EXPECT_EQ(handler_.stream_count(), 2u);  // The edge never saw the third.

  // Another connection is not affected, and a stream that ended frees its
  // connection's slot.
  TestPeer::Options other;
  other.peer_id = "peer-3";
  TestPeer elsewhere(TestPeer::NewChannel(transport_->port()), std::move(other));
  ASSERT_TRUE(handler_.WaitForStreams(3));
  handler_.stream(0)->Finish(absl::UnavailableError("bye"));
  ASSERT_TRUE(peers[0]->WaitForEnd().has_value());
  TestPeer::Options again;
  again.peer_id = "peer-0";
  std::optional<TestPeer> reconnected;
  // The slot is released when gRPC is done with the old call, just after
  // the peer saw its end; a refusal in between is retried.
  for (int attempt = 0; attempt < 100 && handler_.stream_count() < 4; ++attempt) {
    reconnected.emplace(channel, again);
    // Either the edge sees the stream, or the transport refused it.
    ASSERT_TRUE(testing::WaitFor(
        [&] { return handler_.stream_count() >= 4 || reconnected->end_status().has_value(); }));
    if (handler_.stream_count() >= 4) break;
    ASSERT_EQ(reconnected->end_status()->error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  EXPECT_EQ(handler_.stream_count(), 4u);
}

TEST_F(GrpcHostileTest, RapidResetIsBoundedAndClosesTheConnection) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.max_call_starts_per_connection_per_sec = 10;
  options.call_start_burst = 20;
  StartTransport(options);
  // The fake clock stands still: the connection gets its burst, no more.
  const std::string result = RunScript({"rapid-reset", "20000"});
  EXPECT_THAT(result, HasSubstr("\"closed\": true")) << result;
  EXPECT_LE(handler_.stream_count(), 20u) << result;
  // The edge stays open to everyone else.
  const size_t before = handler_.stream_count();
  TestPeer::Options peer;
  peer.peer_id = "peer-1";
  TestPeer honest(TestPeer::NewChannel(transport_->port()), std::move(peer));
  EXPECT_TRUE(handler_.WaitForStreams(before + 1));
}

TEST_F(GrpcHostileTest, OneMebibyteOfMetadataIsRefused) {
  StartTransport(Options());
  const std::string result = RunScript({"metadata", absl::StrCat(1 << 20)});
  // gRPC itself may reset the stream or answer RESOURCE_EXHAUSTED; either
  // way the call never reaches the edge and nothing of it is kept.
  EXPECT_THAT(
      result,
      ::testing::AnyOf(HasSubstr(absl::StrCat("\"grpc_status\": ", kResourceExhausted)),
                       ::testing::Not(HasSubstr("\"reset\": null")), HasSubstr("\"closed\": true")))
      << result;
  EXPECT_THAT(result, ::testing::Not(HasSubstr("\"grpc_status\": 0"))) << result;
  EXPECT_EQ(handler_.stream_count(), 0u) << result;
}

TEST_F(GrpcHostileTest, MetadataOverTheLimitIsRefusedWithResourceExhausted) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.max_metadata_bytes = 4096;
  StartTransport(options);
  // Below gRPC's own hard limit (twice the soft one), so the edge's check is
  // what answers.
  const std::string result = RunScript({"metadata", "8192"});
  EXPECT_THAT(result, HasSubstr(absl::StrCat("\"grpc_status\": ", kResourceExhausted))) << result;
  EXPECT_EQ(handler_.stream_count(), 0u) << result;
}

TEST_F(GrpcHostileTest, MalformedMessageEndsTheStreamWithInvalidArgumentAndItsReason) {
  StartTransport(Options());
  // Field 1, length-delimited, 5 bytes announced and 1 sent.
  const std::string result = RunScript({"garbage", "0a05ff"});
  EXPECT_THAT(result, HasSubstr("\"grpc_status\": 3")) << result;  // INVALID_ARGUMENT
  ASSERT_TRUE(handler_.WaitForStreams(1));
  auto observer = handler_.observer(0);
  ASSERT_TRUE(observer->WaitForEnd());
  absl::Status end = observer->end_status().value_or(absl::OkStatus());
  EXPECT_EQ(end.code(), absl::StatusCode::kInvalidArgument) << end;
  EXPECT_EQ(end.GetPayload(kEndReasonPayload).value_or(absl::Cord("")), "invalid_message");
  EXPECT_EQ(observer->message_count(), 0u);
}

TEST_F(GrpcHostileTest, InvalidUtf8InANestedStringNamesTheField) {
  StartTransport(Options());
  // PeerMessage.file_delete_response (2) { catalog_id (1): "\xff" }.
  const std::string result = RunScript({"garbage", "12030a01ff"});
  EXPECT_THAT(result, HasSubstr("\"grpc_status\": 3")) << result;
  EXPECT_THAT(result, HasSubstr("FileDeleteResponse.catalog_id")) << result;
  ASSERT_TRUE(handler_.WaitForStreams(1));
  auto observer = handler_.observer(0);
  ASSERT_TRUE(observer->WaitForEnd());
  absl::Status end = observer->end_status().value_or(absl::OkStatus());
  EXPECT_EQ(end.GetPayload(kEndReasonPayload).value_or(absl::Cord("")), "invalid_utf8") << end;
}

TEST_F(GrpcHostileTest, ConnectionThatOpensNoStreamIsClosedWhenIdle) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.max_connection_idle = absl::Milliseconds(300);
  StartTransport(options);
  const std::string result = RunScript({"idle", "30"});
  EXPECT_THAT(result, HasSubstr("\"closed\": true")) << result;
}

TEST_F(GrpcHostileTest, SilentTcpConnectionIsClosedAfterTheHandshakeTimeout) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.handshake_timeout = absl::Milliseconds(300);
  StartTransport(options);
  const std::string result = RunScript({"silent", "30"});
  EXPECT_THAT(result, HasSubstr("\"closed\": true")) << result;
}

TEST_F(GrpcHostileTest, ServerReflectionIsOffUnlessEnabled) {
  StartTransport(Options());
  const std::string path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  std::string result = RunScript({"call", path});
  EXPECT_THAT(result, HasSubstr(absl::StrCat("\"grpc_status\": ", kUnimplemented))) << result;
  transport_->Shutdown();

  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.enable_reflection = true;
  StartTransport(options);
  result = RunScript({"call", path});
  EXPECT_THAT(result, HasSubstr("\"grpc_status\": 0")) << result;
}

TEST_F(GrpcHostileTest, ListenerProbeTellsAListenerThatAcceptsFromOneThatDoesNot) {
  grpc_transport::GrpcPeerTransportOptions options = Options();
  options.listener_probe_interval = absl::Milliseconds(50);
  StartTransport(options);
  EXPECT_TRUE(grpc_transport::internal::ListenerProbe::ProbeOnce(
                  {"127.0.0.1", transport_->port(), false, absl::Seconds(1), absl::Seconds(5), 2})
                  .ok());
  EXPECT_TRUE(transport_->listener_status().ok());

  // A listening socket nobody accepts on: what gRPC 1.51 leaves behind after
  // accept4 failed with EMFILE.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 16), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  grpc_transport::internal::ListenerProbeOptions stuck{
      "127.0.0.1", ntohs(addr.sin_port), false, absl::Milliseconds(10), absl::Milliseconds(200), 2};
  absl::Status status = grpc_transport::internal::ListenerProbe::ProbeOnce(stuck);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("no longer accepts")) << status;

  grpc_transport::internal::ListenerProbe probe(stuck);
  probe.Start();
  EXPECT_TRUE(testing::WaitFor([&] { return !probe.status().ok(); }, absl::Seconds(20)));
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kUnavailable);
  probe.Stop();
  close(fd);
}

TEST(ListenerProbeHostTest, WildcardsAndNamesProbeLoopbackLiteralsThemselves) {
  EXPECT_EQ(grpc_transport::internal::ProbeHostFor("0.0.0.0:50051"), "127.0.0.1");
  EXPECT_EQ(grpc_transport::internal::ProbeHostFor("[::]:50051"), "127.0.0.1");
  EXPECT_EQ(grpc_transport::internal::ProbeHostFor("localhost:50051"), "127.0.0.1");
  EXPECT_EQ(grpc_transport::internal::ProbeHostFor("10.1.2.3:50051"), "10.1.2.3");
  EXPECT_EQ(grpc_transport::internal::ProbeHostFor("[::1]:50051"), "::1");
}

}  // namespace
}  // namespace edge
