// ChildProcess: a program run by a test, its standard output and error
// going to a file the test reads. Stopped with SIGKILL if still running when
// destroyed.
#ifndef EDGE_TESTS_E2E_WEBRTC_CHILD_PROCESS_H_
#define EDGE_TESTS_E2E_WEBRTC_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge::testing {

class ChildProcess {
 public:
  // Runs `argv` (argv[0] a path) with its output in `output_path`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv, const std::string& output_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Everything the program wrote so far.
  std::string Output() const;
  // True once Output() contains `text`; false after `timeout`.
  bool WaitForOutput(const std::string& text,
                     absl::Duration timeout = absl::Seconds(20)) const;

  void Signal(int signal_number);
  // The exit code once it exited (-1 when killed by a signal); nullopt if
  // still running after `timeout`.
  std::optional<int> WaitForExit(absl::Duration timeout = absl::Seconds(10));

 private:
  ChildProcess(pid_t pid, std::string output_path)
      : pid_(pid), output_path_(std::move(output_path)) {}

  pid_t pid_;
  const std::string output_path_;
  std::optional<int> exit_code_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_WEBRTC_CHILD_PROCESS_H_
