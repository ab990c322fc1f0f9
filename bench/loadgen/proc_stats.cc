#include "proc_stats.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace edge::loadgen {

absl::StatusOr<ProcessSample> SampleProcess(pid_t pid) {
  ProcessSample sample;
  const std::string base = absl::StrCat("/proc/", pid);
  std::ifstream status(base + "/status");
  if (!status) return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "VmRSS:")) {
      rest = absl::StripAsciiWhitespace(rest);
      if (!absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &sample.rss_kib)) sample.rss_kib = 0;
    } else if (absl::ConsumePrefix(&rest, "Threads:")) {
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &sample.threads)) sample.threads = 0;
    }
  }
  std::ifstream stat(base + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // The command name may hold spaces: fields are counted after its ')'.
  const size_t close = content.rfind(')');
  if (close == std::string::npos)
    return absl::NotFoundError(absl::StrCat("process ", pid, " is gone"));
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(content).substr(close + 2), ' ', absl::SkipEmpty());
  // Fields 14 (utime) and 15 (stime) of stat(5), counted from 1 at the pid.
  int64_t utime = 0, stime = 0;
  if (fields.size() > 12) {
    // A field that does not parse counts as 0, as a missing one does.
    if (!absl::SimpleAtoi(fields[11], &utime)) utime = 0;
    if (!absl::SimpleAtoi(fields[12], &stime)) stime = 0;
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  sample.cpu = absl::Seconds(static_cast<double>(utime + stime) / ticks);
  if (DIR* dir = opendir((base + "/fd").c_str())) {
    while (struct dirent* entry = readdir(dir)) {
      if (entry->d_name[0] != '.') ++sample.descriptors;
    }
    closedir(dir);
  }
  return sample;
}

}  // namespace edge::loadgen
