#include "descriptors.h"

#include <dirent.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge {

absl::StatusOr<int64_t> DescriptorBudget::RaiseLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", strerror(errno)));
  }
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_NOFILE): ", strerror(errno)));
    }
  }
  return limit.rlim_cur == RLIM_INFINITY ? int64_t{1} << 30 : static_cast<int64_t>(limit.rlim_cur);
}

int64_t DescriptorBudget::CountOpen() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int64_t count = 0;
  while (struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // The descriptor of `dir` itself.
}

bool DescriptorBudget::HasHeadroom() {
  absl::MutexLock lock(&mu_);
  absl::Time now = absl::Now();
  // Each admission may add a connection before the next count; assume it
  // did, and count for real when that guess comes near the limit.
  int64_t estimate = open_ + since_count_;
  if (open_ < 0 || now - counted_at_ > absl::Milliseconds(100) ||
      estimate + 2 * headroom_ >= limit_) {
    open_ = CountOpen();
    counted_at_ = now;
    since_count_ = 0;
    estimate = open_;
  }
  ++since_count_;
  return estimate + headroom_ < limit_;
}

}  // namespace edge
