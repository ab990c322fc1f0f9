#include "edge/descriptors.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace edge {
namespace {

TEST(DescriptorBudgetTest, RaiseLimitLiftsTheSoftLimitToTheHardOne) {
  absl::StatusOr<int64_t> limit = DescriptorBudget::RaiseLimit();
  ASSERT_TRUE(limit.ok()) << limit.status();
  struct rlimit now;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, now.rlim_max);
  if (now.rlim_cur != RLIM_INFINITY) {
    EXPECT_EQ(*limit, static_cast<int64_t>(now.rlim_cur));
  }
}

TEST(DescriptorBudgetTest, CountOpenSeesEachDescriptor) {
  const int64_t before = DescriptorBudget::CountOpen();
  EXPECT_GE(before, 1);  // At least the test's output.
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(DescriptorBudget::CountOpen(), before + 1);
  close(fd);
  EXPECT_EQ(DescriptorBudget::CountOpen(), before);
}

TEST(DescriptorBudgetTest, RefusesOnceFewerThanTheHeadroomAreFree) {
  const int64_t open = DescriptorBudget::CountOpen();
  DescriptorBudget roomy(open + 1000, 10);
  EXPECT_TRUE(roomy.HasHeadroom());
  DescriptorBudget tight(open + 10, 20);
  EXPECT_FALSE(tight.HasHeadroom());
}

}  // namespace
}  // namespace edge
