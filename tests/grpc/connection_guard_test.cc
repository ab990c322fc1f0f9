#include "grpc/connection_guard.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "edge/testing/fake_clock.h"
#include "gtest/gtest.h"

namespace edge::grpc_transport::internal {
namespace {

TEST(ConnectionGuardTest, StreamsPerConnectionAreBoundedAndFreedOnRelease) {
  testing::FakeClock clock;
  ConnectionGuard guard({/*max_streams=*/2, 0, 0}, &clock);
  EXPECT_TRUE(guard.Admit(1, "ipv4:10.0.0.1:1000", true).status.ok());
  EXPECT_TRUE(guard.Admit(2, "ipv4:10.0.0.1:1000", true).status.ok());
  // Unary calls are not streams.
  EXPECT_TRUE(guard.Admit(3, "ipv4:10.0.0.1:1000", false).status.ok());
  ConnectionGuard::Verdict third = guard.Admit(4, "ipv4:10.0.0.1:1000", true);
  EXPECT_EQ(third.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(third.first_refusal);
  EXPECT_FALSE(third.close_connection);
  EXPECT_FALSE(guard.Admit(5, "ipv4:10.0.0.1:1000", true).first_refusal);  // Logged once.
  EXPECT_TRUE(guard.Admit(6, "ipv4:10.0.0.2:1000", true).status.ok());     // Another connection.
  guard.Release(1);
  guard.Release(4);  // Refused: nothing to release.
  EXPECT_TRUE(guard.Admit(7, "ipv4:10.0.0.1:1000", true).status.ok());
  for (uint64_t id : {2, 3, 6, 7}) guard.Release(id);
  EXPECT_EQ(guard.connections(), 0u);  // Without a start rate nothing stays.
}

TEST(ConnectionGuardTest, StartRateRefusesAndClosesOnceThenRefills) {
  testing::FakeClock clock;
  ConnectionGuard guard({0, /*call_starts_per_sec=*/10, /*call_start_burst=*/3}, &clock);
  const std::string peer = "ipv6:%5B::1%5D:4242";
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(guard.Admit(id, peer, true).status.ok());
    guard.Release(id);  // Reset at once: rapid reset frees no budget.
  }
  ConnectionGuard::Verdict over = guard.Admit(4, peer, true);
  EXPECT_EQ(over.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(over.close_connection);
  EXPECT_FALSE(guard.Admit(5, peer, true).close_connection);  // Closed once.
  clock.Advance(absl::Milliseconds(100));                     // One token back.
  EXPECT_TRUE(guard.Admit(6, peer, true).status.ok());
}

TEST(ConnectionGuardTest, EntriesOfQuietConnectionsArePruned) {
  testing::FakeClock clock;
  ConnectionGuard guard({2, 10, 20}, &clock);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t id = static_cast<uint64_t>(i) + 1;
    ASSERT_TRUE(guard.Admit(id, absl::StrCat("ipv4:10.0.0.1:", 2000 + i), true).status.ok());
    guard.Release(id);
  }
  EXPECT_EQ(guard.connections(), 1000u);
  // Once their buckets are full again they hold nothing worth keeping.
  clock.Advance(absl::Seconds(3));
  ASSERT_TRUE(guard.Admit(5000, "ipv4:10.0.0.9:1", true).status.ok());
  EXPECT_EQ(guard.connections(), 1u);
}

}  // namespace
}  // namespace edge::grpc_transport::internal
