// EdgedProcess: the built `edged` binary run as a child process, for
// end-to-end tests over real gRPC and Kafka.
//
// The child gets a clean environment: the defaults below, overridden by the
// caller's variables (nothing leaks in from the test's own environment):
//   GRPC_SERVER_ADDRESS=127.0.0.1:0   (the port edged picks is read back)
//   METRICS_ADDRESS=                  (no metrics endpoint)
//   LOG_FORMAT=json, LOG_LEVEL=info
// KAFKA_BOOTSTRAP_SERVERS should name an EmbeddedKafka the test owns, so that
// the broker, its topics and its consumer groups outlive edged's restarts.
// Everything edged writes to stdout and stderr goes to a log file in a fresh
// temporary directory (removed afterwards); ReadLog() is for failure messages.
//
// Start() waits until edged logs "edged listening" (its gRPC server is up).
// Restart() starts it again with the same environment on the same gRPC port.
// The child is killed with SIGKILL if the test process dies. Not thread-safe:
// drive one EdgedProcess from one thread (the thread that started it must
// outlive the child, see PR_SET_PDEATHSIG).
//
//   auto kafka = edge::kafka::EmbeddedKafka::Create();
//   edge::testing::EdgedProcess::Options options;
//   options.env = {{"EDGE_ID", "e1"},
//                  {"KAFKA_BOOTSTRAP_SERVERS", (*kafka)->bootstrap_servers()}};
//   auto edged = edge::testing::EdgedProcess::Start(options);
//   ASSERT_TRUE(edged.ok()) << edged.status();
//   ... connect to (*edged)->grpc_address() ...
//   ASSERT_TRUE((*edged)->Signal(SIGTERM).ok());
//   EXPECT_EQ((*edged)->WaitForExit(absl::Seconds(20)).value_or(-1), 0);
#ifndef EDGE_TESTS_SUPPORT_EDGED_PROCESS_H_
#define EDGE_TESTS_SUPPORT_EDGED_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "support/child_process.h"

namespace edge::testing {

class EdgedProcess {
 public:
  struct Options {
    // Environment variables, applied over the defaults above. An empty value
    // is passed as set-but-empty.
    std::map<std::string, std::string> env;
    // How long Start() and Restart() wait for "edged listening".
    absl::Duration start_timeout = absl::Seconds(30);
  };

  // The edged binary: EDGE_EDGED_BINARY from the environment if set, else
  // the one this build produced.
  static std::string BinaryPath();

  // Starts edged and waits until it listens. Fails (with its log) if it
  // exits first or does not listen within start_timeout.
  static absl::StatusOr<std::unique_ptr<EdgedProcess>> Start(Options options);
  // Starts edged without waiting for it: for tests of failed starts, which
  // then call WaitForExit().
  static absl::StatusOr<std::unique_ptr<EdgedProcess>> Launch(Options options);

  EdgedProcess(const EdgedProcess&) = delete;
  EdgedProcess& operator=(const EdgedProcess&) = delete;
  // SIGKILL if still running, then removes the temporary directory.
  ~EdgedProcess();

  // Sends `signo` (SIGTERM, SIGKILL, SIGUSR1, ...) to the running child.
  absl::Status Signal(int signo);
  // Waits for the child to exit and returns its exit code, or 128 + the
  // signal number when a signal ended it (as a shell reports it).
  // DEADLINE_EXCEEDED if it is still running after `timeout`.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);
  // SIGKILL if still running, then starts edged again with the same
  // environment, on the gRPC port it had, and waits until it listens.
  absl::Status Restart();

  bool running() const { return child_ != nullptr && child_->running(); }
  // The running child's process id; -1 when none runs.
  pid_t pid() const { return running() ? child_->pid() : -1; }
  // The port edged listens on (0 before it listened).
  int grpc_port() const { return grpc_port_; }
  // "127.0.0.1:<port>".
  std::string grpc_address() const;
  const std::string& log_path() const { return log_path_; }
  // Everything edged wrote so far, across restarts.
  std::string ReadLog() const;
  // The number of log lines, across restarts, that contain `text`.
  int CountLogLines(const std::string& text) const;

 private:
  EdgedProcess(Options options, std::string dir);

  absl::Status Spawn();
  absl::Status WaitListening(absl::Time deadline);

  Options options_;
  const std::string dir_;
  const std::string log_path_;
  // The current (or last) run.
  std::unique_ptr<ChildProcess> child_;
  int grpc_port_ = 0;
  // Where in the log the current run's output starts.
  size_t log_offset_ = 0;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_EDGED_PROCESS_H_
