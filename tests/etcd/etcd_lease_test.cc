// The etcd tracker's lease under slow answers: a keepalive etcd answers
// late still renews the lease, a slow answer does not push the next
// keepalive back, and the debug trace shows each round trip.
// (Outages, partitions and loss: etcd_tracker_test.cc.)
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "edge/etcd/etcd_tracker.h"
#include "edge/logger.h"
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

// The round trips of the keepalives answered OK, from the tracker's debug
// trace (`etcd keepalive ms=... status=OK`) in `log`.
std::vector<double> AnsweredKeepaliveMillis(FILE* log) {
  std::string all(1 << 20, '\0');
  const ssize_t n = pread(fileno(log), all.data(), all.size(), 0);
  std::vector<double> millis;
  if (n <= 0) return millis;
  for (absl::string_view line : absl::StrSplit(absl::string_view(all.data(), n), '\n')) {
    if (!absl::StrContains(line, "etcd keepalive ") || !absl::StrContains(line, "status=OK")) {
      continue;
    }
    const size_t at = line.find(" ms=");
    if (at == absl::string_view::npos) continue;
    absl::string_view value = line.substr(at + 4);
    value = value.substr(0, value.find(' '));
    double ms;
    if (absl::SimpleAtod(value, &ms)) millis.push_back(ms);
  }
  return millis;
}

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
  // The tracker's log, read back below; it outlives the tracker.
  std::unique_ptr<FILE, int (*)(FILE*)> log(std::tmpfile(), &std::fclose);
  ASSERT_NE(log, nullptr);
  Logger logger(LogLevel::kDebug, LogFormat::kText, fileno(log.get()));
  options.logger = &logger;
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
  // The debug trace shows the slow round trips an operator would look for.
  int slow = 0;
  for (double ms : AnsweredKeepaliveMillis(log.get())) {
    if (ms >= absl::ToDoubleMilliseconds(kReplyDelay)) ++slow;
  }
  EXPECT_GE(slow, 2) << "keepalives answered after the delay, in the trace";
}

}  // namespace
}  // namespace edge::testing
