// ChildProcess: a program run by a test (edged, etcd, an example peer), its
// standard output and error going to a file the test reads.
//
// The child starts with an empty signal mask and is killed with SIGKILL if
// the thread that started it dies (PR_SET_PDEATHSIG), so a crashed test
// leaves nothing running; it is killed and reaped when the object is
// destroyed. Not thread-safe: drive one ChildProcess from the thread that
// started it.
//
//   auto child = edge::testing::ChildProcess::Start(
//       {"/usr/bin/etcd", "--name=test"}, dir + "/etcd.log");
//   ASSERT_TRUE(child.ok()) << child.status();
//   ASSERT_TRUE((*child)->WaitForOutput("ready")) << (*child)->Output();
//   ASSERT_TRUE((*child)->Signal(SIGTERM).ok());
//   EXPECT_EQ((*child)->WaitForExit().value_or(-1), 0);
#ifndef EDGE_TESTS_SUPPORT_CHILD_PROCESS_H_
#define EDGE_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge::testing {

class ChildProcess {
 public:
  struct Options {
    // argv[0] is the program's path (no PATH lookup).
    std::vector<std::string> argv;
    // Unset: the test process's environment. Set: exactly these variables.
    std::optional<std::map<std::string, std::string>> env;
    // Where standard output and error go.
    std::string output_path;
    // Append to output_path (a restarted program's log) instead of
    // truncating it.
    bool append_output = false;
  };

  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(Options options);
  // Runs `argv` with the test's environment, its output in `output_path`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(std::vector<std::string> argv,
                                                             std::string output_path);

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // Kill().
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // False once the child's exit was reaped (TryReap, WaitForExit, Kill).
  bool running() const { return !exit_code_.has_value(); }
  // Reaps the child if it has exited; true when it is gone.
  bool TryReap();
  // The exit code once reaped: the program's, or 128 + the signal number
  // when a signal ended it (as a shell reports it).
  std::optional<int> exit_code() const { return exit_code_; }

  // Sends `signo`; FAILED_PRECONDITION once the child has exited.
  absl::Status Signal(int signo);
  // Waits for the exit and returns exit_code(); DEADLINE_EXCEEDED if the
  // child still runs after `timeout`.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout = absl::Seconds(10));
  // SIGKILL if still running, then reaps it.
  void Kill();

  // Everything in the output file so far.
  std::string Output() const;
  // True once Output() contains `text`; false after `timeout`.
  bool WaitForOutput(const std::string& text, absl::Duration timeout = absl::Seconds(20)) const;

 private:
  ChildProcess(pid_t pid, std::string output_path)
      : pid_(pid), output_path_(std::move(output_path)) {}

  const pid_t pid_;
  const std::string output_path_;
  std::optional<int> exit_code_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_CHILD_PROCESS_H_
