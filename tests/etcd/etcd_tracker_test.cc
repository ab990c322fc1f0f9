// EtcdTracker against a real etcd: outages, restarts, crashes, partitions
// and failover (contract §2 rows 7-8, §9). Short lease TTLs keep it fast.
#include "edge/etcd/etcd_tracker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "etcd/etcd_client.h"
#include "etcd/etcd_txn.h"
#include "etcd/tcp_proxy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/etcd_process.h"
#include "support/wait.h"

extern char** environ;

namespace edge::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kTtl = absl::Seconds(2);
constexpr char kPrefix[] = "/test/";

template <typename T>
T Await(absl::AnyInvocable<void(absl::AnyInvocable<void(T)>)> start) {
  struct State {
    absl::Notification done;
    T value;
  };
  auto state = std::make_shared<State>();
  start([state](T value) {
    state->value = std::move(value);
    state->done.Notify();
  });
  if (!state->done.WaitForNotificationWithTimeout(absl::Seconds(20))) {
    ADD_FAILURE() << "tracker never called back";
    state->done.WaitForNotification();
  }
  return std::move(state->value);
}

absl::StatusOr<PeerClaim> ClaimSync(Tracker& tracker, const std::string& peer,
                                    absl::Duration timeout = absl::Seconds(2)) {
  return Await<absl::StatusOr<PeerClaim>>(
      [&](auto done) { tracker.Claim(peer, absl::Now() + timeout, std::move(done)); });
}

absl::StatusOr<std::string> LookupSync(Tracker& tracker, const std::string& peer) {
  return Await<absl::StatusOr<std::string>>(
      [&](auto done) { tracker.Lookup(peer, absl::Now() + absl::Seconds(2), std::move(done)); });
}

absl::Status ReleaseSync(Tracker& tracker, const std::string& peer, const PeerClaim& claim) {
  return Await<absl::Status>([&](auto done) { tracker.Release(peer, claim, std::move(done)); });
}

// Claims started together, answered on gRPC threads.
class ClaimSet {
 public:
  void Start(Tracker& tracker, const std::string& peer,
             absl::Duration timeout = absl::Seconds(10)) {
    tracker.Claim(peer, absl::Now() + timeout, [this, peer](absl::StatusOr<PeerClaim> claim) {
      absl::MutexLock lock(&mu_);
      got_.emplace(peer, std::move(claim));
    });
  }
  // Waits until `count` claims are answered; returns them by peer.
  std::map<std::string, absl::StatusOr<PeerClaim>> Wait(size_t count) {
    absl::MutexLock lock(&mu_);
    auto all = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return got_.size() >= count; };
    EXPECT_TRUE(mu_.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30)))
        << got_.size() << " of " << count << " claims answered";
    return got_;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, absl::StatusOr<PeerClaim>> got_ ABSL_GUARDED_BY(mu_);
};

class EtcdTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGE_SKIP_WITHOUT_ETCD();
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
  }

  std::unique_ptr<etcd::EtcdTracker> NewTracker(const std::string& edge_id,
                                                std::vector<std::string> endpoints = {}) {
    etcd::EtcdTrackerOptions options;
    options.edge_id = edge_id;
    options.advertised_address = absl::StrCat(edge_id, ".example:50051");
    options.endpoints =
        endpoints.empty() ? std::vector<std::string>{etcd_->endpoint()} : std::move(endpoints);
    options.lease_ttl = lease_ttl_;
    options.key_prefix = kPrefix;
    options.request_timeout = request_timeout_;
    options.lost_claim_check_interval = lost_claim_check_interval_;
    options.lost_claim_scan_page = lost_claim_scan_page_;
    if (std::getenv("EDGE_TEST_LOG") != nullptr) options.logger = &log_;
    absl::StatusOr<std::unique_ptr<etcd::EtcdTracker>> tracker =
        etcd::EtcdTracker::Create(std::move(options));
    EXPECT_TRUE(tracker.ok()) << tracker.status();
    return *std::move(tracker);
  }

  // Reads a key straight from etcd, bypassing the tracker.
  absl::StatusOr<mvccpb::KeyValue> ReadKey(const std::string& key) {
    auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
    if (!client.ok()) return client.status();
    auto response =
        (*client)->TxnSync(etcd::internal::txn::Get(key), absl::Now() + absl::Seconds(2));
    if (!response.ok()) return response.status();
    const mvccpb::KeyValue* kv = etcd::internal::txn::FirstKey(*response);
    if (kv == nullptr) return absl::NotFoundError(key);
    return *kv;
  }

  // etcd's current revision: every write transaction that changed a key
  // (a group commit: one per batch) adds one.
  absl::StatusOr<int64_t> Revision() {
    auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
    if (!client.ok()) return client.status();
    auto response =
        (*client)->TxnSync(etcd::internal::txn::Get("/none"), absl::Now() + absl::Seconds(2));
    if (!response.ok()) return response.status();
    return response->header().revision();
  }

  // An edge reached through a proxy, holding claims of peer-0 ..
  // peer-{peers - 1}: cutting the proxy (SetConnected(false)) makes it die
  // as far as etcd can tell, its lease expiring within the TTL.
  struct DyingEdge {
    std::unique_ptr<TcpProxy> proxy;
    std::unique_ptr<etcd::EtcdTracker> tracker;
    std::set<std::string> claimed;
  };
  void StartDyingEdge(int peers, DyingEdge& edge) {
    absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(etcd_->client_port());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    edge.proxy = *std::move(proxy);
    edge.tracker = NewTracker("edge-dying", {edge.proxy->endpoint()});
    ASSERT_TRUE(edge.tracker->Start().ok());
    ClaimSet claims;
    for (int i = 0; i < peers; ++i) {
      claims.Start(*edge.tracker, absl::StrCat("peer-", i), absl::Seconds(30));
    }
    for (const auto& [peer, claim] : claims.Wait(peers)) {
      ASSERT_TRUE(claim.ok()) << peer << ": " << claim.status();
      edge.claimed.insert(peer);
    }
    ASSERT_EQ(edge.claimed.size(), static_cast<size_t>(peers));
  }

  Logger log_{LogLevel::kDebug};
  std::unique_ptr<EtcdProcess> etcd_;
  // Options of the trackers NewTracker makes from here on.
  absl::Duration lease_ttl_ = kTtl;
  absl::Duration request_timeout_ = absl::Seconds(1);
  absl::Duration lost_claim_check_interval_ = etcd::EtcdTrackerOptions().lost_claim_check_interval;
  int64_t lost_claim_scan_page_ = etcd::EtcdTrackerOptions().lost_claim_scan_page;
};

// Lost claims handed to a listener, published at once.
class LostClaims {
 public:
  Tracker::LostClaimListener Listener() {
    return [this](const LostClaim& claim, Tracker::LostClaimDone published) {
      {
        absl::MutexLock lock(&mu_);
        peers_.insert(claim.peer_id);
      }
      published(absl::OkStatus());
    };
  }
  std::set<std::string> peers() {
    absl::MutexLock lock(&mu_);
    return peers_;
  }

 private:
  absl::Mutex mu_;
  std::set<std::string> peers_ ABSL_GUARDED_BY(mu_);
};

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

  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok());
  absl::StatusOr<mvccpb::KeyValue> key = ReadKey("/test/peers/peer-1");
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_TRUE((*client)
                  ->TxnSync(etcd::internal::txn::DeleteIfUnchanged("/test/peers/peer-1",
                                                                   key->mod_revision()),
                            absl::Now() + absl::Seconds(2))
                  .ok());
  EXPECT_TRUE(WaitFor([&] { return lost.peers() == std::set<std::string>{"peer-1"}; },
                      absl::Seconds(3) + absl::Seconds(5)));
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
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());

  dying.proxy->SetConnected(false);
  EXPECT_TRUE(WaitFor([&] { return lost.peers().size() == static_cast<size_t>(peers); },
                      kTtl + absl::Seconds(60)))
      << lost.peers().size() << " of " << peers << " found";
}

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
  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok());
  absl::StatusOr<etcdserverpb::TxnResponse> gone = (*client)->TxnSync(
      etcd::internal::txn::ReleaseClaim({"/test/peers/peer-x", "/test/claims/peer-x", ""},
                                        *held.at("peer-x").epoch),
      absl::Now() + absl::Seconds(5));
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
