#include "core/log_limiter.h"

#include "gtest/gtest.h"

namespace edge {
namespace {

TEST(LogLimiterTest, OneLinePerKeyAndPeriodCountingWhatWasLeftOut) {
  LogLimiter limiter(absl::Seconds(5));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_EQ(limiter.Admit("peer_not_connected", t0), 0);
  for (int i = 1; i <= 9; ++i) {
    EXPECT_EQ(limiter.Admit("peer_not_connected", t0 + absl::Milliseconds(100 * i)), std::nullopt);
  }
  // Another key has its own period.
  EXPECT_EQ(limiter.Admit("invalid_json", t0 + absl::Seconds(1)), 0);
  EXPECT_EQ(limiter.Admit("peer_not_connected", t0 + absl::Seconds(5)), 9);
  EXPECT_EQ(limiter.Admit("peer_not_connected", t0 + absl::Seconds(11)), 0);
}

}  // namespace
}  // namespace edge
