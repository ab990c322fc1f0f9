// edged's liveness when gRPC stops accepting: Debian's gRPC 1.51 never
// accepts again once accept4 failed with EMFILE (CVE-2023-4785). Reproduced
// with a low descriptor limit and a flood of idle TCP connections; /healthz
// must then fail so that a supervisor restarts the edge.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/child_process.h"
#include "support/http_client.h"
#include "support/wait.h"

namespace edge {
namespace {

using ::edge::testing::ChildProcess;
using ::edge::testing::HttpRequest;
using ::edge::testing::WaitFor;
using ::testing::HasSubstr;

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

TEST(EdgedListenerTest, HealthzFailsOnceTheGrpcListenerStopsAccepting) {
  ChildProcess::Options options;
  options.argv = {"/usr/bin/prlimit", "--nofile=384:384", EDGE_EDGED_BINARY};
  options.env = std::map<std::string, std::string>{
      {"PATH", "/usr/bin:/bin"},
      {"EDGE_ID", "listener-test"},
      {"GRPC_SERVER_ADDRESS", "127.0.0.1:0"},
      {"METRICS_ADDRESS", "127.0.0.1:0"},
      {"GRPC_LISTENER_PROBE_INTERVAL_MS", "100"},
  };
  options.output_path = ::testing::TempDir() + "/edged_listener_test.log";
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
  for (int i = 0; i < 800; ++i) {
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
