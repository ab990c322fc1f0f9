// Contract §4 end to end: commands produced to Kafka by a backend reach the
// right peer over gRPC, exactly as sent and in partition order.
#include <signal.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "e2e_kafka/edged_kafka_fixture.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace edge::testing {
namespace {

using giggityflix_grpc_peer::EdgeMessage;
using google::protobuf::util::MessageDifferencer;

constexpr absl::Duration kCommandTimeout = absl::Seconds(30);

EdgeMessage Expected(const std::string& text) {
  EdgeMessage message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

TEST_F(EdgedKafkaTest, EveryCommandTypeReachesThePeerExactlyAsSent) {
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("peer-1");
  ASSERT_NE(peer, nullptr);
  const std::string edge = absl::StrCat("edge_id: \"", edge_id(), "\" ");

  // (command JSON, the EdgeMessage the peer must receive)
  std::vector<std::pair<std::string, EdgeMessage>> cases = {
      {R"({"type":"file_delete","peer_id":"peer-1","request_id":"r-delete","catalog_ids":["c1","c2"]})",
       Expected(
           edge +
           R"(request_id: "r-delete" file_delete_request { catalog_ids: "c1" catalog_ids: "c2" })")},
      {R"({"type":"file_hash","peer_id":"peer-1","request_id":"r-hash","catalog_id":"c1","hash_types":["sha256","md5"],"priority":"high"})",
       Expected(
           edge +
           R"(request_id: "r-hash" file_hash_request { catalog_id: "c1" hash_types: "sha256" hash_types: "md5" })")},
      {R"({"type":"file_remap","peer_id":"peer-1","request_id":"r-remap","old_catalog_id":"c1","new_catalog_id":"c9"})",
       Expected(
           edge +
           R"(request_id: "r-remap" file_remap_request { old_catalog_id: "c1" new_catalog_id: "c9" })")},
      {R"({"type":"screenshot","peer_id":"peer-1","request_id":"r-shot","catalog_id":"c1","quantity":3,"upload_token":"tok-1","upload_endpoint":"https://upload.example/shots"})",
       Expected(
           edge +
           R"(request_id: "r-shot" screenshot_capture_request { catalog_id: "c1" quantity: 3 upload_token: "tok-1" upload_endpoint: "https://upload.example/shots" })")},
      {R"({"type":"screenshot","peer_id":"peer-1","request_id":"r-shot-default","catalog_id":"c2"})",
       Expected(
           edge +
           R"(request_id: "r-shot-default" screenshot_capture_request { catalog_id: "c2" quantity: 1 })")},
      {R"({"type":"catalog_announcement","peer_id":"peer-1","request_id":"r-catalog"})",
       Expected(edge + R"(request_id: "r-catalog" catalog_announcement_request {})")},
      {R"({"type":"batch_file_offer_response","peer_id":"peer-1","request_id":"r-offer","files":[{"relative_path":"films/a.mkv","catalog_id":"c7"},{"relative_path":"films/b.mkv","catalog_id":"c8"}]})",
       Expected(
           edge +
           R"(request_id: "r-offer" batch_file_offer_response { files { relative_path: "films/a.mkv" catalog_id: "c7" } files { relative_path: "films/b.mkv" catalog_id: "c8" } })")},
      {R"({"type":"webrtc","peer_id":"peer-1","request_id":"r-rtc","webrtc":{"request_id":"w-1","streamSessionRequest":{"catalogId":"c1","sessionId":"s-1","maxBitrateKbps":4000,"preferredCodec":"h264"}}})",
       Expected(
           edge +
           R"(request_id: "r-rtc" webrtc { request_id: "w-1" stream_session_request { catalog_id: "c1" session_id: "s-1" max_bitrate_kbps: 4000 preferred_codec: "h264" } })")},
      {R"({"type":"webrtc","peer_id":"peer-1","request_id":"r-ice","webrtc":{"ice_candidate":{"session_id":"s-2","candidate":"candidate:1 1 UDP 2122 10.0.0.2 5000 typ host","sdp_mid":"0","sdp_m_line_index":1}}})",
       Expected(
           edge +
           R"(request_id: "r-ice" webrtc { request_id: "r-ice" ice_candidate { session_id: "s-2" candidate: "candidate:1 1 UDP 2122 10.0.0.2 5000 typ host" sdp_mid: "0" sdp_m_line_index: 1 } })")},
  };
  std::vector<std::pair<std::string, std::string>> produce;
  for (const auto& [json, expected] : cases) produce.emplace_back("peer-1", json);
  // Without a request_id the edge makes a fresh one for each command.
  produce.emplace_back("peer-1", R"({"type":"file_hash","peer_id":"peer-1","catalog_id":"c3"})");
  produce.emplace_back("peer-1", R"({"type":"file_hash","peer_id":"peer-1","catalog_id":"c4"})");
  ProduceCommands(produce);

  ASSERT_TRUE(peer->WaitForMessage(
      [](const EdgeMessage& m) {
        return m.has_file_hash_request() && m.file_hash_request().catalog_id() == "c4";
      },
      kCommandTimeout));
  std::vector<EdgeMessage> commands = peer->Commands();
  ASSERT_EQ(commands.size(), cases.size() + 2);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(commands[i], cases[i].second))
        << "command " << i << "\n got: " << commands[i].ShortDebugString()
        << "\nwant: " << cases[i].second.ShortDebugString();
  }
  const EdgeMessage& generated_a = commands[cases.size()];
  const EdgeMessage& generated_b = commands[cases.size() + 1];
  EXPECT_FALSE(generated_a.request_id().empty());
  EXPECT_FALSE(generated_b.request_id().empty());
  EXPECT_NE(generated_a.request_id(), generated_b.request_id());
  EXPECT_EQ(generated_a.edge_id(), edge_id());

  // disconnect: the stream ends ABORTED, `disconnected` says `kicked`.
  ProduceCommand(
      "peer-1",
      R"({"type":"disconnect","peer_id":"peer-1","request_id":"r-kick","reason":"maintenance"})");
  std::optional<grpc::Status> end = peer->WaitForEnd(kCommandTimeout);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ABORTED) << end->error_message();
  EXPECT_NE(end->error_message().find("maintenance"), std::string::npos) << end->error_message();

  auto lifecycle = Reader(kLifecycleTopic);
  ASSERT_NE(lifecycle, nullptr);
  ASSERT_TRUE(lifecycle->WaitForCount(2, absl::Seconds(10)));
  std::vector<google::protobuf::Struct> events = ParseAll(lifecycle->RecordsWithKey("peer-1"));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(JsonString(events[1], "event_type"), "disconnected");
  EXPECT_EQ(JsonString(events[1], "reason"), "kicked");
  // No command was dead-lettered along the way.
  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  ASSERT_TRUE(deadletters->CatchUp().ok());
  EXPECT_TRUE(deadletters->records().empty()) << deadletters->records()[0].value;
}

TEST_F(EdgedKafkaTest, WebRtcReplyWithoutPendingCallIsDeadLettered) {
  StartEdged();
  auto peer = ConnectPeer("peer-1");
  ASSERT_NE(peer, nullptr);
  const std::string reply =
      R"({"type":"webrtc_reply","peer_id":"peer-1","request_id":"no-such-call","webrtc":{"stream_session_response":{"catalog_id":"c1","session_id":"s-1","success":true}}})";
  ProduceCommand("peer-1", reply);

  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  ASSERT_TRUE(deadletters->WaitForCount(1, kCommandTimeout));
  const IncomingRecord& letter = deadletters->records()[0];
  EXPECT_EQ(letter.key, "peer-1");
  auto value = ParseJsonObject(letter.value);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(JsonString(*value, "reason"), "invalid_command");
  EXPECT_EQ(JsonString(*value, "peer_id"), "peer-1");
  EXPECT_EQ(JsonString(*value, "edge_id"), edge_id());
  EXPECT_EQ(JsonString(*value, "original_topic"), commands_topic());
  EXPECT_EQ(JsonString(*value, "original_message"), reply);
  EXPECT_NE(JsonString(*value, "detail").find("no-such-call"), std::string::npos);
  // Nothing reached the peer but the edge's own catalog pull.
  for (const EdgeMessage& m : peer->Commands()) {
    EXPECT_TRUE(m.has_catalog_announcement_request()) << m.ShortDebugString();
  }
}

TEST_F(EdgedKafkaTest, CommandsForEachPeerArriveInTheOrderProduced) {
  constexpr int kPeers = 3;
  constexpr int kCommandsPerPeer = 200;
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int p = 0; p < kPeers; ++p) {
    peers.push_back(ConnectPeer(absl::StrCat("order-peer-", p)));
    ASSERT_NE(peers.back(), nullptr);
  }
  std::vector<std::pair<std::string, std::string>> produce;
  for (int n = 0; n < kCommandsPerPeer; ++n) {
    for (int p = 0; p < kPeers; ++p) {
      std::string peer_id = absl::StrCat("order-peer-", p);
      produce.emplace_back(peer_id, absl::StrCat(R"({"type":"file_hash","peer_id":")", peer_id,
                                                 R"(","request_id":")", peer_id, "-", n,
                                                 R"(","catalog_id":"c)", n, R"("})"));
    }
  }
  ProduceCommands(produce);

  for (int p = 0; p < kPeers; ++p) {
    TestPeer& peer = *peers[p];
    ASSERT_TRUE(peer.WaitForReceived(kCommandsPerPeer + 1, kCommandTimeout))
        << peer.peer_id() << " received " << peer.ReceivedCount();
    std::vector<EdgeMessage> commands = peer.Commands();
    ASSERT_EQ(commands.size(), static_cast<size_t>(kCommandsPerPeer)) << peer.peer_id();
    for (int n = 0; n < kCommandsPerPeer; ++n) {
      ASSERT_EQ(commands[n].request_id(), absl::StrCat(peer.peer_id(), "-", n))
          << "position " << n << " of " << peer.peer_id();
      ASSERT_EQ(commands[n].file_hash_request().catalog_id(), absl::StrCat("c", n));
    }
  }
}

// Issue: a record whose headers alone exceed what the dead-letter topic
// takes (> 1 MB) could not be dead-lettered, so its partition's commit
// stopped there and later commands came again after a restart. Now its
// letter goes out reduced (headers cut, marked) and the commit moves on.
TEST_F(EdgedKafkaTest, CommandWithMegabytesOfHeadersIsDeadLetteredReducedAndCommitted) {
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("peer-1");
  ASSERT_NE(peer, nullptr);
  std::vector<RecordHeader> headers = {{"trace", "t-1"}};
  for (int i = 0; i < 3; ++i) headers.push_back({"bulk", std::string(400 * 1024, 'h')});
  ASSERT_TRUE(backend().ProduceWithHeaders(commands_topic(), "peer-1", "{not json", headers).ok());
  const std::string after =
      R"({"type":"file_hash","peer_id":"peer-1","request_id":"after","catalog_id":"c1"})";
  ProduceCommand("peer-1", after);
  ASSERT_TRUE(peer->WaitUntil(
      [](const std::vector<EdgeMessage>& got) {
        for (const EdgeMessage& m : got) {
          if (m.request_id() == "after") return true;
        }
        return false;
      },
      kCommandTimeout));

  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  ASSERT_TRUE(deadletters->WaitForCount(1, kCommandTimeout)) << EdgedLog();
  const IncomingRecord& letter = deadletters->records()[0];
  EXPECT_EQ(letter.key, "peer-1");
  ASSERT_EQ(letter.headers.size(), 1u);
  EXPECT_EQ(letter.headers[0].key, "trace");
  auto value = ParseJsonObject(letter.value);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(JsonString(*value, "reason"), "invalid_json");
  EXPECT_EQ(JsonString(*value, "original_message"), "{not json");
  EXPECT_EQ(value->fields().at("original_headers_dropped").number_value(), 3);

  // The commit passed both records: after a restart neither comes again.
  ASSERT_TRUE(edged().Signal(SIGTERM).ok());
  absl::StatusOr<int> exited = edged().WaitForExit(absl::Seconds(30));
  ASSERT_TRUE(exited.ok()) << exited.status();
  EXPECT_EQ(*exited, 0) << EdgedLog();
  ASSERT_TRUE(peer->WaitForEnd(absl::Seconds(10)).has_value());
  ASSERT_TRUE(edged().Restart().ok()) << EdgedLog();
  auto again = ConnectPeer("peer-1");
  ASSERT_NE(again, nullptr);
  ProduceCommand(
      "peer-1",
      R"({"type":"file_hash","peer_id":"peer-1","request_id":"marker","catalog_id":"c1"})");
  ASSERT_TRUE(again->WaitUntil(
      [](const std::vector<EdgeMessage>& got) {
        for (const EdgeMessage& m : got) {
          if (m.request_id() == "marker") return true;
        }
        return false;
      },
      kCommandTimeout));
  for (const EdgeMessage& m : again->Commands()) {
    EXPECT_EQ(m.request_id(), "marker") << m.ShortDebugString();
  }
  ASSERT_TRUE(deadletters->CatchUp().ok());
  EXPECT_EQ(deadletters->records().size(), 1u);
}

}  // namespace
}  // namespace edge::testing
