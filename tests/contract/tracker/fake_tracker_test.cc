// FakeTracker's fault injection, beyond the contract it shares with the
// real trackers.
#include "edge/testing/fake_tracker.h"

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::ElementsAre;

class FakeTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.Start().ok());
    ASSERT_TRUE(b_.Start().ok());
    a_.SetLostListener([this](const std::string& peer) { lost_.push_back(peer); });
  }
  absl::StatusOr<PeerClaim> Claim(testing::FakeTracker& tracker, const std::string& peer) {
    absl::StatusOr<PeerClaim> result = absl::InternalError("no callback");
    tracker.Claim(peer, absl::Now() + absl::Seconds(1),
                  [&](absl::StatusOr<PeerClaim> claim) { result = claim; });
    return result;
  }

  testing::FakeTrackerCluster cluster_;
  testing::FakeTracker a_{&cluster_, "edge-a"};
  testing::FakeTracker b_{&cluster_, "edge-b"};
  std::vector<std::string> lost_;
};

TEST_F(FakeTrackerTest, UnavailableClusterFailsCallsUntilRestored) {
  cluster_.SetUnavailable(true);
  EXPECT_EQ(Claim(a_, "p1").status().code(), absl::StatusCode::kUnavailable);
  cluster_.SetUnavailable(false);
  EXPECT_TRUE(Claim(a_, "p1").ok());
}

TEST_F(FakeTrackerTest, UnavailableTrackerFailsOnlyItsOwnCalls) {
  a_.SetUnavailable(true);
  EXPECT_EQ(Claim(a_, "p1").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(Claim(b_, "p1").ok());
}

TEST_F(FakeTrackerTest, EvictCallsTheHoldersLostListener) {
  ASSERT_TRUE(Claim(a_, "p1").ok());
  EXPECT_TRUE(cluster_.Evict("p1"));
  EXPECT_THAT(lost_, ElementsAre("p1"));
  EXPECT_FALSE(cluster_.Holder("p1").has_value());
  EXPECT_FALSE(cluster_.Evict("p1"));
}

TEST_F(FakeTrackerTest, StealGivesThePeerAwayWithANewerEpoch) {
  absl::StatusOr<PeerClaim> claim = Claim(a_, "p1");
  ASSERT_TRUE(claim.ok());
  int64_t epoch = cluster_.Steal("p1", "edge-b");
  EXPECT_GT(epoch, *claim->epoch);
  EXPECT_THAT(lost_, ElementsAre("p1"));
  EXPECT_EQ(cluster_.Holder("p1"), "edge-b");
  EXPECT_EQ(Claim(a_, "p1").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(FakeTrackerTest, ManualDeliveryHoldsCallbacksUntilDelivered) {
  cluster_.SetManualDelivery(true);
  bool called = false;
  a_.Claim("p1", absl::Now() + absl::Seconds(1),
           [&](absl::StatusOr<PeerClaim> claim) { called = claim.ok(); });
  cluster_.Evict("p1");
  EXPECT_FALSE(called);
  EXPECT_TRUE(lost_.empty());
  EXPECT_EQ(cluster_.pending(), 2u);
  EXPECT_EQ(cluster_.DeliverPending(), 2u);
  EXPECT_TRUE(called);
  EXPECT_THAT(lost_, ElementsAre("p1"));
}

}  // namespace
}  // namespace edge
