#include "contract/tracker/tracker_contract.h"

#include <atomic>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "support/wait.h"

namespace edge::testing {

std::string ParamName(const ::testing::TestParamInfo<TrackerContractParam>& info) {
  return info.param.name;
}

void TrackerContractTest::SetUp() {
  env_ = GetParam().make_env();
  if (env_ == nullptr) GTEST_SKIP() << GetParam().name << " cannot run here";
}

void TrackerContractTest::TearDown() {
  for (auto& tracker : trackers_) {
    tracker->Shutdown(absl::Now() + absl::Seconds(5));
  }
  trackers_.clear();
  recorders_.clear();
  env_.reset();
}

Tracker::LostClaimListener LostClaimRecorder::Listener() {
  return [this](const LostClaim& claim, Tracker::LostClaimDone published) {
    {
      absl::MutexLock lock(&mu_);
      claims_.push_back(claim);
      if (park_) {
        parked_.push_back(std::move(published));
        return;
      }
    }
    published(absl::OkStatus());
  };
}

std::vector<LostClaim> LostClaimRecorder::claims() {
  absl::MutexLock lock(&mu_);
  return claims_;
}

size_t LostClaimRecorder::PublishParked() {
  std::vector<Tracker::LostClaimDone> parked;
  {
    absl::MutexLock lock(&mu_);
    parked.swap(parked_);
  }
  for (auto& published : parked) published(absl::OkStatus());
  return parked.size();
}

LostClaimRecorder& TrackerContractTest::NewRecorder(bool park) {
  recorders_.push_back(std::make_unique<LostClaimRecorder>(park));
  return *recorders_.back();
}

Tracker* TrackerContractTest::StartTracker(const std::string& edge_id, LostClaimRecorder* lost) {
  std::unique_ptr<Tracker> tracker = env_->NewTracker(edge_id);
  if (lost != nullptr) tracker->SetLostClaimListener(lost->Listener());
  EXPECT_TRUE(tracker->Start().ok());
  trackers_.push_back(std::move(tracker));
  return trackers_.back().get();
}

Tracker* TrackerContractTest::Observer(Tracker* edge) {
  return env_->is_cluster() ? StartTracker("observer") : edge;
}

TEST_P(TrackerContractTest, ClaimThenLookupReturnsThisEdge) {
  Tracker* a = StartTracker("edge-a");
  ASSERT_TRUE(ClaimSync(*a, "peer-1").ok());
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-a");
}

TEST_P(TrackerContractTest, ReleaseThenLookupIsNotFound) {
  Tracker* a = StartTracker("edge-a");
  absl::StatusOr<PeerClaim> claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();
  ASSERT_TRUE(ReleaseSync(*a, "peer-1", *claim).ok());
  EXPECT_EQ(LookupSync(*a, "peer-1").status().code(), absl::StatusCode::kNotFound);
}

// LookupHolder names the claim as well as its edge: the epoch its Claim
// returned (none where claims have none), a new one once a claim replaces it.
TEST_P(TrackerContractTest, LookupHolderNamesTheHoldingClaimsEpoch) {
  Tracker* a = StartTracker("edge-a");
  absl::StatusOr<PeerClaim> first = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<PeerHolder> holder = LookupHolderSync(*a, "peer-1");
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->edge_id, "edge-a");
  EXPECT_EQ(holder->epoch, first->epoch);
  absl::StatusOr<PeerClaim> second = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(second.ok()) << second.status();
  holder = LookupHolderSync(*a, "peer-1");
  ASSERT_TRUE(holder.ok()) << holder.status();
  EXPECT_EQ(holder->epoch, second->epoch);
  ASSERT_TRUE(ReleaseSync(*a, "peer-1", *first).ok());
  ASSERT_TRUE(ReleaseSync(*a, "peer-1", *second).ok());
  EXPECT_EQ(LookupHolderSync(*a, "peer-1").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(TrackerContractTest, LookupOfUnknownPeerIsNotFound) {
  Tracker* a = StartTracker("edge-a");
  EXPECT_EQ(LookupSync(*a, "nobody").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(TrackerContractTest, ClaimTwiceByTheSameEdgeSucceeds) {
  Tracker* a = StartTracker("edge-a");
  ASSERT_TRUE(ClaimSync(*a, "peer-1").ok());
  absl::StatusOr<PeerClaim> again = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-a");
}

TEST_P(TrackerContractTest, RestartedEdgeTakesOverItsOwnClaim) {
  Tracker* before = StartTracker("edge-a");
  ASSERT_TRUE(ClaimSync(*before, "peer-1").ok());
  // The same edge id after a restart, while the old claim still exists.
  Tracker* after = StartTracker("edge-a");
  absl::StatusOr<PeerClaim> claim = ClaimSync(*after, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(LookupSync(*after, "peer-1").value_or(""), "edge-a");
}

TEST_P(TrackerContractTest, ReleaseOfAReplacedClaimKeepsTheNewerOne) {
  Tracker* a = StartTracker("edge-a");
  absl::StatusOr<PeerClaim> old_claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(old_claim.ok()) << old_claim.status();
  absl::StatusOr<PeerClaim> new_claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(new_claim.ok()) << new_claim.status();

  EXPECT_TRUE(ReleaseSync(*a, "peer-1", *old_claim).ok());
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-a");

  EXPECT_TRUE(ReleaseSync(*a, "peer-1", *new_claim).ok());
  EXPECT_EQ(LookupSync(*a, "peer-1").status().code(), absl::StatusCode::kNotFound);
}

TEST_P(TrackerContractTest, ShutdownReleasesEverything) {
  Tracker* a = StartTracker("edge-a");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(ClaimSync(*a, absl::StrCat("peer-", i)).ok());
  }
  Tracker* observer = Observer(a);
  a->Shutdown(absl::Now() + absl::Seconds(5));
  a->Shutdown(absl::Now() + absl::Seconds(5));  // idempotent
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(LookupSync(*observer, absl::StrCat("peer-", i)).status().code(),
              absl::StatusCode::kNotFound)
        << i;
  }
}

TEST_P(TrackerContractTest, ClaimAfterShutdownIsUnavailable) {
  Tracker* a = StartTracker("edge-a");
  a->Shutdown(absl::Now() + absl::Seconds(5));
  EXPECT_EQ(ClaimSync(*a, "peer-1").status().code(), absl::StatusCode::kUnavailable);
}

TEST_P(TrackerContractTest, EmptyPeerIdIsInvalid) {
  Tracker* a = StartTracker("edge-a");
  EXPECT_EQ(ClaimSync(*a, "").status().code(), absl::StatusCode::kInvalidArgument);
}

// Cluster-only: several edges share the tracker.

TEST_P(TrackerContractTest, OtherEdgesClaimFailsNamingTheHolder) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  Tracker* a = StartTracker("edge-a");
  Tracker* b = StartTracker("edge-b");
  ASSERT_TRUE(ClaimSync(*a, "peer-1").ok());
  absl::StatusOr<PeerClaim> claim = ClaimSync(*b, "peer-1");
  EXPECT_EQ(claim.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(claim.status().message()), ::testing::HasSubstr("edge-a"));
  EXPECT_EQ(LookupSync(*b, "peer-1").value_or(""), "edge-a");
}

TEST_P(TrackerContractTest, AfterReleaseAnotherEdgeCanClaim) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  Tracker* a = StartTracker("edge-a");
  Tracker* b = StartTracker("edge-b");
  absl::StatusOr<PeerClaim> claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();
  ASSERT_TRUE(ReleaseSync(*a, "peer-1", *claim).ok());
  ASSERT_TRUE(ClaimSync(*b, "peer-1").ok());
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-b");
}

TEST_P(TrackerContractTest, EpochGrowsAcrossSuccessiveClaims) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  Tracker* a = StartTracker("edge-a");
  Tracker* b = StartTracker("edge-b");
  int64_t last = 0;
  for (Tracker* edge : {a, b, a, a}) {
    absl::StatusOr<PeerClaim> claim = ClaimSync(*edge, "peer-1");
    ASSERT_TRUE(claim.ok()) << claim.status();
    ASSERT_TRUE(claim->epoch.has_value());
    EXPECT_GT(*claim->epoch, last);
    last = *claim->epoch;
    ASSERT_TRUE(ReleaseSync(*edge, "peer-1", *claim).ok());
  }
}

TEST_P(TrackerContractTest, LateReleaseNeverRemovesAnotherEdgesClaim) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  Tracker* a = StartTracker("edge-a");
  Tracker* b = StartTracker("edge-b");
  absl::StatusOr<PeerClaim> claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();
  ASSERT_TRUE(ReleaseSync(*a, "peer-1", *claim).ok());
  ASSERT_TRUE(ClaimSync(*b, "peer-1").ok());
  EXPECT_TRUE(ReleaseSync(*a, "peer-1", *claim).ok());  // late duplicate
  EXPECT_EQ(LookupSync(*b, "peer-1").value_or(""), "edge-b");
}

TEST_P(TrackerContractTest, ClaimReplacingThisEdgesOwnHasAGreaterEpoch) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  Tracker* a = StartTracker("edge-a");
  absl::StatusOr<PeerClaim> first = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<PeerClaim> second = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(first->epoch.has_value() && second->epoch.has_value());
  EXPECT_GT(*second->epoch, *first->epoch);
}

TEST_P(TrackerContractTest, LostClaimsOfADeadEdgeAreHandedToExactlyOneSurvivor) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  constexpr int kPeers = 5;
  Tracker* dead = StartTracker("edge-dead");
  std::map<std::string, int64_t> epochs;
  for (int i = 0; i < kPeers; ++i) {
    std::string peer = absl::StrCat("peer-", i);
    absl::StatusOr<PeerClaim> claim = ClaimSync(*dead, peer);
    ASSERT_TRUE(claim.ok()) << claim.status();
    epochs[peer] = claim->epoch.value_or(-1);
  }
  LostClaimRecorder& b_lost = NewRecorder();
  LostClaimRecorder& c_lost = NewRecorder();
  Tracker* b = StartTracker("edge-b", &b_lost);
  StartTracker("edge-c", &c_lost);

  env_->Kill("edge-dead");
  auto handed = [&] { return b_lost.claims().size() + c_lost.claims().size(); };
  ASSERT_TRUE(WaitFor([&] { return handed() >= kPeers; }, env_->lost_within()))
      << handed() << " of " << kPeers;
  std::map<std::string, int> seen;
  for (LostClaimRecorder* recorder : {&b_lost, &c_lost}) {
    for (const LostClaim& lost : recorder->claims()) {
      ++seen[lost.peer_id];
      EXPECT_EQ(lost.edge_id, "edge-dead");
      EXPECT_EQ(lost.epoch, epochs[lost.peer_id]) << lost.peer_id;
    }
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kPeers));
  for (const auto& [peer, count] : seen) EXPECT_EQ(count, 1) << peer;

  // Published: the peers are free, and a new claim is newer.
  for (int i = 0; i < kPeers; ++i) {
    std::string peer = absl::StrCat("peer-", i);
    absl::StatusOr<PeerClaim> claim;
    ASSERT_TRUE(WaitFor([&] { return (claim = ClaimSync(*b, peer)).ok(); }, absl::Seconds(10)))
        << claim.status();
    EXPECT_GT(claim->epoch.value_or(-1), epochs[peer]);
  }
  EXPECT_EQ(handed(), static_cast<size_t>(kPeers));
}

TEST_P(TrackerContractTest, NoClaimOfALostPeerSucceedsBeforeItsEdgeLostIsPublished) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  Tracker* dead = StartTracker("edge-dead");
  absl::StatusOr<PeerClaim> old_claim = ClaimSync(*dead, "peer-1");
  ASSERT_TRUE(old_claim.ok()) << old_claim.status();
  // Both listeners hold what they are handed until told to publish.
  LostClaimRecorder& b_parked = NewRecorder(/*park=*/true);
  LostClaimRecorder& c_parked = NewRecorder(/*park=*/true);
  Tracker* b = StartTracker("edge-b", &b_parked);
  Tracker* c = StartTracker("edge-c", &c_parked);
  auto handed = [&] {
    std::vector<LostClaim> all = b_parked.claims();
    for (const LostClaim& lost : c_parked.claims()) all.push_back(lost);
    return all;
  };

  env_->Kill("edge-dead");
  // Claims keep failing until the lost claim is handed over (the scan or
  // a claim finds it) and while its edge_lost is not published.
  absl::Time until = absl::Now() + env_->lost_within();
  while (handed().empty() && absl::Now() < until) {
    EXPECT_FALSE(ClaimSync(*b, "peer-1", absl::Milliseconds(300)).ok());
    EXPECT_FALSE(ClaimSync(*c, "peer-1", absl::Milliseconds(300)).ok());
  }
  ASSERT_EQ(handed().size(), 1u);
  EXPECT_EQ(handed()[0].edge_id, "edge-dead");
  EXPECT_EQ(handed()[0].epoch, old_claim->epoch.value_or(-1));
  EXPECT_FALSE(ClaimSync(*b, "peer-1", absl::Milliseconds(300)).ok());
  EXPECT_FALSE(ClaimSync(*c, "peer-1", absl::Milliseconds(300)).ok());

  EXPECT_EQ(b_parked.PublishParked() + c_parked.PublishParked(), 1u);
  absl::StatusOr<PeerClaim> claim;
  ASSERT_TRUE(WaitFor([&] { return (claim = ClaimSync(*c, "peer-1")).ok(); }, absl::Seconds(10)))
      << claim.status();
  EXPECT_GT(claim->epoch.value_or(-1), old_claim->epoch.value_or(-1));
  EXPECT_EQ(handed().size(), 1u);
}

TEST_P(TrackerContractTest, ConcurrentClaimsByTwoEdgesAreExclusive) {
  if (!env_->is_cluster()) GTEST_SKIP() << "single-edge tracker";
  constexpr int kPeers = 50;
  Tracker* edges[2] = {StartTracker("edge-a"), StartTracker("edge-b")};
  std::vector<absl::StatusOr<PeerClaim>> results[2];
  std::vector<std::thread> threads;
  for (int e = 0; e < 2; ++e) {
    threads.emplace_back([&, e] {
      for (int i = 0; i < kPeers; ++i) {
        results[e].push_back(ClaimSync(*edges[e], absl::StrCat("peer-", i)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kPeers; ++i) {
    const bool a_won = results[0][i].ok();
    const bool b_won = results[1][i].ok();
    EXPECT_NE(a_won, b_won) << "peer-" << i << ": " << results[0][i].status() << " / "
                            << results[1][i].status();
    const absl::Status& loser = a_won ? results[1][i].status() : results[0][i].status();
    EXPECT_EQ(loser.code(), absl::StatusCode::kAlreadyExists) << loser;
    EXPECT_EQ(LookupSync(*edges[0], absl::StrCat("peer-", i)).value_or(""),
              a_won ? "edge-a" : "edge-b");
  }
}

}  // namespace edge::testing
