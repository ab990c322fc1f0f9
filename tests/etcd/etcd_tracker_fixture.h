// The fixture of the EtcdTracker suites against a real etcd
// (etcd_tracker_test.cc, etcd_batch_test.cc): an etcd per test, trackers on
// it with short TTLs, blocking helpers and reads straight from etcd.
// Included by one source file per test binary: its helpers live in an
// unnamed namespace, apart from the shared ones of tests/support (which
// wait longer).
#ifndef EDGE_TESTS_ETCD_ETCD_TRACKER_FIXTURE_H_
#define EDGE_TESTS_ETCD_ETCD_TRACKER_FIXTURE_H_

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/etcd/etcd_tracker.h"
#include "edge/logger.h"
#include "etcd/etcd_client.h"
#include "etcd/etcd_txn.h"
#include "etcd/tcp_proxy.h"
#include "gtest/gtest.h"
#include "support/await.h"
#include "support/etcd_process.h"

namespace edge::testing {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(2);
constexpr char kPrefix[] = "/test/";

// Not every suite uses every helper.
[[maybe_unused]] absl::StatusOr<PeerClaim> ClaimSync(Tracker& tracker, const std::string& peer,
                                                     absl::Duration timeout = absl::Seconds(2)) {
  return Await<absl::StatusOr<PeerClaim>>(
      [&](auto done) { tracker.Claim(peer, absl::Now() + timeout, std::move(done)); });
}

[[maybe_unused]] absl::StatusOr<std::string> LookupSync(Tracker& tracker, const std::string& peer) {
  return Await<absl::StatusOr<std::string>>(
      [&](auto done) { tracker.Lookup(peer, absl::Now() + absl::Seconds(2), std::move(done)); });
}

[[maybe_unused]] absl::Status ReleaseSync(Tracker& tracker, const std::string& peer,
                                          const PeerClaim& claim) {
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
    if (logger_ != nullptr) {
      options.logger = logger_;
    } else if (std::getenv("EDGE_TEST_LOG") != nullptr) {
      options.logger = &log_;
    }
    absl::StatusOr<std::unique_ptr<etcd::EtcdTracker>> tracker =
        etcd::EtcdTracker::Create(std::move(options));
    EXPECT_TRUE(tracker.ok()) << tracker.status();
    return *std::move(tracker);
  }

  // A transaction straight on etcd, bypassing the tracker.
  absl::StatusOr<etcdserverpb::TxnResponse> DirectTxn(const etcdserverpb::TxnRequest& txn) {
    auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
    if (!client.ok()) return client.status();
    return (*client)->TxnSync(txn, absl::Now() + absl::Seconds(2));
  }

  // Revokes `lease` straight on etcd, deleting the keys bound to it.
  absl::Status RevokeLease(int64_t lease) {
    auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
    if (!client.ok()) return client.status();
    return (*client)->LeaseRevokeSync(lease, absl::Now() + absl::Seconds(2));
  }

  // Reads a key straight from etcd.
  absl::StatusOr<mvccpb::KeyValue> ReadKey(const std::string& key) {
    auto response = DirectTxn(etcd::internal::txn::Get(key));
    if (!response.ok()) return response.status();
    const mvccpb::KeyValue* kv = etcd::internal::txn::FirstKey(*response);
    if (kv == nullptr) return absl::NotFoundError(key);
    return *kv;
  }

  // Writes a key straight to etcd (bound to `lease`; 0: none).
  absl::Status PutKey(const std::string& key, const std::string& value, int64_t lease = 0) {
    return DirectTxn(etcd::internal::txn::Put(key, value, lease)).status();
  }

  // etcd's current revision: every write transaction that changed a key
  // (a group commit: one per batch) adds one.
  absl::StatusOr<int64_t> Revision() {
    auto response = DirectTxn(etcd::internal::txn::Get("/none"));
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
  Logger* logger_ = nullptr;  // set: the trackers' log
};

}  // namespace
}  // namespace edge::testing

#endif  // EDGE_TESTS_ETCD_ETCD_TRACKER_FIXTURE_H_
