// EtcdTracker against a real etcd: outages, restarts, crashes, partitions
// and failover (contract §2 rows 7-8, §9). Short lease TTLs keep it fast.
// Group commit of claims and releases: etcd_batch_test.cc.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "etcd/etcd_tracker_fixture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/wait.h"

extern char** environ;

namespace edge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// How long after its start a tracker keeps looking for lost claims on its
// own (etcd_tracker.h): the lease TTL plus two scan intervals.
const absl::Duration kStartWindow = kTtl + absl::Seconds(2);

// A survivor looks for lost claims when a registration vanishes, however
// long after its own start, with no periodic check to fall back on.
TEST_F(EtcdTrackerTest, ClaimsOfAnEdgeThatDiesLongAfterTheSurvivorStartedAreFound) {
  lost_claim_check_interval_ = absl::Hours(1);
  DyingEdge dying;
  ASSERT_NO_FATAL_FAILURE(StartDyingEdge(20, dying));
  const std::set<std::string>& claimed = dying.claimed;
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  // Not synchronisation: the survivor's start window must be over, so
  // that only the vanished registration can lead it to the lost claims.
  absl::SleepFor(kStartWindow + absl::Seconds(1));
  EXPECT_TRUE(lost.peers().empty());

  dying.proxy->SetConnected(false);  // dies: its lease expires within the TTL
  EXPECT_TRUE(WaitFor([&] { return lost.peers() == claimed; }, kTtl + absl::Seconds(8)))
      << lost.peers().size() << " of " << claimed.size() << " found";
}

// Survivors share a dead edge's lost claims (by a hash of peer and edge)
// instead of all trying every one: each is taken exactly once, and by more
// than one survivor.
TEST_F(EtcdTrackerTest, SurvivorsShareTheLostClaims) {
  DyingEdge dying;
  ASSERT_NO_FATAL_FAILURE(StartDyingEdge(60, dying));
  const std::set<std::string>& claimed = dying.claimed;
  std::vector<std::unique_ptr<LostClaims>> lost;
  std::vector<std::unique_ptr<etcd::EtcdTracker>> survivors;
  for (int i = 0; i < 3; ++i) {
    lost.push_back(std::make_unique<LostClaims>());
    survivors.push_back(NewTracker(absl::StrCat("edge-s", i)));
    survivors.back()->SetLostClaimListener(lost.back()->Listener());
    ASSERT_TRUE(survivors.back()->Start().ok());
  }
  dying.proxy->SetConnected(false);
  auto all = [&] {
    std::set<std::string> found;
    for (const auto& recorder : lost) {
      for (const std::string& peer : recorder->peers()) found.insert(peer);
    }
    return found;
  };
  ASSERT_TRUE(WaitFor([&] { return all() == claimed; }, lease_ttl_ + absl::Seconds(10)))
      << all().size() << " of " << claimed.size() << " found";
  size_t total = 0;
  int takers = 0;
  for (const auto& recorder : lost) {
    total += recorder->peers().size();
    takers += recorder->peers().empty() ? 0 : 1;
  }
  EXPECT_EQ(total, claimed.size()) << "a lost claim was handed to two survivors";
  EXPECT_GE(takers, 2);
}

// A peer key gone without its lease (deleted by hand) is found by the
// periodic check: no registration changed.
TEST_F(EtcdTrackerTest, APeerKeyDeletedByHandIsFoundByThePeriodicCheck) {
  lost_claim_check_interval_ = absl::Seconds(3);  // 2.25 to 3.75 s
  auto holder = NewTracker("edge-a");
  ASSERT_TRUE(holder->Start().ok());
  ASSERT_TRUE(ClaimSync(*holder, "peer-1").ok());
  LostClaims lost;
  auto watcher = NewTracker("edge-b");
  watcher->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(watcher->Start().ok());
  // Not synchronisation: the watcher's start window must be over.
  absl::SleepFor(kStartWindow + absl::Seconds(1));

  absl::StatusOr<mvccpb::KeyValue> key = ReadKey("/test/peers/peer-1");
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_TRUE(
      DirectTxn(etcd::internal::txn::DeleteIfUnchanged("/test/peers/peer-1", key->mod_revision()))
          .ok());
  EXPECT_TRUE(WaitFor([&] { return lost.peers() == std::set<std::string>{"peer-1"}; },
                      absl::Seconds(3) + absl::Seconds(5)));
}

// The claim record an edge that is gone left behind.
constexpr char kGoneEdgesRecord[] = R"({"edge_id":"edge-gone","claimed_at_ms":1})";

// A take of a lost claim that etcd applied after its caller gave up (the
// answer came too late) leaves the claim taken by this edge, its edge_lost
// not published. The peer's next claim here publishes it and goes through,
// rather than being refused until a look at every claim finds it. Set up
// in etcd by hand: a record of a gone edge, no peer key, and this edge's
// lost key on its lease.
TEST_F(EtcdTrackerTest, ALostClaimThisEdgeTookUnansweredIsPublishedByThePeersNextClaim) {
  lost_claim_check_interval_ = absl::Hours(1);
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  // Not synchronisation: the survivor's start window (when it reads every
  // claim) must be over, so that only the claim below finds the take.
  absl::SleepFor(kStartWindow + absl::Seconds(1));
  absl::StatusOr<mvccpb::KeyValue> registration = ReadKey("/test/edges/edge-survivor");
  ASSERT_TRUE(registration.ok()) << registration.status();
  absl::Status put = PutKey("/test/claims/peer-1", kGoneEdgesRecord);
  ASSERT_TRUE(put.ok()) << put;
  put = PutKey("/test/lost/peer-1", "edge-survivor", registration->lease());
  ASSERT_TRUE(put.ok()) << put;

  absl::StatusOr<PeerClaim> claim = ClaimSync(*survivor, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(lost.peers(), std::set<std::string>{"peer-1"});
  EXPECT_EQ(ReadKey("/test/lost/peer-1").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<mvccpb::KeyValue> record = ReadKey("/test/claims/peer-1");
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_THAT(record->value(), HasSubstr("edge-survivor"));
  EXPECT_EQ(ReadKey("/test/peers/peer-1").value_or(mvccpb::KeyValue()).value(), "edge-survivor");
}

// The same take, followed through: a claim whose take of the peer's lost
// claim is answered after the claim's deadline fails, but the take goes
// again at once and the edge_lost is published without the peer's help.
// etcd's answers are held back 1 s: the claim's first transaction is
// answered within its 1.8 s, the take (sent after it) only past them.
TEST_F(EtcdTrackerTest, ALostClaimTakenTooLateForItsClaimIsStillPublished) {
  lost_claim_check_interval_ = absl::Hours(1);
  request_timeout_ = absl::Seconds(3);
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(etcd_->client_port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor", {(*proxy)->endpoint()});
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  absl::SleepFor(kStartWindow + absl::Seconds(1));  // as above
  absl::Status put = PutKey("/test/claims/peer-1", kGoneEdgesRecord);
  ASSERT_TRUE(put.ok()) << put;

  (*proxy)->SetReplyDelay(absl::Seconds(1));
  absl::StatusOr<PeerClaim> claim = ClaimSync(*survivor, "peer-1", absl::Milliseconds(1800));
  EXPECT_EQ(claim.status().code(), absl::StatusCode::kDeadlineExceeded) << claim.status();
  EXPECT_TRUE(
      WaitFor([&] { return lost.peers() == std::set<std::string>{"peer-1"}; }, absl::Seconds(5)));
  (*proxy)->SetReplyDelay(absl::ZeroDuration());
  // Published and finished: the peer's next claim goes through.
  EXPECT_TRUE(WaitFor([&] { return ClaimSync(*survivor, "peer-1").ok(); }, absl::Seconds(5)));
}

// A take of lost claims that etcd refuses because this edge's own lease
// is gone (revoked here by hand) loses the lease at once: the tracker gets
// a new one and takes them with it, rather than trying the dead lease again
// until its next keepalive (due 20 s after the start with a 60 s TTL).
TEST_F(EtcdTrackerTest, ATakeRefusedForTheEdgesOwnLeaseRenewsItAndTakesAgain) {
  lease_ttl_ = absl::Seconds(60);
  lost_claim_check_interval_ = absl::Hours(1);
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  const absl::Time started = absl::Now();
  absl::StatusOr<mvccpb::KeyValue> registration = ReadKey("/test/edges/edge-survivor");
  ASSERT_TRUE(registration.ok()) << registration.status();
  absl::Status revoked = RevokeLease(registration->lease());
  ASSERT_TRUE(revoked.ok()) << revoked;
  // The survivor's start window reads every claim each second: it finds
  // this one and takes it, first with the revoked lease.
  absl::Status put = PutKey("/test/claims/peer-1", kGoneEdgesRecord);
  ASSERT_TRUE(put.ok()) << put;

  EXPECT_TRUE(
      WaitFor([&] { return lost.peers() == std::set<std::string>{"peer-1"}; }, absl::Seconds(8)))
      << "not published " << absl::Now() - started << " after the start";
  absl::StatusOr<mvccpb::KeyValue> renewed = ReadKey("/test/edges/edge-survivor");
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_NE(renewed->lease(), registration->lease());
  EXPECT_TRUE(WaitFor(
      [&] { return ReadKey("/test/claims/peer-1").status().code() == absl::StatusCode::kNotFound; },
      absl::Seconds(5)));
}

TEST_F(EtcdTrackerTest, ClaimAndRegistrationAreKeysBoundToTheLease) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(a->HasLease());
  absl::StatusOr<PeerClaim> claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();

  absl::StatusOr<mvccpb::KeyValue> peer = ReadKey("/test/peers/peer-1");
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->value(), "edge-a");
  EXPECT_EQ(peer->create_revision(), claim->epoch);
  EXPECT_NE(peer->lease(), 0);

  absl::StatusOr<mvccpb::KeyValue> edge = ReadKey("/test/edges/edge-a");
  ASSERT_TRUE(edge.ok()) << edge.status();
  EXPECT_EQ(edge->value(), R"({"edge_id":"edge-a","address":"edge-a.example:50051"})");
  EXPECT_EQ(edge->lease(), peer->lease());

  a->Shutdown(absl::Now() + absl::Seconds(2));
  EXPECT_EQ(ReadKey("/test/peers/peer-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadKey("/test/edges/edge-a").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdTrackerTest, ClaimFailsUnavailableWithinTheDeadlineWhenEtcdIsDown) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(ClaimSync(*a, "peer-1").ok());
  ASSERT_TRUE(etcd_->Stop().ok());

  absl::Time start = absl::Now();
  absl::StatusOr<PeerClaim> claim = ClaimSync(*a, "peer-2", absl::Milliseconds(1500));
  absl::Duration took = absl::Now() - start;
  EXPECT_THAT(claim.status().code(),
              ::testing::AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded))
      << claim.status();
  EXPECT_LT(took, absl::Seconds(2)) << took;

  start = absl::Now();
  a->Shutdown(absl::Now() + absl::Seconds(1));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "shutdown hung";
}

TEST_F(EtcdTrackerTest, StartsWithEtcdDownAndClaimsOnceItIsUp) {
  ASSERT_TRUE(etcd_->Stop().ok());
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  EXPECT_FALSE(a->HasLease());
  EXPECT_EQ(ClaimSync(*a, "peer-1").status().code(), absl::StatusCode::kUnavailable);

  ASSERT_TRUE(etcd_->Restart().ok());
  // gRPC 1.51 keeps a channel that has never connected in backoff for ~10 s
  // after etcd is up; the client renews such a channel, so the first lease
  // comes within a few retries.
  absl::Time up = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return a->HasLease(); }, absl::Seconds(20)));
  // Not a speed check: without the renewal the lease would come only when
  // the ~10 s backoff ends; 8 s leaves room for a loaded machine.
  EXPECT_LT(absl::Now() - up, absl::Seconds(8)) << "the never-connected channel was not renewed";
  EXPECT_TRUE(ClaimSync(*a, "peer-1").ok());
}

TEST_F(EtcdTrackerTest, HeldPeersAreReclaimedAfterEtcdRestarts) {
  auto a = NewTracker("edge-a");
  ASSERT_TRUE(a->Start().ok());
  absl::StatusOr<PeerClaim> claim = ClaimSync(*a, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();

  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(WaitFor([&] { return !a->HasLease(); }, absl::Seconds(6)));
  ASSERT_TRUE(etcd_->Restart().ok());
  ASSERT_TRUE(WaitFor([&] { return a->HasLease(); }, absl::Seconds(10)));

  auto b = NewTracker("edge-b");
  ASSERT_TRUE(b->Start().ok());
  EXPECT_EQ(LookupSync(*b, "peer-1").value_or(""), "edge-a");
  absl::StatusOr<PeerClaim> stolen = ClaimSync(*b, "peer-1");
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(ClaimSync(*a, "peer-2").ok());

  // The claim is bound to the new lease, and the caller's old claim still
  // releases it.
  absl::StatusOr<mvccpb::KeyValue> key = ReadKey("/test/peers/peer-1");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->lease(), ReadKey("/test/edges/edge-a")->lease());
  EXPECT_TRUE(ReleaseSync(*a, "peer-1", *claim).ok());
  EXPECT_EQ(LookupSync(*b, "peer-1").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdTrackerTest, KilledEdgesClaimsVanishWithinTheTtl) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int out[2];
  ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  std::string endpoint = etcd_->endpoint();
  std::string ttl = absl::StrCat(absl::ToInt64Seconds(kTtl));
  std::vector<char*> argv = {const_cast<char*>(EDGE_ETCD_CLAIM_HELPER),
                             endpoint.data(),
                             const_cast<char*>(kPrefix),
                             const_cast<char*>("edge-dead"),
                             ttl.data(),
                             const_cast<char*>("peer-1"),
                             nullptr};
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  std::string said;
  pollfd readable{out[0], POLLIN, 0};
  while (!absl::StrContains(said, "claimed") && poll(&readable, 1, 10000) == 1) {
    char buffer[64];
    ssize_t n = read(out[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    said.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  ASSERT_THAT(said, HasSubstr("claimed"));

  auto b = NewTracker("edge-b");
  ASSERT_TRUE(b->Start().ok());
  absl::StatusOr<PeerClaim> claim = ClaimSync(*b, "peer-1");
  EXPECT_EQ(claim.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(claim.status().message()), HasSubstr("edge-dead"));

  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  absl::Time killed = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return ClaimSync(*b, "peer-1").ok(); }, kTtl + absl::Seconds(3)));
  EXPECT_LT(absl::Now() - killed, kTtl + absl::Seconds(2));
  EXPECT_EQ(ReadKey("/test/edges/edge-dead").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdTrackerTest, LostListenerNamesPeersTakenWhileTheLeaseWasGone) {
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(etcd_->client_port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  auto a = NewTracker("edge-a", {(*proxy)->endpoint()});
  absl::Mutex mu;
  std::vector<std::string> lost;
  a->SetLostListener([&](const std::string& peer_id) {
    absl::MutexLock lock(&mu);
    lost.push_back(peer_id);
  });
  ASSERT_TRUE(a->Start().ok());
  ASSERT_TRUE(ClaimSync(*a, "peer-1").ok());
  ASSERT_TRUE(ClaimSync(*a, "peer-2").ok());

  // Edge A is cut off from etcd; its lease expires there and B takes peer-1.
  (*proxy)->SetConnected(false);
  auto b = NewTracker("edge-b");
  ASSERT_TRUE(b->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return ClaimSync(*b, "peer-1").ok(); }, kTtl + absl::Seconds(4)));

  (*proxy)->SetConnected(true);
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return !lost.empty();
      },
      absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return a->HasLease(); }, absl::Seconds(5)));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(lost, ElementsAre("peer-1"));
  }
  EXPECT_EQ(LookupSync(*b, "peer-1").value_or(""), "edge-b");
  EXPECT_EQ(LookupSync(*b, "peer-2").value_or(""), "edge-a");
}

// Issue 13 item 14: after a lease loss, thousands of held peers are
// re-claimed (many per transaction) while the new lease is kept alive, so
// the re-claim cannot outlast the lease; every claim keeps its epoch.
TEST_F(EtcdTrackerTest, ThousandsOfHeldPeersAreReclaimedUnderALeaseKeptAlive) {
  constexpr int kPeers = 3000;
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(etcd_->client_port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  auto a = NewTracker("edge-a", {(*proxy)->endpoint()});
  absl::Mutex mu;
  std::vector<std::string> lost;
  a->SetLostListener([&](const std::string& peer_id) {
    absl::MutexLock lock(&mu);
    lost.push_back(peer_id);
  });
  ASSERT_TRUE(a->Start().ok());

  std::vector<absl::StatusOr<PeerClaim>> claims(kPeers);
  int done = 0;
  for (int i = 0; i < kPeers; ++i) {
    a->Claim(absl::StrCat("peer-", i), absl::Now() + absl::Seconds(30),
             [&, i](absl::StatusOr<PeerClaim> claim) {
               absl::MutexLock lock(&mu);
               claims[i] = std::move(claim);
               ++done;
             });
  }
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n == kPeers; }, &done),
                                    absl::Seconds(60)));
  }
  for (int i = 0; i < kPeers; ++i) ASSERT_TRUE(claims[i].ok()) << i << claims[i].status();

  // Cut off until the lease is given up, then back.
  (*proxy)->SetConnected(false);
  ASSERT_TRUE(WaitFor([&] { return !a->HasLease(); }, kTtl + absl::Seconds(5)));
  (*proxy)->SetConnected(true);
  ASSERT_TRUE(WaitFor([&] { return a->HasLease(); }, absl::Seconds(30)));

  // Every peer key is bound to the new lease, and stays so past several
  // TTLs (the lease is alive).
  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok());
  auto peers_bound = [&]() -> int {
    auto lease = ReadKey("/test/edges/edge-a");
    if (!lease.ok()) return -1;
    auto scan = (*client)->TxnSync(etcd::internal::txn::KeysUnder("/test/peers/"),
                                   absl::Now() + absl::Seconds(5));
    if (!scan.ok()) return -1;
    int bound = 0;
    for (const auto& kv : scan->responses(0).response_range().kvs()) {
      bound += kv.lease() == lease->lease();
    }
    return bound;
  };
  EXPECT_EQ(peers_bound(), kPeers);
  absl::SleepFor(2 * kTtl);  // not synchronisation: the lease must outlive it
  EXPECT_TRUE(a->HasLease());
  EXPECT_EQ(peers_bound(), kPeers);
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(lost.empty()) << lost.size() << " lost, first " << lost[0];
  }
  // Epochs are unchanged: the first claims still release.
  EXPECT_TRUE(ReleaseSync(*a, "peer-0", *claims[0]).ok());
  EXPECT_EQ(LookupSync(*a, "peer-0").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-a");
}

// More lost claims than one page of a read (lost_claim_scan_page; all of
// them in one answer would pass gRPC's message limit at ~40,000).
TEST_F(EtcdTrackerTest, LostClaimsSpanningSeveralPagesAreAllFound) {
  lost_claim_scan_page_ = 1000;
  const int peers = 2300;  // three pages
  DyingEdge dying;
  ASSERT_NO_FATAL_FAILURE(StartDyingEdge(peers, dying));
  dying.proxy->SetConnected(false);
  // The survivor starts once the lease has ended: with no end of a lease
  // seen, it reads every claim, in pages.
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadKey("/test/edges/edge-dying").status().code() == absl::StatusCode::kNotFound;
      },
      kTtl + absl::Seconds(10)));
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  EXPECT_TRUE(WaitFor([&] { return lost.peers().size() == static_cast<size_t>(peers); },
                      kTtl + absl::Seconds(60)))
      << lost.peers().size() << " of " << peers << " found";
}

TEST_F(EtcdTrackerTest, FailsOverWhenTheFirstEndpointIsDead) {
  absl::StatusOr<int> dead_port = PickFreeLoopbackPort();
  ASSERT_TRUE(dead_port.ok());
  auto a = NewTracker("edge-a", {absl::StrCat("127.0.0.1:", *dead_port), etcd_->endpoint()});
  ASSERT_TRUE(a->Start().ok());
  EXPECT_TRUE(a->HasLease());
  ASSERT_TRUE(ClaimSync(*a, "peer-1").ok());
  EXPECT_EQ(LookupSync(*a, "peer-1").value_or(""), "edge-a");
}

TEST_F(EtcdTrackerTest, CreateRejectsBadOptions) {
  etcd::EtcdTrackerOptions good;
  good.edge_id = "edge-a";
  good.advertised_address = "127.0.0.1:50051";
  good.endpoints = {etcd_->endpoint()};
  auto with = [&](auto change) {
    etcd::EtcdTrackerOptions options = good;
    change(options);
    return etcd::EtcdTracker::Create(std::move(options)).status();
  };
  EXPECT_TRUE(with([](auto&) {}).ok());
  EXPECT_EQ(with([](auto& o) { o.edge_id.clear(); }).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& o) { o.advertised_address.clear(); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& o) { o.endpoints.clear(); }).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& o) { o.lease_ttl = absl::Milliseconds(1500); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with([](auto& o) { o.key_prefix = "giggityflix"; }).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edge::testing
