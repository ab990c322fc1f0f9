// Cluster-wide single ownership at admission (contract §2 row 7, §5 `epoch`,
// §9): edged processes sharing one etcd admit each peer_id on one edge only.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "e2e_cluster/cluster_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kEventTimeout = absl::Seconds(20);

class ClusterAdmissionTest : public ClusterTest {
 protected:
  // Ends `peer`'s stream as a peer that goes away, and waits until its edge
  // has released the claim.
  void LeaveAndWaitReleased(std::unique_ptr<TestPeer> peer) {
    const std::string peer_id = peer->peer_id();
    peer->HalfClose();
    EXPECT_TRUE(peer->WaitForEnd().has_value()) << peer_id;
    peer.reset();
    EXPECT_TRUE(WaitFor([&] { return Holder(peer_id).empty(); })) << peer_id << " is still claimed";
  }
};

TEST_F(ClusterAdmissionTest, PeerHeldByAnotherEdgeIsRefusedNamingThatEdge) {
  EdgedProcess* a = StartEdge("edge-a");
  EdgedProcess* b = StartEdge("edge-b");
  EdgedProcess* c = StartEdge("edge-c");
  ASSERT_TRUE(a && b && c);

  auto on_a = Connect(*a, "peer-1");
  ASSERT_TRUE(on_a.ok()) << on_a.status();
  EXPECT_EQ(Holder("peer-1"), "edge-a");

  for (EdgedProcess* other : {b, c}) {
    auto refused = Connect(*other, "peer-1");
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists) << refused.status();
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("edge-a"));
  }
  // The refusals left the claim alone, and A's peer is still served.
  EXPECT_EQ(Holder("peer-1"), "edge-a");
  std::string id = NextRequestId("still-on-a");
  ASSERT_TRUE((*on_a)->SendKeepalive(id));
  EXPECT_TRUE((*on_a)->WaitForAck(id));

  LeaveAndWaitReleased(*std::move(on_a));
  auto on_b = Connect(*b, "peer-1");
  ASSERT_TRUE(on_b.ok()) << on_b.status();
  EXPECT_EQ(Holder("peer-1"), "edge-b");
  auto refused = Connect(*c, "peer-1");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("edge-b"));
}

TEST_F(ClusterAdmissionTest, SimultaneousConnectsToTwoEdgesAdmitEachPeerOnce) {
  constexpr int kPeers = 50;
  EdgedProcess* a = StartEdge("edge-a");
  EdgedProcess* b = StartEdge("edge-b");
  ASSERT_TRUE(a && b);
  EdgedProcess* edges[2] = {a, b};
  const char* edge_ids[2] = {"edge-a", "edge-b"};

  // outcome[i][e]: peer i connecting to edge e.
  std::vector<std::vector<absl::StatusOr<std::unique_ptr<TestPeer>>>> outcome(kPeers);
  for (auto& row : outcome) {
    row.emplace_back(absl::UnknownError("not run"));
    row.emplace_back(absl::UnknownError("not run"));
  }
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int i = 0; i < kPeers; ++i) {
    for (int e = 0; e < 2; ++e) {
      threads.emplace_back([&, i, e] {
        go.WaitForNotification();
        TestPeer::Options options;
        options.admission_timeout = absl::Seconds(20);
        outcome[i][e] = Connect(*edges[e], absl::StrCat("peer-", i), std::move(options));
      });
    }
  }
  go.Notify();
  for (std::thread& thread : threads) thread.join();

  auto keys = Keys("peers/");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), static_cast<size_t>(kPeers));
  int admitted[2] = {0, 0};
  for (int i = 0; i < kPeers; ++i) {
    const std::string peer_id = absl::StrCat("peer-", i);
    int winners = 0;
    int winner = -1;
    for (int e = 0; e < 2; ++e) {
      if (outcome[i][e].ok()) {
        ++winners;
        winner = e;
        ++admitted[e];
      }
    }
    ASSERT_EQ(winners, 1) << peer_id << ": " << outcome[i][0].status() << " / "
                          << outcome[i][1].status();
    const absl::Status& loser = outcome[i][1 - winner].status();
    EXPECT_EQ(loser.code(), absl::StatusCode::kAlreadyExists) << peer_id << ": " << loser;
    EXPECT_THAT(std::string(loser.message()), HasSubstr(edge_ids[winner]));
    auto key = keys->find(absl::StrCat("peers/", peer_id));
    ASSERT_NE(key, keys->end()) << peer_id;
    EXPECT_EQ(key->second.value(), edge_ids[winner]) << peer_id;
    // The admitted stream is alive on the winning edge.
    EXPECT_FALSE((*outcome[i][winner])->end_status().has_value()) << peer_id;
  }
  EXPECT_EQ(admitted[0] + admitted[1], kPeers);
}

TEST_F(ClusterAdmissionTest, EpochGrowsAcrossSuccessiveClaimsOfOnePeer) {
  EdgedProcess* a = StartEdge("edge-a");
  EdgedProcess* b = StartEdge("edge-b");
  ASSERT_TRUE(a && b);
  auto events = Reader(kLifecycleTopic);
  ASSERT_NE(events, nullptr);

  // Connect to A, leave, connect to A again, leave, then connect to B.
  std::vector<int64_t> claim_revisions;
  for (EdgedProcess* edge : {a, a, b}) {
    auto peer = Connect(*edge, "peer-1");
    ASSERT_TRUE(peer.ok()) << peer.status();
    auto key = ClaimKey("peer-1");
    ASSERT_TRUE(key.ok()) << key.status();
    claim_revisions.push_back(key->create_revision());
    LeaveAndWaitReleased(*std::move(peer));
  }

  ASSERT_TRUE(events->WaitUntil(
      [&](const std::vector<IncomingRecord>&) {
        return events->RecordsWithKey("peer-1").size() >= 6;
      },
      kEventTimeout));
  std::vector<IncomingRecord> records = events->RecordsWithKey("peer-1");
  ASSERT_EQ(records.size(), 6u);
  const char* expected_edges[3] = {"edge-a", "edge-a", "edge-b"};
  for (int claim = 0; claim < 3; ++claim) {
    google::protobuf::Struct connected = ParseValue(records[2 * claim]);
    google::protobuf::Struct disconnected = ParseValue(records[2 * claim + 1]);
    EXPECT_EQ(JsonString(connected, "event_type"), "connected");
    EXPECT_EQ(JsonString(disconnected, "event_type"), "disconnected");
    EXPECT_EQ(JsonString(connected, "edge_id"), expected_edges[claim]);
    EXPECT_EQ(JsonString(disconnected, "edge_id"), expected_edges[claim]);
    // The epoch is the claim key's create revision, on both events.
    EXPECT_EQ(JsonInt(connected, "epoch"), claim_revisions[claim]) << claim;
    EXPECT_EQ(JsonInt(disconnected, "epoch"), claim_revisions[claim]) << claim;
    if (claim > 0) {
      EXPECT_GT(claim_revisions[claim], claim_revisions[claim - 1]) << claim;
    }
  }
}

}  // namespace
}  // namespace edge::testing
