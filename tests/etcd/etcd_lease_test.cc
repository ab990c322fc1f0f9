// The etcd tracker's lease under slow answers: a keepalive etcd answers
// late still renews the lease, and a slow answer does not push the next
// keepalive back. (Outages, partitions and loss: etcd_tracker_test.cc.)
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "edge/etcd/etcd_tracker.h"
#include "etcd/tcp_proxy.h"
#include "gtest/gtest.h"
#include "support/etcd_process.h"
#include "support/tracker_sync.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

// A keepalive goes out every TTL/3 (2 s); etcd's answers reach the edge
// 2.5 s after it sent them, later than TTL/3 but well inside the TTL.
constexpr absl::Duration kTtl = absl::Seconds(6);
constexpr absl::Duration kReplyDelay = absl::Milliseconds(2500);

TEST(EtcdLeaseTest, KeepalivesAnsweredLaterThanATtlThirdStillKeepTheLease) {
  EDGE_SKIP_WITHOUT_ETCD();
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start((*etcd)->client_port());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  etcd::EtcdTrackerOptions options;
  options.edge_id = "edge-slow";
  options.advertised_address = "edge-slow.example:50051";
  options.endpoints = {(*proxy)->endpoint()};
  options.lease_ttl = kTtl;
  options.key_prefix = "/test/";
  options.request_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<etcd::EtcdTracker>> tracker =
      etcd::EtcdTracker::Create(std::move(options));
  ASSERT_TRUE(tracker.ok()) << tracker.status();
  ASSERT_TRUE((*tracker)->Start().ok());
  ASSERT_TRUE(ClaimSync(**tracker, "peer-1", absl::Seconds(2)).ok());

  (*proxy)->SetReplyDelay(kReplyDelay);
  // Two TTLs of late answers. Given up on after TTL/3, as keepalives once
  // were, every one of them would fail and the lease be lost after one
  // TTL; it must never be.
  const absl::Time end = absl::Now() + 2 * kTtl;
  while (absl::Now() < end) {
    ASSERT_TRUE((*tracker)->HasLease()) << "the lease was given up while etcd still answered";
    absl::SleepFor(absl::Milliseconds(50));
  }

  (*proxy)->SetReplyDelay(absl::ZeroDuration());
  EXPECT_EQ(LookupSync(**tracker, "peer-1").value_or(""), "edge-slow");
}

}  // namespace
}  // namespace edge::testing
