// Contract §2, §3, §4 and §7 end to end: a real gRPC server on port 0, the
// generated client stubs a peer is built from, the core, and the in-memory
// bus standing in for Kafka.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edge/edge.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/testing/fake_clock.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_tracker.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge {
namespace {

namespace gp = giggityflix_grpc_peer;
using ::edge::testing::WaitFor;

constexpr char kCommands[] = "edge-commands-edge-1";
constexpr char kDeadLetters[] = "edge-commands-edge-1.deadletter";
constexpr char kLifecycle[] = "peer-lifecycle-events";

std::string Field(const std::string& json, const std::string& name) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
  auto it = s.fields().find(name);
  if (it == s.fields().end()) return "<absent>";
  if (it->second.has_string_value()) return it->second.string_value();
  if (it->second.has_bool_value()) return it->second.bool_value() ? "true" : "false";
  return std::to_string(static_cast<int64_t>(it->second.number_value()));
}

// One peer as the existing peers are built: the generated stub, a
// bidirectional stream, `peer_id` metadata.
class Peer {
 public:
  Peer(const std::shared_ptr<grpc::Channel>& channel, const std::string* peer_id)
      : stub_(gp::PeerEdgeService::NewStub(channel)) {
    if (peer_id != nullptr) context_.AddMetadata("peer_id", *peer_id);
    stream_ = stub_->AsyncOperations(&context_);
  }
  ~Peer() {
    context_.TryCancel();
    Finish();
  }

  bool Send(const gp::PeerMessage& m) { return stream_->Write(m); }
  // Blocks until a message arrives or the stream ends (false).
  bool Read(gp::EdgeMessage* m) { return stream_->Read(m); }
  // Reads until `n` messages arrived; false if the stream ended first.
  bool ReadN(size_t n, std::vector<gp::EdgeMessage>* out) {
    gp::EdgeMessage m;
    while (out->size() < n && Read(&m)) out->push_back(m);
    return out->size() >= n;
  }
  // Drains the stream and returns its final status.
  grpc::Status Finish() {
    if (!finished_) {
      gp::EdgeMessage ignored;
      while (stream_->Read(&ignored)) {
      }
      status_ = stream_->Finish();
      finished_ = true;
    }
    return status_;
  }
  void Cancel() { context_.TryCancel(); }

 private:
  std::unique_ptr<gp::PeerEdgeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<gp::PeerMessage, gp::EdgeMessage>> stream_;
  bool finished_ = false;
  grpc::Status status_;
};

gp::PeerMessage Keepalive(const std::string& request_id) {
  gp::PeerMessage m;
  m.set_request_id(request_id);
  m.mutable_catalog_announcement();
  return m;
}

class GrpcEdgeTest : public ::testing::Test {
 protected:
  void Start(EdgeOptions options = Options()) {
    grpc_transport::GrpcPeerTransportOptions grpc;
    grpc.address = "127.0.0.1:0";
    grpc.clock = &clock_;
    grpc.write_timeout = absl::Seconds(5);
    auto transport = grpc_transport::GrpcPeerTransport::Create(grpc);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::move(*transport);
    auto edge =
        Edge::Create(options, EdgeParts{transport_.get(), &bus_, &tracker_, &clock_, nullptr});
    ASSERT_TRUE(edge.ok()) << edge.status();
    edge_ = std::move(*edge);
    ASSERT_TRUE(edge_->Start().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(transport_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  static EdgeOptions Options() {
    EdgeOptions o;
    o.edge_id = "edge-1";
    o.topics.commands = kCommands;
    o.topics.deadletter = kDeadLetters;
    o.catalog_pull_on_connect = false;
    return o;
  }

  void TearDown() override {
    if (edge_) edge_->Shutdown(clock_.Now() + absl::Seconds(5));
  }

  std::unique_ptr<Peer> Connect(const std::string& peer_id) {
    return std::make_unique<Peer>(channel_, &peer_id);
  }

  // Connects and waits until the edge published this peer's `connected`.
  std::unique_ptr<Peer> Admit(const std::string& peer_id) {
    size_t before = Connected(peer_id);
    auto peer = Connect(peer_id);
    EXPECT_TRUE(WaitFor([&] { return Connected(peer_id) > before; })) << peer_id;
    return peer;
  }

  size_t Connected(const std::string& peer_id) {
    size_t n = 0;
    for (const auto& r : bus_.Published(kLifecycle)) {
      n += r.key == peer_id && Field(r.value, "event_type") == "connected";
    }
    return n;
  }

  grpc::StatusCode Refusal(const std::string* peer_id) {
    Peer peer(channel_, peer_id);
    return peer.Finish().error_code();
  }

  void Produce(const std::string& value, const std::string& key = "peer-1") {
    ASSERT_TRUE(bus_.Produce(kCommands, key, value).ok());
  }

  testing::FakeClock clock_;
  testing::FakeMessageBus bus_;
  testing::FakeTrackerCluster cluster_;
  testing::FakeTracker tracker_{&cluster_, "edge-1"};
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
  std::unique_ptr<Edge> edge_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcEdgeTest, EachAdmissionRowEndsTheStreamWithItsStatus) {
  EdgeOptions options = Options();
  options.max_peers = 2;
  Start(options);
  EXPECT_EQ(Refusal(nullptr), grpc::StatusCode::UNAUTHENTICATED);
  std::string empty, bad = "no spaces", lng(129, 'x');
  EXPECT_EQ(Refusal(&empty), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Refusal(&bad), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Refusal(&lng), grpc::StatusCode::INVALID_ARGUMENT);
  auto first = Admit("peer-1");
  std::string dup = "peer-1";
  EXPECT_EQ(Refusal(&dup), grpc::StatusCode::ALREADY_EXISTS);
  testing::FakeTracker other(&cluster_, "edge-2");
  ASSERT_TRUE(other.Start().ok());
  other.Claim("peer-9", clock_.Now() + absl::Seconds(1), [](absl::StatusOr<PeerClaim>) {});
  std::string held = "peer-9";
  {
    Peer peer(channel_, &held);
    grpc::Status status = peer.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
    EXPECT_NE(status.error_message().find("edge-2"), std::string::npos) << status.error_message();
  }
  auto second = Admit("peer-2");
  std::string third = "peer-3";
  EXPECT_EQ(Refusal(&third), grpc::StatusCode::RESOURCE_EXHAUSTED);
  cluster_.SetUnavailable(true);
  second.reset();
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().peers == 1; }));
  EXPECT_EQ(Refusal(&third), grpc::StatusCode::UNAVAILABLE);
  cluster_.SetUnavailable(false);
  edge_->Drain();
  std::string late = "peer-4";
  EXPECT_EQ(Refusal(&late), grpc::StatusCode::UNAVAILABLE);
  // Refusals published nothing: two peers, two `connected`, one `disconnected`.
  ASSERT_TRUE(bus_.WaitForPublished(kLifecycle, 3, absl::Seconds(5)));
}

TEST_F(GrpcEdgeTest, ReplacePolicyAbortsTheOlderStream) {
  EdgeOptions options = Options();
  options.duplicate_policy = DuplicatePolicy::kReplace;
  Start(options);
  auto first = Admit("peer-1");
  auto second = Admit("peer-1");
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::ABORTED);
  ASSERT_TRUE(second->Send(Keepalive("k")));
  gp::EdgeMessage ack;
  ASSERT_TRUE(second->Read(&ack));
  EXPECT_EQ(ack.request_id(), "k");
}

TEST_F(GrpcEdgeTest, AcknowledgesStoredEventsAndKeepalivesButPublishesNoKeepalive) {
  Start();
  auto peer = Admit("peer-1");
  gp::PeerMessage hash;
  hash.set_request_id("h1");
  hash.mutable_file_hash_response()->set_catalog_id("c1");
  (*hash.mutable_file_hash_response()->mutable_hashes())["sha256"] = "abc";
  hash.mutable_file_hash_response()->set_success(true);
  ASSERT_TRUE(peer->Send(hash));
  ASSERT_TRUE(peer->Send(Keepalive("k1")));
  std::vector<gp::EdgeMessage> acks;
  ASSERT_TRUE(peer->ReadN(2, &acks));
  std::set<std::string> ids;
  for (const auto& ack : acks) {
    EXPECT_EQ(ack.payload_case(), gp::EdgeMessage::PAYLOAD_NOT_SET);
    EXPECT_EQ(ack.edge_id(), "edge-1");
    ids.insert(ack.request_id());
  }
  EXPECT_EQ(ids, (std::set<std::string>{"h1", "k1"}));
  auto events = bus_.Published("file-hash-responses");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(Field(events[0].value, "request_id"), "h1");
  EXPECT_TRUE(bus_.Published("peer-catalog-updates").empty());
}

TEST_F(GrpcEdgeTest, CatalogPullOnConnectCarriesAFreshRequestId) {
  EdgeOptions options = Options();
  options.catalog_pull_on_connect = true;
  Start(options);
  auto peer = Connect("peer-1");
  gp::EdgeMessage pull;
  ASSERT_TRUE(peer->Read(&pull));
  ASSERT_TRUE(pull.has_catalog_announcement_request());
  gp::PeerMessage answer;
  answer.set_request_id(pull.request_id());
  answer.mutable_catalog_announcement()->add_catalog_ids("m1");
  ASSERT_TRUE(peer->Send(answer));
  gp::EdgeMessage ack;
  ASSERT_TRUE(peer->Read(&ack));
  EXPECT_EQ(ack.request_id(), pull.request_id());
  ASSERT_EQ(bus_.Published("peer-catalog-updates").size(), 1u);
}

TEST_F(GrpcEdgeTest, CommandsArriveInOrder) {
  Start();
  auto peer = Admit("peer-1");
  constexpr int kCommandsSent = 100;
  for (int i = 0; i < kCommandsSent; ++i) {
    Produce(R"({"type":"file_remap","peer_id":"peer-1","request_id":"r)" + std::to_string(i) +
            R"(","old_catalog_id":"a","new_catalog_id":"b"})");
  }
  std::vector<gp::EdgeMessage> got;
  ASSERT_TRUE(peer->ReadN(kCommandsSent, &got));
  for (int i = 0; i < kCommandsSent; ++i) {
    EXPECT_EQ(got[i].request_id(), "r" + std::to_string(i));
    EXPECT_TRUE(got[i].has_file_remap_request());
  }
  ASSERT_TRUE(WaitFor([&] { return bus_.Committed(kCommands, 0) == kCommandsSent; }));
}

TEST_F(GrpcEdgeTest, SlowPeerIsEndedWithResourceExhaustedAndItsCommandsDeadLettered) {
  EdgeOptions options = Options();
  options.peer_send_queue_max = 4;
  options.command_hold = absl::ZeroDuration();  // commands after the peer left are not held
  Start(options);
  auto peer = Admit("peer-1");
  // The peer reads nothing while large commands fill the HTTP/2 windows and
  // then its send queue.
  std::string ids;
  for (int i = 0; i < 2000; ++i) ids += (i ? ",\"" : "\"") + std::string(60, 'a' + i % 26) + "\"";
  constexpr int kSent = 60;
  for (int i = 0; i < kSent; ++i) {
    Produce(R"({"type":"file_delete","peer_id":"peer-1","catalog_ids":[)" + ids + "]}");
  }
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& r : bus_.Published(kLifecycle)) {
      if (Field(r.value, "reason") == "slow") return true;
    }
    return false;
  }));
  // Now the peer reads what did get through, then the status.
  grpc::Status status = peer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  // Every command has an outcome: delivered or dead-lettered as peer_slow.
  ASSERT_TRUE(WaitFor([&] { return bus_.Committed(kCommands, 0) == kSent; }));
  EdgeStats stats = edge_->stats();
  EXPECT_EQ(stats.commands_delivered + stats.commands_deadlettered, kSent);
  // Those the slow peer did not take are peer_slow; those that came after it
  // was gone, peer_not_connected.
  int slow = 0;
  for (const auto& letter : bus_.Published(kDeadLetters)) {
    std::string reason = Field(letter.value, "reason");
    slow += reason == "peer_slow";
    EXPECT_TRUE(reason == "peer_slow" || reason == "peer_not_connected") << reason;
  }
  EXPECT_GT(slow, 0);
}

TEST_F(GrpcEdgeTest, PeerThatGoesSilentIsEndedByTheTimeout) {
  Start();
  auto peer = Admit("peer-1");
  clock_.Advance(absl::Seconds(121));
  EXPECT_EQ(peer->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(bus_.WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(bus_.Published(kLifecycle)[1].value, "reason"), "timeout");
}

TEST_F(GrpcEdgeTest, PeerThatCancelsPublishesStreamClosed) {
  Start();
  auto peer = Admit("peer-1");
  peer->Cancel();
  ASSERT_TRUE(bus_.WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(bus_.Published(kLifecycle)[1].value, "reason"), "stream_closed");
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().peers == 0; }));
}

TEST_F(GrpcEdgeTest, ShutdownEndsEveryStreamWithUnavailableAndPublishesEveryDisconnect) {
  Start();
  constexpr int kPeers = 20;
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < kPeers; ++i) peers.push_back(Admit("peer-" + std::to_string(i)));
  std::vector<grpc::StatusCode> codes(kPeers);
  std::vector<std::thread> readers;
  for (int i = 0; i < kPeers; ++i) {
    readers.emplace_back([&, i] { codes[i] = peers[i]->Finish().error_code(); });
  }
  edge_->Shutdown(clock_.Now() + absl::Seconds(15));
  for (auto& t : readers) t.join();
  for (int i = 0; i < kPeers; ++i) EXPECT_EQ(codes[i], grpc::StatusCode::UNAVAILABLE) << i;
  int shutdowns = 0;
  for (const auto& r : bus_.Published(kLifecycle)) {
    shutdowns += Field(r.value, "reason") == "shutdown";
  }
  EXPECT_EQ(shutdowns, kPeers);
}

}  // namespace
}  // namespace edge

namespace edge {
namespace {

TEST_F(GrpcEdgeTest, InvalidUtf8EndsTheStreamWithInvalidArgumentAndSaysWhy) {
  Start();
  auto peer = Admit("peer-1");
  ASSERT_TRUE(bus_.WaitForPublished(kLifecycle, 1, absl::Seconds(5)));
  gp::PeerMessage bad;
  bad.set_request_id("r1");
  bad.mutable_file_hash_response()->set_catalog_id("movie-\xff\xfe");  // Not UTF-8.
  // The client library logs and sends it anyway, as a buggy or hostile peer would.
  ASSERT_TRUE(peer->Send(bad));
  grpc::Status status = peer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("FileHashResponse.catalog_id"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("UTF-8"), std::string::npos) << status.error_message();
  ASSERT_TRUE(bus_.WaitForPublished(kLifecycle, 2, absl::Seconds(5)));
  EXPECT_EQ(Field(bus_.Published(kLifecycle)[1].value, "reason"), "invalid_utf8");
  // Nothing of the message was published.
  EXPECT_TRUE(bus_.Published("file-hash-responses").empty());
}

}  // namespace
}  // namespace edge
