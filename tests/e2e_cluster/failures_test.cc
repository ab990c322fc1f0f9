// What a cluster of edges does when an edge or etcd fails (contract §2
// row 8, §9): a killed edge's peers move on within the lease TTL; while etcd
// is down new peers are refused (or admitted with TRACKER_FAIL_OPEN) and
// connected ones stay; when etcd is back their claims are re-established,
// and a peer another edge took meanwhile is ended with reason `error`.
#include <signal.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "e2e_cluster/cluster_fixture.h"
#include "etcd/tcp_proxy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

using ::testing::HasSubstr;

// Whether `peer` is still connected and served: its keepalive is acked.
::testing::AssertionResult StillServed(TestPeer& peer) {
  if (auto end = peer.end_status()) {
    return ::testing::AssertionFailure()
           << peer.peer_id() << " ended: " << end->error_code() << " " << end->error_message();
  }
  std::string id = NextRequestId("alive");
  if (!peer.SendKeepalive(id) || !peer.WaitForAck(id)) {
    return ::testing::AssertionFailure() << peer.peer_id() << ": keepalive not acknowledged";
  }
  return ::testing::AssertionSuccess();
}

class ClusterFailuresTest : public ClusterTest {
 protected:
  // Connects `peer_id` to `edge` until admitted, for up to `timeout`.
  std::unique_ptr<TestPeer> ConnectWhenAdmitted(EdgedProcess& edge, const std::string& peer_id,
                                                absl::Duration timeout) {
    std::unique_ptr<TestPeer> admitted;
    absl::Status last;
    WaitFor(
        [&] {
          auto peer = Connect(edge, peer_id);
          if (!peer.ok()) {
            last = peer.status();
            return false;
          }
          admitted = *std::move(peer);
          return true;
        },
        timeout);
    EXPECT_NE(admitted, nullptr) << peer_id << " never admitted; last: " << last;
    return admitted;
  }
};

TEST_F(ClusterFailuresTest, KilledEdgesPeersConnectElsewhereWithinTheLeaseTtl) {
  EdgedProcess* a = StartEdge("edge-a");
  EdgedProcess* b = StartEdge("edge-b");
  ASSERT_TRUE(a && b);
  std::vector<std::unique_ptr<TestPeer>> on_a;
  for (int i = 0; i < 3; ++i) {
    auto peer = Connect(*a, absl::StrCat("peer-", i));
    ASSERT_TRUE(peer.ok()) << peer.status();
    on_a.push_back(*std::move(peer));
  }
  EXPECT_EQ(Connect(*b, "peer-0").status().code(), absl::StatusCode::kAlreadyExists);

  ASSERT_TRUE(a->Signal(SIGKILL).ok());
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(a->WaitForExit(absl::Seconds(5)).ok());
  // The peers see their streams end, and reconnect to B as soon as A's
  // lease has expired.
  for (auto& peer : on_a) {
    auto end = peer->WaitForEnd();
    ASSERT_TRUE(end.has_value());
    EXPECT_FALSE(end->ok());
  }
  std::vector<std::unique_ptr<TestPeer>> on_b;
  for (int i = 0; i < 3; ++i) {
    on_b.push_back(ConnectWhenAdmitted(*b, absl::StrCat("peer-", i), kLeaseTtl + absl::Seconds(5)));
    ASSERT_NE(on_b.back(), nullptr);
  }
  const absl::Duration took = absl::Now() - killed;
  // etcd expires a lease at most TTL after its last keepalive (plus its
  // ~0.5 s expiry sweep).
  EXPECT_LT(took, kLeaseTtl + absl::Seconds(2)) << took;
  RecordProperty("kill_to_readmitted_ms", static_cast<int>(absl::ToInt64Milliseconds(took)));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Holder(absl::StrCat("peer-", i)), "edge-b");
  }
  auto edges = Keys("edges/");
  ASSERT_TRUE(edges.ok()) << edges.status();
  EXPECT_EQ(edges->count("edges/edge-a"), 0u);
  EXPECT_EQ(edges->count("edges/edge-b"), 1u);
}

TEST_F(ClusterFailuresTest, EtcdOutageRefusesNewPeersKeepsConnectedOnesAndReclaims) {
  EdgedProcess* a = StartEdge("edge-a");
  ASSERT_NE(a, nullptr);
  auto held = Connect(*a, "peer-held");
  ASSERT_TRUE(held.ok()) << held.status();
  auto before = ClaimKey("peer-held");
  ASSERT_TRUE(before.ok()) << before.status();

  ASSERT_TRUE(etcd().Stop().ok());
  auto refused = Connect(*a, "peer-new");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  // Past the lease TTL the edge gives its lease up; its peer stays.
  ASSERT_TRUE(WaitFor([&] { return a->CountLogLines("etcd lease lost") > 0; },
                      kLeaseTtl + absl::Seconds(5)));
  EXPECT_EQ(Connect(*a, "peer-new").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(StillServed(**held));

  ASSERT_TRUE(etcd().Restart().ok());
  auto admitted = ConnectWhenAdmitted(*a, "peer-new", absl::Seconds(10));
  ASSERT_NE(admitted, nullptr);
  EXPECT_EQ(Holder("peer-new"), "edge-a");
  // The connected peer's claim is bound to the edge's new lease (the old
  // lease is revoked once the new one holds the claims).
  ASSERT_TRUE(WaitFor(
      [&] {
        auto keys = Keys("");
        if (!keys.ok()) return false;
        auto peer = keys->find("peers/peer-held");
        auto edge = keys->find("edges/edge-a");
        return peer != keys->end() && edge != keys->end() && peer->second.value() == "edge-a" &&
               peer->second.lease() == edge->second.lease() &&
               edge->second.lease() != before->lease();
      },
      absl::Seconds(10)))
      << "peer-held's claim was not re-established on the new lease";
  EXPECT_TRUE(StillServed(**held));
  EXPECT_EQ(Connect(*a, "peer-held").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(ClusterFailuresTest, FailOpenAdmitsWhileEtcdIsDown) {
  EdgedProcess* open = StartEdge("edge-open", {{"TRACKER_FAIL_OPEN", "true"}});
  EdgedProcess* closed = StartEdge("edge-closed");
  ASSERT_TRUE(open && closed);
  ASSERT_TRUE(etcd().Stop().ok());

  auto admitted = Connect(*open, "peer-1");
  EXPECT_TRUE(admitted.ok()) << admitted.status();
  auto refused = Connect(*closed, "peer-2");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
  EXPECT_GT(open->CountLogLines("TRACKER_FAIL_OPEN"), 0);
}

// An edge cut off from etcd past its lease counts as dead (contract §5): the
// cluster declares its claims lost and publishes their `edge_lost`, the peer
// may connect elsewhere, and the edge, once back, ends those streams (a
// second `disconnected` of the same epoch, reason `error`: the duplicate §5
// allows for this case).
TEST_F(ClusterFailuresTest, PeersOfAnEdgeCutOffPastItsLeaseAreDeclaredLostAndEnded) {
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(etcd().client_port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EdgedProcess* a = StartEdge("edge-a", {{"ETCD_ENDPOINTS", (*proxy)->endpoint()}});
  // B with metrics on: its tracker is then wrapped by the instrumented one,
  // which must pass the lost claims through.
  EdgedProcess* b = StartEdge("edge-b", {{"METRICS_ADDRESS", "127.0.0.1:0"}});
  ASSERT_TRUE(a && b);
  auto events = Reader(kLifecycleTopic);
  ASSERT_NE(events, nullptr);
  auto moved = Connect(*a, "peer-moved");
  ASSERT_TRUE(moved.ok()) << moved.status();
  auto stays = Connect(*a, "peer-stays");
  ASSERT_TRUE(stays.ok()) << stays.status();

  // A is cut off from etcd: its lease expires there, and peer-moved
  // reconnects to B.
  (*proxy)->SetConnected(false);
  auto on_b = ConnectWhenAdmitted(*b, "peer-moved", kLeaseTtl + absl::Seconds(5));
  ASSERT_NE(on_b, nullptr);
  auto edge_lost_of = [&](const std::string& peer) {
    for (const IncomingRecord& record : events->RecordsWithKey(peer)) {
      if (JsonString(ParseValue(record), "reason") == "edge_lost") return true;
    }
    return false;
  };
  ASSERT_TRUE(events->WaitUntil(
      [&](const std::vector<IncomingRecord>&) {
        return edge_lost_of("peer-moved") && edge_lost_of("peer-stays");
      },
      kLeaseTtl + absl::Seconds(10)));

  // A reaches etcd again and ends both streams: neither claim is its own.
  (*proxy)->SetConnected(true);
  for (auto* peer : {moved->get(), stays->get()}) {
    auto end = peer->WaitForEnd(absl::Seconds(15));
    ASSERT_TRUE(end.has_value()) << "A kept serving a peer it lost";
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  EXPECT_TRUE(StillServed(*on_b));
  EXPECT_EQ(Holder("peer-moved"), "edge-b");

  for (const std::string peer : {"peer-moved", "peer-stays"}) {
    ASSERT_TRUE(events->WaitUntil(
        [&](const std::vector<IncomingRecord>&) {
          for (const IncomingRecord& record : events->RecordsWithKey(peer)) {
            if (JsonString(ParseValue(record), "reason") == "error") return true;
          }
          return false;
        },
        absl::Seconds(20)))
        << peer;
    int64_t epoch_on_a = -1;
    int edge_lost = 0;
    bool connected_on_b = false;
    for (const IncomingRecord& record : events->RecordsWithKey(peer)) {
      auto value = ParseValue(record);
      const std::string type = JsonString(value, "event_type");
      if (type == "connected" && JsonString(value, "edge_id") == "edge-a") {
        epoch_on_a = JsonInt(value, "epoch");
        continue;
      }
      if (type == "connected") {
        connected_on_b = true;
        continue;
      }
      // Every disconnected closes A's claim, in A's name.
      EXPECT_EQ(JsonString(value, "edge_id"), "edge-a") << peer;
      EXPECT_EQ(JsonInt(value, "epoch"), epoch_on_a) << peer;
      const std::string reason = JsonString(value, "reason");
      if (reason == "edge_lost") {
        ++edge_lost;
        EXPECT_FALSE(connected_on_b) << peer << ": edge_lost after the next connected";
      } else {
        EXPECT_EQ(reason, "error") << peer;
      }
    }
    EXPECT_EQ(edge_lost, 1) << peer;
  }
}

}  // namespace
}  // namespace edge::testing
