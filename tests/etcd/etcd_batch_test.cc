// EtcdTracker's group commit against a real etcd (issue 15): claims, and
// releases, that arrive while a transaction is in flight go out together,
// one nested transaction each, and what each of them decides stays its own.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "etcd/etcd_tracker_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Group commit (issue 15): claims that arrive while a claim transaction is
// in flight go out together, one nested transaction each. etcd is paused
// so that they all arrive while the first batches wait for it.
class EtcdClaimBatchTest : public EtcdTrackerTest {
 protected:
  // Pauses etcd and starts claims of `filler-N` that take every batch slot:
  // the claims started next wait for one batch, until Resume().
  // The fillers fail after `timeout` (their deadline) unless resumed first.
  void PauseWithSlotsTaken(Tracker& tracker, ClaimSet& claims,
                           absl::Duration timeout = absl::Seconds(10)) {
    ASSERT_TRUE(etcd_->Pause().ok());
    for (int i = 0; i < etcd::internal::txn::kClaimBatchesInFlight; ++i) {
      claims.Start(tracker, absl::StrCat("filler-", i), timeout);
    }
  }
  void Resume() { ASSERT_TRUE(etcd_->Resume().ok()); }
};

TEST_F(EtcdClaimBatchTest, OneConflictingClaimIsRefusedAndTheOthersAdmitted) {
  auto b = NewTracker("edge-b");
  ASSERT_TRUE(b->Start().ok());
  absl::StatusOr<PeerClaim> held = ClaimSync(*b, "peer-x");
  ASSERT_TRUE(held.ok()) << held.status();
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());

  ClaimSet claims;
  PauseWithSlotsTaken(*a, claims);
  for (int i = 0; i < 5; ++i) claims.Start(*a, absl::StrCat("peer-", i));
  claims.Start(*a, "peer-x");
  for (int i = 5; i < 10; ++i) claims.Start(*a, absl::StrCat("peer-", i));
  Resume();
  auto got = claims.Wait(etcd::internal::txn::kClaimBatchesInFlight + 11);

  ASSERT_EQ(got.at("peer-x").status().code(), absl::StatusCode::kAlreadyExists)
      << got.at("peer-x").status();
  EXPECT_THAT(std::string(got.at("peer-x").status().message()), HasSubstr("edge-b"));
  std::set<int64_t> epochs;
  for (int i = 0; i < 10; ++i) {
    const std::string peer = absl::StrCat("peer-", i);
    ASSERT_TRUE(got.at(peer).ok()) << peer << ": " << got.at(peer).status();
    epochs.insert(*got.at(peer)->epoch);
    absl::StatusOr<mvccpb::KeyValue> record = ReadKey(absl::StrCat("/test/claims/", peer));
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->mod_revision(), *got.at(peer)->epoch) << peer;
    EXPECT_EQ(LookupSync(*b, peer).value_or(""), "edge-a") << peer;
  }
  // One transaction for all ten: one revision.
  EXPECT_EQ(epochs.size(), 1u);
  // B's claim is untouched.
  absl::StatusOr<mvccpb::KeyValue> x = ReadKey("/test/peers/peer-x");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->value(), "edge-b");
  EXPECT_EQ(x->create_revision(), *held->epoch);
  EXPECT_EQ(ReadKey("/test/claims/peer-x")->mod_revision(), *held->epoch);
}

TEST_F(EtcdClaimBatchTest, EachPeersEpochGrowsAcrossBatches) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  constexpr int kPeers = 8;
  auto peer = [](int i) { return absl::StrCat("peer-", i); };

  ClaimSet first;
  PauseWithSlotsTaken(*a, first);
  for (int i = 0; i < kPeers; ++i) first.Start(*a, peer(i));
  Resume();
  auto before = first.Wait(etcd::internal::txn::kClaimBatchesInFlight + kPeers);
  for (int i = 0; i < kPeers; ++i) {
    ASSERT_TRUE(before.at(peer(i)).ok()) << before.at(peer(i)).status();
  }
  // Half are released; the other half are claimed again while held (a
  // stream of this edge replacing another of the same peer).
  for (int i = 0; i < kPeers; i += 2) {
    ASSERT_TRUE(ReleaseSync(*a, peer(i), *before.at(peer(i))).ok());
  }

  ClaimSet second;
  PauseWithSlotsTaken(*a, second);
  for (int i = 0; i < kPeers; ++i) second.Start(*a, peer(i));
  Resume();
  auto after = second.Wait(etcd::internal::txn::kClaimBatchesInFlight + kPeers);
  std::set<int64_t> released_epochs;
  for (int i = 0; i < kPeers; ++i) {
    ASSERT_TRUE(after.at(peer(i)).ok()) << peer(i) << ": " << after.at(peer(i)).status();
    EXPECT_GT(*after.at(peer(i))->epoch, *before.at(peer(i))->epoch) << peer(i);
    absl::StatusOr<mvccpb::KeyValue> record = ReadKey(absl::StrCat("/test/claims/", peer(i)));
    ASSERT_TRUE(record.ok()) << record.status();
    EXPECT_EQ(record->mod_revision(), *after.at(peer(i))->epoch) << peer(i);
    if (i % 2 == 0) released_epochs.insert(*after.at(peer(i))->epoch);
  }
  EXPECT_EQ(released_epochs.size(), 1u) << "the fresh claims were one batch";
  // The new claims release; the replaced ones' old epochs do not.
  for (int i = 0; i < kPeers; ++i) {
    ASSERT_TRUE(ReleaseSync(*a, peer(i), *after.at(peer(i))).ok());
    EXPECT_EQ(LookupSync(*a, peer(i)).status().code(), absl::StatusCode::kNotFound) << peer(i);
  }
}

TEST_F(EtcdClaimBatchTest, ClaimsBeyondTheCapAreSplitIntoSeveralBatches) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  const int peers = 2 * etcd::internal::txn::kMaxClaimsPerNest + 10;
  ClaimSet claims;
  PauseWithSlotsTaken(*a, claims);
  for (int i = 0; i < peers; ++i) claims.Start(*a, absl::StrCat("peer-", i));
  Resume();
  auto got = claims.Wait(etcd::internal::txn::kClaimBatchesInFlight + peers);

  std::map<int64_t, int> per_epoch;  // claims per transaction
  for (int i = 0; i < peers; ++i) {
    const std::string peer = absl::StrCat("peer-", i);
    ASSERT_TRUE(got.at(peer).ok()) << peer << ": " << got.at(peer).status();
    ++per_epoch[*got.at(peer)->epoch];
  }
  std::vector<int> sizes;
  for (const auto& [epoch, count] : per_epoch) sizes.push_back(count);
  EXPECT_THAT(sizes, ElementsAre(etcd::internal::txn::kMaxClaimsPerNest,
                                 etcd::internal::txn::kMaxClaimsPerNest, 10));
  EXPECT_EQ(LookupSync(*a, absl::StrCat("peer-", peers - 1)).value_or(""), "edge-a");
}

TEST_F(EtcdClaimBatchTest, AQueuedClaimEndsAtItsDeadlineWhileTheBatchAheadHangs) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  ClaimSet claims;
  PauseWithSlotsTaken(*a, claims);
  const absl::Time start = absl::Now();
  claims.Start(*a, "peer-short", absl::Milliseconds(300));
  auto got = claims.Wait(1);
  const absl::Duration took = absl::Now() - start;
  Resume();
  ASSERT_EQ(got.size(), 1u) << "a filler was answered while etcd was paused";
  EXPECT_EQ(got.at("peer-short").status().code(), absl::StatusCode::kDeadlineExceeded)
      << got.at("peer-short").status();
  // Not a speed check: the batch ahead waits up to its own 10 s deadline.
  EXPECT_LT(took, absl::Seconds(5)) << took;
  got = claims.Wait(etcd::internal::txn::kClaimBatchesInFlight + 1);
  EXPECT_TRUE(got.at("filler-0").ok()) << got.at("filler-0").status();
  // Never sent: nothing holds it.
  EXPECT_EQ(LookupSync(*a, "peer-short").status().code(), absl::StatusCode::kNotFound);
}

// Releases started together, answered on gRPC threads.
class ReleaseSet {
 public:
  void Start(Tracker& tracker, const std::string& peer, const PeerClaim& claim) {
    tracker.Release(peer, claim, [this, peer](absl::Status status) {
      absl::MutexLock lock(&mu_);
      got_.emplace(peer, std::move(status));
    });
  }
  std::map<std::string, absl::Status> Wait(size_t count) {
    absl::MutexLock lock(&mu_);
    auto all = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return got_.size() >= count; };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30)))
        << got_.size() << " of " << count << " releases answered";
    return got_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::Status> got_ ABSL_GUARDED_BY(mu_);
};

// Releases are group-committed like new claims: those that arrive while a
// batch is in flight go out together, one nested transaction each. Each
// batch has the tracker's request timeout from its send, long here so that
// a loaded machine does not end them.
class EtcdReleaseBatchTest : public EtcdClaimBatchTest {
 protected:
  void SetUp() override {
    request_timeout_ = absl::Seconds(10);
    EtcdClaimBatchTest::SetUp();
  }

  // Claims `peers` with `tracker`; fails the test unless each is admitted.
  std::map<std::string, PeerClaim> ClaimAll(Tracker& tracker,
                                            const std::vector<std::string>& peers) {
    ClaimSet claims;
    for (const std::string& peer : peers) claims.Start(tracker, peer);
    std::map<std::string, PeerClaim> held;
    for (auto& [peer, claim] : claims.Wait(peers.size())) {
      EXPECT_TRUE(claim.ok()) << peer << ": " << claim.status();
      if (claim.ok()) held.emplace(peer, *claim);
    }
    return held;
  }

  // edge-a holding `count` peers (peer-0, peer-1, ...), and etcd's
  // revision once they are all claimed.
  struct Holding {
    std::unique_ptr<etcd::EtcdTracker> tracker;
    std::vector<std::string> peers;
    std::map<std::string, PeerClaim> held;
    int64_t revision = 0;
  };
  void StartHolding(int count, Holding& h) {
    h.tracker = NewTracker("edge-a");
    ASSERT_TRUE(h.tracker->Start().ok());
    for (int i = 0; i < count; ++i) h.peers.push_back(absl::StrCat("peer-", i));
    h.held = ClaimAll(*h.tracker, h.peers);
    ASSERT_EQ(h.held.size(), h.peers.size());
    absl::StatusOr<int64_t> revision = Revision();
    ASSERT_TRUE(revision.ok()) << revision.status();
    h.revision = *revision;
  }
  // Pauses etcd with the batch slots taken (PauseWithSlotsTaken) and starts
  // the release of every peer `h` holds: they all queue.
  void PauseAndReleaseAll(Holding& h, ClaimSet& fillers, ReleaseSet& releases) {
    ASSERT_NO_FATAL_FAILURE(PauseWithSlotsTaken(*h.tracker, fillers));
    for (const std::string& peer : h.peers) releases.Start(*h.tracker, peer, h.held.at(peer));
  }

  // Starts edge-a with `request_timeout` and a lease that outlives the
  // waits of a test, and claims peer-1 with it.
  void StartHoldingPeer1(absl::Duration request_timeout,
                         std::unique_ptr<etcd::EtcdTracker>& tracker, PeerClaim& claim) {
    request_timeout_ = request_timeout;
    lease_ttl_ = absl::Seconds(30);
    tracker = NewTracker("edge-a");
    ASSERT_TRUE(tracker->Start().ok());
    absl::StatusOr<PeerClaim> claimed = ClaimSync(*tracker, "peer-1");
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    claim = *claimed;
  }
};

TEST_F(EtcdReleaseBatchTest, ManyReleasesAtOnceAllTakeEffectInFewTransactions) {
  Holding h;
  ASSERT_NO_FATAL_FAILURE(StartHolding(etcd::internal::txn::kMaxClaimsPerNest + 20, h));
  const std::vector<std::string>& peers = h.peers;

  ClaimSet fillers;
  ReleaseSet releases;
  ASSERT_NO_FATAL_FAILURE(PauseAndReleaseAll(h, fillers, releases));
  Resume();
  auto released = releases.Wait(peers.size());
  for (const std::string& peer : peers) {
    EXPECT_TRUE(released.at(peer).ok()) << peer << ": " << released.at(peer);
  }
  auto filled = fillers.Wait(etcd::internal::txn::kClaimBatchesInFlight);
  for (const auto& [filler, claim] : filled) EXPECT_TRUE(claim.ok()) << filler;
  absl::StatusOr<int64_t> after = Revision();
  ASSERT_TRUE(after.ok()) << after.status();

  for (const std::string& peer : peers) {
    EXPECT_EQ(LookupSync(*h.tracker, peer).status().code(), absl::StatusCode::kNotFound) << peer;
    EXPECT_EQ(ReadKey(absl::StrCat("/test/claims/", peer)).status().code(),
              absl::StatusCode::kNotFound)
        << peer;
  }
  // One transaction per filler claim, then the releases in two batches (a
  // full one and the rest), not one transaction each.
  EXPECT_EQ(*after - h.revision, etcd::internal::txn::kClaimBatchesInFlight + 2);
}

// A claim goes out ahead of the releases queued before it: a peer's
// admission waits on the claim, nobody on the releases, and after many
// streams end together thousands of them may be queued.
TEST_F(EtcdReleaseBatchTest, AClaimGoesOutAheadOfTheReleasesQueuedBeforeIt) {
  Holding h;  // three batches of releases
  ASSERT_NO_FATAL_FAILURE(StartHolding(2 * etcd::internal::txn::kMaxClaimsPerNest + 20, h));
  const std::vector<std::string>& peers = h.peers;

  ClaimSet fillers;
  ReleaseSet releases;
  ASSERT_NO_FATAL_FAILURE(PauseAndReleaseAll(h, fillers, releases));
  ClaimSet late;
  late.Start(*h.tracker, "peer-new");
  Resume();
  auto claimed = late.Wait(1);
  auto released = releases.Wait(peers.size());
  fillers.Wait(etcd::internal::txn::kClaimBatchesInFlight);

  // etcd applied the fillers' batch, then the new claim, then the three
  // batches of releases: one revision each.
  ASSERT_TRUE(claimed.at("peer-new").ok()) << claimed.at("peer-new").status();
  EXPECT_EQ(*claimed.at("peer-new")->epoch,
            h.revision + etcd::internal::txn::kClaimBatchesInFlight + 1);
  for (const std::string& peer : peers) {
    EXPECT_TRUE(released.at(peer).ok()) << peer << ": " << released.at(peer);
  }
  absl::StatusOr<int64_t> after = Revision();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after - h.revision, etcd::internal::txn::kClaimBatchesInFlight + 1 + 3);
}

TEST_F(EtcdReleaseBatchTest, AReleaseOfAClaimAnotherEdgeTookLeavesItAndTheOthersGo) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  auto b = NewTracker("edge-b");
  ASSERT_TRUE(b->Start().ok());
  const std::vector<std::string> peers = {"peer-0", "peer-1", "peer-x", "peer-2", "peer-3"};
  std::map<std::string, PeerClaim> held = ClaimAll(*a, peers);
  ASSERT_EQ(held.size(), peers.size());

  // Meanwhile peer-x's claim left A (its keys deleted, as when A's lease
  // expired and the lost claim was published) and B claimed it.
  absl::StatusOr<etcdserverpb::TxnResponse> gone = DirectTxn(etcd::internal::txn::ReleaseClaim(
      {"/test/peers/peer-x", "/test/claims/peer-x", ""}, *held.at("peer-x").epoch));
  ASSERT_TRUE(gone.ok() && gone->succeeded()) << gone.status();
  absl::StatusOr<PeerClaim> taken = ClaimSync(*b, "peer-x");
  ASSERT_TRUE(taken.ok()) << taken.status();
  absl::StatusOr<int64_t> before = Revision();
  ASSERT_TRUE(before.ok()) << before.status();

  // A releases all five in one batch, peer-x by its old claim.
  ClaimSet fillers;
  PauseWithSlotsTaken(*a, fillers);
  ReleaseSet releases;
  for (const std::string& peer : peers) releases.Start(*a, peer, held.at(peer));
  Resume();
  auto released = releases.Wait(peers.size());
  fillers.Wait(etcd::internal::txn::kClaimBatchesInFlight);
  absl::StatusOr<int64_t> after = Revision();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after - *before, etcd::internal::txn::kClaimBatchesInFlight + 1) << "one batch";

  // Each release is answered as before batching: OK, the stale one too (it
  // deleted nothing).
  for (const std::string& peer : peers) {
    EXPECT_TRUE(released.at(peer).ok()) << peer << ": " << released.at(peer);
  }
  for (const char* peer : {"peer-0", "peer-1", "peer-2", "peer-3"}) {
    EXPECT_EQ(LookupSync(*b, peer).status().code(), absl::StatusCode::kNotFound) << peer;
    EXPECT_EQ(ReadKey(absl::StrCat("/test/claims/", peer)).status().code(),
              absl::StatusCode::kNotFound)
        << peer;
  }
  EXPECT_EQ(LookupSync(*a, "peer-x").value_or(""), "edge-b");
  absl::StatusOr<mvccpb::KeyValue> record = ReadKey("/test/claims/peer-x");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->mod_revision(), *taken->epoch);
}

TEST_F(EtcdReleaseBatchTest, AReleaseEtcdDidNotAnswerIsSentAgainUntilTheClaimIsGone) {
  std::unique_ptr<etcd::EtcdTracker> a;
  PeerClaim claim;
  ASSERT_NO_FATAL_FAILURE(StartHoldingPeer1(absl::Seconds(1), a, claim));

  ClaimSet fillers;
  PauseWithSlotsTaken(*a, fillers, absl::Seconds(2));
  // It waits behind the hung batch (2 s), goes out, and etcd does not
  // answer it within the request timeout (1 s): the caller hears that.
  absl::Status released = ReleaseSync(*a, "peer-1", claim);
  Resume();
  EXPECT_EQ(released.code(), absl::StatusCode::kDeadlineExceeded) << released;
  fillers.Wait(etcd::internal::txn::kClaimBatchesInFlight);

  // The tracker sends it again (after 1 s) until etcd answers: the claim
  // goes while A's lease lives on, and another edge claims the peer afresh
  // (no lost claim: its record is gone).
  auto b = NewTracker("edge-b");
  ASSERT_TRUE(b->Start().ok());
  absl::StatusOr<PeerClaim> taken = absl::UnknownError("not tried");
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    taken = ClaimSync(*b, "peer-1");
    if (taken.ok() || taken.status().code() != absl::StatusCode::kAlreadyExists) break;
    absl::SleepFor(absl::Milliseconds(100));  // polling the condition, not synchronising
  }
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_GT(*taken->epoch, *claim.epoch);
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-b");
  EXPECT_EQ(ReadKey("/test/lost/peer-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(a->HasLease());
}

// A release waiting to be sent again does not hold up the shutdown.
TEST_F(EtcdReleaseBatchTest, AShutdownWhileAReleaseWaitsToBeSentAgainEndsWithinItsDeadline) {
  std::unique_ptr<etcd::EtcdTracker> a;
  PeerClaim claim;
  ASSERT_NO_FATAL_FAILURE(StartHoldingPeer1(absl::Seconds(1), a, claim));
  ClaimSet fillers;
  PauseWithSlotsTaken(*a, fillers, absl::Seconds(2));
  EXPECT_EQ(ReleaseSync(*a, "peer-1", claim).code(), absl::StatusCode::kDeadlineExceeded);
  // Shut down while etcd still does not answer and the retry is due.
  const absl::Time before = absl::Now();
  a->Shutdown(absl::Now() + absl::Seconds(3));
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  Resume();
  fillers.Wait(etcd::internal::txn::kClaimBatchesInFlight);
  a.reset();
}

// A release waits its turn in the queue however long that takes (no
// admission waits on it; failing it for waiting only sends it again later),
// and goes out with the whole request timeout, not what is left of one:
// etcd works on a request even after the client gave up on it, and a batch
// failed early would let the next one pile onto an etcd that is still busy
// (docs/performance.md, every peer leaving at once).
TEST_F(EtcdReleaseBatchTest, AReleaseWaitsItsTurnAndGetsTheWholeRequestTimeoutWhenSent) {
  std::unique_ptr<etcd::EtcdTracker> a;
  PeerClaim claim;
  ASSERT_NO_FATAL_FAILURE(StartHoldingPeer1(absl::Seconds(2), a, claim));

  // etcd hangs; a claim whose deadline is 3 s away holds the slot in
  // flight, so the release waits in the queue for longer than the request
  // timeout, and goes out when that claim fails.
  ClaimSet fillers;
  PauseWithSlotsTaken(*a, fillers, absl::Seconds(3));
  const absl::Time released_at = absl::Now();
  auto released = std::make_shared<absl::Notification>();
  auto status = std::make_shared<absl::Status>();
  a->Release("peer-1", claim, [released, status](absl::Status result) {
    *status = std::move(result);
    released->Notify();
  });
  fillers.Wait(etcd::internal::txn::kClaimBatchesInFlight);
  // etcd comes back 4 s after the release was made: 2 s past the request
  // timeout counted from then, 1 s before it runs out counted from the send.
  absl::SleepFor(released_at + absl::Seconds(4) - absl::Now());
  EXPECT_FALSE(released->HasBeenNotified()) << *status;
  Resume();
  ASSERT_TRUE(released->WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(status->ok()) << *status;
  EXPECT_EQ(ReadKey("/test/claims/peer-1").status().code(), absl::StatusCode::kNotFound);
}

// The batch cap's arithmetic (etcd_txn.h): etcd allows 128 operations per
// branch, and a nested transaction 128 minus its parent's branch count.
TEST_F(EtcdTrackerTest, EtcdTakesAsManyNestedClaimsAsTheCapAssumes) {
  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok());
  auto nest = [&](int count, const std::string& tag) {
    std::vector<etcdserverpb::TxnRequest> txns;
    for (int i = 0; i < count; ++i) {
      txns.push_back(etcd::internal::txn::NewClaim(
          {absl::StrCat("/nest/", tag, "/peers/", i), absl::StrCat("/nest/", tag, "/claims/", i),
           absl::StrCat("/nest/", tag, "/lost/", i)},
          "edge-a", "{}", 0));
    }
    return (*client)->TxnSync(etcd::internal::txn::Nest(std::move(txns)),
                              absl::Now() + absl::Seconds(5));
  };
  absl::StatusOr<etcdserverpb::TxnResponse> fits = nest(125, "a");
  ASSERT_TRUE(fits.ok()) << fits.status();
  ASSERT_EQ(fits->responses_size(), 125);
  EXPECT_TRUE(fits->responses(124).response_txn().succeeded());
  absl::StatusOr<etcdserverpb::TxnResponse> too_many = nest(126, "b");
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument) << too_many.status();
  EXPECT_LE(etcd::internal::txn::kMaxClaimsPerNest, 125);
}

}  // namespace
}  // namespace edge::testing
