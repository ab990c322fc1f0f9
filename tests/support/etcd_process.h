// EtcdProcess: a real etcd server for tests, on free loopback ports in a
// fresh temporary data directory that is removed afterwards.
//
// etcd cannot listen on port 0, so free ports are found by binding a socket
// to port 0 and releasing it; a start that loses the port to another process
// is retried on new ports. Restart() reuses the same ports and data, for
// "etcd went away and came back" tests. The server dies with the test.
//
//   EDGE_SKIP_WITHOUT_ETCD();
//   auto etcd = edge::testing::EtcdProcess::Start();
//   ASSERT_TRUE(etcd.ok()) << etcd.status();
//   options.endpoints = {(*etcd)->endpoint()};
#ifndef EDGE_TESTS_SUPPORT_ETCD_PROCESS_H_
#define EDGE_TESTS_SUPPORT_ETCD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "support/child_process.h"

namespace edge::testing {

class EtcdProcess {
 public:
  // The etcd binary used; EDGE_ETCD_BINARY in the environment overrides it.
  static std::string BinaryPath();
  // True when the binary exists and is executable.
  static bool Available();

  struct Options {
    // Set: clients speak TLS (https://) with this server certificate (for
    // 127.0.0.1) and key; /health is then asked on a plaintext metrics port.
    std::string cert_file;
    std::string key_file;
    // With TLS: clients must present a certificate signed by this CA.
    std::string client_ca_file;
    // More etcd flags, e.g. "--auth-token=simple".
    std::vector<std::string> extra_args;
  };

  // Starts etcd and waits until it answers /health, within `timeout`.
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      absl::Duration timeout = absl::Seconds(20));
  static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start(
      Options options, absl::Duration timeout = absl::Seconds(20));

  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;
  // Kills the server and removes its data directory.
  ~EtcdProcess();

  // SIGTERM, then waits for the exit (SIGKILL after `timeout`).
  absl::Status Stop(absl::Duration timeout = absl::Seconds(10));
  // SIGKILL, then waits for the exit.
  void Kill();
  // Starts again on the same ports with the same data; waits until healthy.
  absl::Status Restart(absl::Duration timeout = absl::Seconds(20));
  // SIGSTOP / SIGCONT: while paused etcd keeps its connections but
  // answers nothing; requests sent meanwhile are answered once resumed.
  absl::Status Pause();
  absl::Status Resume();

  bool running() const { return child_ != nullptr && child_->running(); }
  // `127.0.0.1:port`, the client endpoint.
  std::string endpoint() const;
  // The same with its scheme: `http://...` or, with TLS, `https://...`.
  std::string url() const;
  int client_port() const { return client_port_; }
  const std::string& data_dir() const { return data_dir_; }
  // etcd's own output, for diagnosing a failed start.
  std::string ReadLog() const;

 private:
  EtcdProcess(std::string dir, int client_port, int peer_port, int health_port, Options options);
  absl::Status Launch();
  absl::Status WaitHealthy(absl::Time deadline);

  const std::string dir_;
  const std::string data_dir_;
  const std::string log_path_;
  const int client_port_;
  const int peer_port_;
  // Where /health is asked: the client port, or with TLS a metrics port.
  const int health_port_;
  const Options options_;
  std::unique_ptr<ChildProcess> child_;
};

// Returns a free TCP port on 127.0.0.1 (bound once, then released).
absl::StatusOr<int> PickFreeLoopbackPort();

}  // namespace edge::testing

// Skips the current test when no etcd binary is installed.
#define EDGE_SKIP_WITHOUT_ETCD()                                                                \
  do {                                                                                          \
    if (!::edge::testing::EtcdProcess::Available()) {                                           \
      GTEST_SKIP() << "etcd binary not found at " << ::edge::testing::EtcdProcess::BinaryPath() \
                   << " (install etcd or set EDGE_ETCD_BINARY)";                                \
    }                                                                                           \
  } while (false)

#endif  // EDGE_TESTS_SUPPORT_ETCD_PROCESS_H_
