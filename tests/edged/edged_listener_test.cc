// edged under a flood of idle TCP connections, with a low descriptor limit.
// Debian's gRPC 1.51 never accepts again once accept4 failed with EMFILE
// (CVE-2023-4785). With its descriptor reserve (GRPC_DESCRIPTOR_RESERVE)
// edged never gets there: connections beyond it are closed at once, health
// and metrics keep answering, and peers are admitted again once the flood
// is gone. Without the reserve the failure is reproduced, and /healthz must
// then fail so that a supervisor restarts the edge.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/child_process.h"
#include "support/http_client.h"
#include "support/test_peer.h"
#include "support/wait.h"

namespace edge {
namespace {

using ::edge::testing::ChildProcess;
using ::edge::testing::HttpRequest;
using ::edge::testing::SampleValue;
using ::edge::testing::TestPeer;
using ::edge::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;

// edged's descriptor limit in these tests, and the flood: twice as many
// connections as it can hold.
constexpr int kEdgedDescriptors = 384;
constexpr int kFloodConnections = 800;

// The port after `key` ("grpc=127.0.0.1:") in edged's start line; 0 if absent.
int PortAfter(const std::string& log, const std::string& key) {
  const size_t line = log.find("edged listening");
  if (line == std::string::npos) return 0;
  const size_t at = log.find(key, line);
  if (at == std::string::npos) return 0;
  const size_t colon = log.find(':', at + key.size());
  const size_t end = log.find_first_not_of("0123456789", colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(log.substr(colon + 1, end - colon - 1), &port)) return 0;
  return port;
}

// A TCP connection to 127.0.0.1:`port` that sends nothing; -1 when the
// connection does not complete within a second (the backlog is full).
int IdleConnection(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int error = 0;
  socklen_t len = sizeof(error);
  if (poll(&p, 1, 1000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 ||
      error != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// What became of a flood connection.
enum class Outcome { kPending, kServed, kClosed, kFailed };

// A TCP connection to 127.0.0.1:`port`, connecting without waiting.
int StartConnection(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

// Waits until each of `fds` was served (gRPC's first HTTP/2 frame came),
// closed or reset by the server, or failed otherwise; those without any of
// these by `timeout` stay kPending (the listener left them in its backlog).
std::vector<Outcome> AwaitOutcomes(const std::vector<int>& fds, absl::Duration timeout) {
  std::vector<Outcome> outcomes(fds.size(), Outcome::kPending);
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::vector<pollfd> pending;
    std::vector<size_t> index;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (outcomes[i] != Outcome::kPending) continue;
      pending.push_back({fds[i], POLLIN, 0});
      index.push_back(i);
    }
    if (pending.empty()) break;
    const int ms = static_cast<int>(
        std::clamp<int64_t>(absl::ToInt64Milliseconds(deadline - absl::Now()), 0, 100));
    if (poll(pending.data(), pending.size(), ms) <= 0) continue;
    for (size_t j = 0; j < pending.size(); ++j) {
      if (pending[j].revents == 0) continue;
      char byte;
      const ssize_t n = recv(pending[j].fd, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
      Outcome& outcome = outcomes[index[j]];
      if (n > 0) {
        outcome = Outcome::kServed;
      } else if (n == 0 || errno == ECONNRESET || errno == EPIPE) {
        outcome = Outcome::kClosed;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        outcome = Outcome::kFailed;
      }
    }
  }
  return outcomes;
}

// The test process holds the flood's client ends: its soft limit up to
// what the flood needs (the hard limit permitting).
void RaiseOwnDescriptorLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = std::min<rlim_t>(limit.rlim_max, 4 * kFloodConnections);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = wanted;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

ChildProcess::Options EdgedUnderLowLimit(const std::string& name,
                                         std::map<std::string, std::string> extra_env) {
  ChildProcess::Options options;
  options.argv = {"/usr/bin/prlimit",
                  absl::StrCat("--nofile=", kEdgedDescriptors, ":", kEdgedDescriptors),
                  EDGE_EDGED_BINARY};
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/bin:/bin"},
      {"EDGE_ID", name},
      {"GRPC_SERVER_ADDRESS", "127.0.0.1:0"},
      {"METRICS_ADDRESS", "127.0.0.1:0"},
      {"GRPC_LISTENER_PROBE_INTERVAL_MS", "100"},
  };
  // Under UBSan (CI's sanitizer stages), a virtual call's type check reads
  // the vtable through a pipe; with every descriptor of the process taken,
  // as these tests make it, the pipe fails and the check reports a valid
  // object as "invalid vptr". A suppression cannot help (matching it needs
  // the vtable or the symbolizer, both out of reach then), so these
  // processes run with halt_on_error=0, which only the vptr check honours
  // (the only check built recoverable, CMakeLists.txt); every other check
  // still aborts them, and every other process keeps halt_on_error=1.
  env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=0";
  for (auto& [key, value] : extra_env) env[key] = value;
  options.env = std::move(env);
  // Per process: the same test may run in parallel from another build.
  options.output_path = absl::StrCat(::testing::TempDir(), "/", name, "-", getpid(), ".log");
  return options;
}

TEST(EdgedListenerTest, KeepsAcceptingThroughAConnectionFloodWithItsDescriptorReserve) {
  RaiseOwnDescriptorLimit();
  // The default reserve; the server closes no idle connection on its own
  // while the test runs, so whatever closes one is the reserve.
  auto edged = ChildProcess::Start(EdgedUnderLowLimit(
      "flood-test",
      {{"GRPC_HANDSHAKE_TIMEOUT_MS", "600000"}, {"GRPC_MAX_CONNECTION_IDLE_MS", "600000"}}));
  ASSERT_TRUE(edged.ok()) << edged.status();
  ASSERT_TRUE((*edged)->WaitForOutput("edged listening")) << (*edged)->Output();
  const int grpc_port = PortAfter((*edged)->Output(), "grpc=");
  const int metrics_port = PortAfter((*edged)->Output(), "metrics=");
  ASSERT_GT(grpc_port, 0) << (*edged)->Output();
  ASSERT_GT(metrics_port, 0) << (*edged)->Output();
  ASSERT_THAT((*edged)->Output(), HasSubstr("descriptor_reserve=128 descriptor_limit=384"));
  ASSERT_TRUE(WaitFor([&] {
    auto health = HttpRequest(metrics_port, "GET", "/healthz");
    return health.ok() && health->status == 200;
  })) << (*edged)->Output();

  std::vector<int> flood;
  for (int i = 0; i < kFloodConnections; ++i) {
    const int fd = StartConnection(grpc_port);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    flood.push_back(fd);
  }
  // Every connection gets an answer: served, or closed at once. None is
  // left in the backlog, as gRPC does once it ran out of descriptors.
  const std::vector<Outcome> outcomes = AwaitOutcomes(flood, absl::Seconds(60));
  const auto count = [&](Outcome o) { return std::count(outcomes.begin(), outcomes.end(), o); };
  EXPECT_EQ(count(Outcome::kPending), 0) << (*edged)->Output();
  EXPECT_EQ(count(Outcome::kFailed), 0);
  EXPECT_GT(count(Outcome::kServed), 0);
  // edged cannot hold more connections than it has descriptors.
  EXPECT_GE(count(Outcome::kClosed), kFloodConnections - kEdgedDescriptors);

  // While the flood holds every descriptor it may take, the metrics port
  // still has descriptors of its own, and the listener works.
  auto health = HttpRequest(metrics_port, "GET", "/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200) << health->body;
  // A batch of refusals is counted once its last connection is closed:
  // wait for the count to catch up with what the clients saw.
  absl::StatusOr<edge::testing::HttpResponse> metrics;
  EXPECT_TRUE(WaitFor([&] {
    metrics = HttpRequest(metrics_port, "GET", "/metrics");
    return metrics.ok() && metrics->status == 200 &&
           SampleValue(metrics->body, "edge_connections_refused_total").value_or(0) >=
               count(Outcome::kClosed);
  })) << (metrics.ok() ? metrics->body : metrics.status().ToString());
  // Connections arriving now are answered at once too, and refused: a
  // few may still be served first, taking descriptors that something
  // opened before the flood (the listener probe, Kafka) has freed since.
  bool late_refused = false;
  for (int i = 0; i < 20 && !late_refused; ++i) {
    const int late = StartConnection(grpc_port);
    ASSERT_GE(late, 0);
    flood.push_back(late);  // Kept open, as the flood's.
    const Outcome outcome = AwaitOutcomes({late}, absl::Seconds(10))[0];
    ASSERT_NE(outcome, Outcome::kPending) << i;
    late_refused = outcome == Outcome::kClosed;
  }
  EXPECT_TRUE(late_refused);

  for (int fd : flood) close(fd);
  // Once the flood is gone a real peer is admitted again (the edge's
  // descriptor count for admissions catches up within moments).
  absl::StatusOr<std::unique_ptr<TestPeer>> peer;
  EXPECT_TRUE(WaitFor(
      [&] {
        TestPeer::Options peer_options;
        peer_options.peer_id = "after-the-flood";
        peer_options.admission_timeout = absl::Seconds(5);
        peer = TestPeer::Connect(absl::StrCat("127.0.0.1:", grpc_port), std::move(peer_options));
        return peer.ok();
      },
      absl::Seconds(30)))
      << peer.status() << (*edged)->Output();

  const std::string log = (*edged)->Output();
  EXPECT_THAT(log, HasSubstr("refusing new gRPC connections"));
  EXPECT_THAT(log, Not(HasSubstr("Failed accept4")));
  EXPECT_THAT(log, Not(HasSubstr("File descriptor limit")));
  if (peer.ok()) peer->reset();
  (*edged)->Kill();
}

TEST(EdgedListenerTest, AReserveNotBelowTheDescriptorLimitFailsTheStart) {
  auto edged = ChildProcess::Start(EdgedUnderLowLimit(
      "reserve-test", {{"GRPC_DESCRIPTOR_RESERVE", absl::StrCat(kEdgedDescriptors)}}));
  ASSERT_TRUE(edged.ok()) << edged.status();
  absl::StatusOr<int> exit_code = (*edged)->WaitForExit(absl::Seconds(20));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  const std::string log = (*edged)->Output();
  EXPECT_EQ(*exit_code, 2) << log;
  EXPECT_THAT(log, HasSubstr("GRPC_DESCRIPTOR_RESERVE=384 leaves no descriptor"));
  EXPECT_THAT(log, Not(HasSubstr("edged listening")));
}

// Without a reserve (GRPC_DESCRIPTOR_RESERVE=0) the flood takes the last
// descriptor, and the listener probe must say so.
TEST(EdgedListenerTest, HealthzFailsOnceTheGrpcListenerStopsAccepting) {
  ChildProcess::Options options =
      EdgedUnderLowLimit("listener-test", {{"GRPC_DESCRIPTOR_RESERVE", "0"}});
  auto edged = ChildProcess::Start(options);
  ASSERT_TRUE(edged.ok()) << edged.status();
  ASSERT_TRUE((*edged)->WaitForOutput("edged listening")) << (*edged)->Output();
  const int grpc_port = PortAfter((*edged)->Output(), "grpc=");
  const int metrics_port = PortAfter((*edged)->Output(), "metrics=");
  ASSERT_GT(grpc_port, 0) << (*edged)->Output();
  ASSERT_GT(metrics_port, 0) << (*edged)->Output();
  ASSERT_TRUE(WaitFor([&] {
    auto health = HttpRequest(metrics_port, "GET", "/healthz");
    return health.ok() && health->status == 200;
  })) << (*edged)->Output();

  // More idle connections than edged has descriptors: gRPC's accept4 fails.
  std::vector<int> connections;
  for (int i = 0; i < kFloodConnections; ++i) {
    const int fd = IdleConnection(grpc_port);
    if (fd < 0) break;
    connections.push_back(fd);
  }
  const bool failed = (*edged)->WaitForOutput("Failed accept4", absl::Seconds(20));
  for (int fd : connections) close(fd);
  ASSERT_TRUE(failed) << connections.size() << " connections; " << (*edged)->Output();

  // The connections are gone, the descriptors free again: gRPC 1.51 still
  // accepts nothing, and liveness says so.
  absl::StatusOr<edge::testing::HttpResponse> health;
  EXPECT_TRUE(WaitFor(
      [&] {
        health = HttpRequest(metrics_port, "GET", "/healthz");
        return health.ok() && health->status == 503 &&
               health->body.find("did not answer") != std::string::npos;
      },
      absl::Seconds(30)))
      << (health.ok() ? health->body : health.status().ToString()) << (*edged)->Output();
  EXPECT_THAT(health.ok() ? health->body : "", HasSubstr("listener probe"));
  (*edged)->Kill();
}

}  // namespace
}  // namespace edge
