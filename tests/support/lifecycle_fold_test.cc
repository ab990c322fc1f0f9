#include "support/lifecycle_fold.h"

#include "gtest/gtest.h"

namespace edge::testing {
namespace {

LifecycleEvent Connected(int64_t epoch, std::string edge = "edge-a") {
  return {"connected", epoch, std::move(edge), ""};
}
LifecycleEvent Disconnected(int64_t epoch, std::string reason, std::string edge = "edge-a") {
  return {"disconnected", epoch, std::move(edge), std::move(reason)};
}

TEST(LifecycleFoldTest, ClaimsInOrderAcrossEdgesFold) {
  auto fold = FoldLifecycle({Connected(3), Disconnected(3, "shutdown"), Connected(7, "edge-b"),
                             Disconnected(7, "replaced", "edge-b"), Connected(9, "edge-b")});
  ASSERT_TRUE(fold.ok()) << fold.status();
  EXPECT_EQ(fold->open_epoch, 9);
  EXPECT_EQ(fold->open_edge, "edge-b");
  EXPECT_EQ(fold->claims, 3);
  EXPECT_EQ(fold->duplicates, 0);
}

TEST(LifecycleFoldTest, EndsDisconnectedAfterTheLastDisconnected) {
  auto fold = FoldLifecycle({Connected(3), Disconnected(3, "edge_lost")});
  ASSERT_TRUE(fold.ok()) << fold.status();
  EXPECT_FALSE(fold->open_epoch.has_value());
}

TEST(LifecycleFoldTest, AllowsTheTwoDuplicatesOfContract5) {
  // The edge publishing edge_lost died midway: another publishes it again.
  EXPECT_TRUE(FoldLifecycle({Connected(3), Disconnected(3, "edge_lost", "edge-a"),
                             Disconnected(3, "edge_lost", "edge-a")})
                  .ok());
  // An edge cut off past its lease ends its stream after the cluster did,
  // possibly after the peer's next connected elsewhere.
  auto fold = FoldLifecycle({Connected(3), Disconnected(3, "edge_lost"), Connected(5, "edge-b"),
                             Disconnected(3, "error")});
  ASSERT_TRUE(fold.ok()) << fold.status();
  EXPECT_EQ(fold->open_epoch, 5);
  EXPECT_EQ(fold->duplicates, 1);
  fold = FoldLifecycle({Connected(3), Disconnected(3, "edge_lost"), Disconnected(3, "error"),
                        Connected(5, "edge-b")});
  ASSERT_TRUE(fold.ok()) << fold.status();
  EXPECT_EQ(fold->duplicates, 1);
}

TEST(LifecycleFoldTest, AllowsAnEdgeLostWhoseConnectedDiedWithItsEdge) {
  auto fold = FoldLifecycle({Disconnected(4, "edge_lost"), Connected(6, "edge-b")});
  ASSERT_TRUE(fold.ok()) << fold.status();
  EXPECT_EQ(fold->open_epoch, 6);
}

TEST(LifecycleFoldTest, RefusesSequencesThatBreakContract5) {
  struct Case {
    const char* name;
    std::vector<LifecycleEvent> events;
  };
  const Case cases[] = {
      {"connected while open", {Connected(3), Connected(5, "edge-b")}},
      {"disconnected of the old claim after the new connected",
       {Connected(3), Connected(5, "edge-b"), Disconnected(3, "stream_closed")}},
      {"epoch not growing", {Connected(5), Disconnected(5, "shutdown"), Connected(5)}},
      {"epoch going back", {Connected(5), Disconnected(5, "shutdown"), Connected(4)}},
      {"two ordinary disconnected",
       {Connected(3), Disconnected(3, "shutdown"), Disconnected(3, "stream_closed")}},
      {"a late disconnected of a claim not lost",
       {Connected(3), Disconnected(3, "shutdown"), Connected(5), Disconnected(3, "error")}},
      {"disconnected of another epoch", {Connected(3), Disconnected(4, "shutdown")}},
      {"disconnected of nothing, not edge_lost", {Disconnected(3, "shutdown")}},
      {"no epoch", {{"connected", std::nullopt, "edge-a", ""}}},
      {"unknown event type", {{"moved", 3, "edge-a", ""}}},
  };
  for (const Case& c : cases) {
    auto fold = FoldLifecycle(c.events);
    EXPECT_FALSE(fold.ok()) << c.name;
    EXPECT_EQ(fold.status().code(), absl::StatusCode::kFailedPrecondition) << c.name;
  }
}

TEST(LifecycleFoldTest, NamesTheFirstBrokenEvent) {
  auto fold = FoldLifecycle({Connected(3), Disconnected(3, "shutdown"), Connected(2, "edge-b")});
  ASSERT_FALSE(fold.ok());
  EXPECT_NE(fold.status().message().find("event 2"), absl::string_view::npos) << fold.status();
}

}  // namespace
}  // namespace edge::testing
