// Forwarding across the cluster (contract §4, §9): a command produced to one
// edge's command topic for a peer held by another edge makes exactly one
// hop, to the holder's command topic, and reaches the peer there; a command
// for a peer no edge holds is dead-lettered `peer_not_connected`.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "e2e_cluster/cluster_fixture.h"
#include "gtest/gtest.h"

namespace edge::testing {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

std::string HeaderValue(const IncomingRecord& record, const std::string& key) {
  for (const RecordHeader& header : record.headers) {
    if (header.key == key) return header.value;
  }
  return "";
}

class ClusterRoutingTest : public ClusterTest {};

TEST_F(ClusterRoutingTest, CommandForAPeerOnAnotherEdgeMakesOneHop) {
  // The orphan below is held half a second, then dead-lettered.
  EdgedProcess* a = StartEdge("edge-a", {{"COMMAND_HOLD_MS", "500"}});
  EdgedProcess* b = StartEdge("edge-b", {{"COMMAND_HOLD_MS", "500"}});
  ASSERT_TRUE(a && b);
  TestPeer::Options options;
  options.catalog = {"movie-1"};
  auto peer = Connect(*b, "peer-on-b", options);
  ASSERT_TRUE(peer.ok()) << peer.status();

  const std::string command = R"({"type":"file_hash","peer_id":"peer-on-b","request_id":"fwd-1",)"
                              R"("catalog_id":"movie-1","hash_types":["sha256"]})";
  ASSERT_TRUE(backend().Produce(CommandsTopic("edge-a"), "peer-on-b", command).ok());

  auto received = (*peer)->WaitForMessage(
      [](const TestPeer::EdgeMessage& m) { return m.request_id() == "fwd-1"; }, kTimeout);
  ASSERT_TRUE(received.has_value()) << "the command never reached the peer";
  EXPECT_EQ(received->edge_id(), "edge-b");
  ASSERT_TRUE(received->has_file_hash_request());
  EXPECT_EQ(received->file_hash_request().catalog_id(), "movie-1");

  // One hop: B's command topic holds the command once, forwarded by A.
  auto b_commands = Reader(CommandsTopic("edge-b"));
  ASSERT_NE(b_commands, nullptr);
  absl::Status caught_up = b_commands->CatchUp();
  ASSERT_TRUE(caught_up.ok()) << caught_up;
  ASSERT_EQ(b_commands->records().size(), 1u);
  const IncomingRecord& hop = b_commands->records()[0];
  EXPECT_EQ(hop.key, "peer-on-b");
  EXPECT_EQ(hop.value, command);
  EXPECT_EQ(HeaderValue(hop, "edge-forwarded-from"), "edge-a");

  // A command for a peer no edge holds: A dead-letters it, and nothing more
  // goes to B.
  const std::string orphan = R"({"type":"file_hash","peer_id":"peer-nowhere","request_id":"fwd-2",)"
                             R"("catalog_id":"movie-1","hash_types":["sha256"]})";
  ASSERT_TRUE(backend().Produce(CommandsTopic("edge-a"), "peer-nowhere", orphan).ok());
  auto a_dead = Reader(DeadletterTopic("edge-a"));
  ASSERT_NE(a_dead, nullptr);
  ASSERT_TRUE(a_dead->WaitForCount(1, kTimeout));
  google::protobuf::Struct letter = ParseValue(a_dead->records()[0]);
  EXPECT_EQ(JsonString(letter, "peer_id"), "peer-nowhere");
  EXPECT_EQ(JsonString(letter, "edge_id"), "edge-a");
  EXPECT_EQ(JsonString(letter, "reason"), "peer_not_connected");
  EXPECT_EQ(JsonString(letter, "original_message"), orphan);

  // Only the orphan was dead-lettered, by A alone; the peer got its command
  // once.
  ASSERT_TRUE(a_dead->CatchUp().ok());
  EXPECT_EQ(a_dead->records().size(), 1u);
  auto b_dead = Reader(DeadletterTopic("edge-b"));
  ASSERT_NE(b_dead, nullptr);
  ASSERT_TRUE(b_dead->CatchUp().ok());
  EXPECT_TRUE(b_dead->records().empty());
  caught_up = b_commands->CatchUp();
  ASSERT_TRUE(caught_up.ok()) << caught_up;
  EXPECT_EQ(b_commands->records().size(), 1u);
  int copies = 0;
  for (const auto& message : (*peer)->Received()) {
    if (message.request_id() == "fwd-1") ++copies;
  }
  EXPECT_EQ(copies, 1);
}

}  // namespace
}  // namespace edge::testing
