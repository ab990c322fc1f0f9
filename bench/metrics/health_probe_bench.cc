// How fast /healthz answers while other clients hold connections to the
// metrics port open (contract §10: within a second whatever they do).
//
//   health_probe_bench [idle_clients=8] [probes=50]
//
// Starts a MetricsServer on 127.0.0.1:0, opens `idle_clients` connections
// that each send half a request and wait, then sends `probes` GET /healthz
// one after the other, each with a 1 s budget, and prints how many answered
// 200 within it and the latency percentiles.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "edge/metrics/metrics_server.h"

namespace {

int Connect(int port, absl::Duration timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval wait = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One GET /healthz; true when "200" came back within `timeout`.
bool Probe(int port, absl::Duration timeout) {
  int fd = Connect(port, timeout);
  if (fd < 0) return false;
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  bool ok = send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size());
  std::string response;
  char buffer[512];
  while (ok) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      ok = n == 0;
      break;
    }
    response.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return ok && response.rfind("HTTP/1.1 200", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int idle_clients = argc > 1 ? std::atoi(argv[1]) : 8;
  const int probes = argc > 2 ? std::atoi(argv[2]) : 50;

  edge::metrics::MetricsServerOptions options;
  options.address = "127.0.0.1:0";
  auto server = edge::metrics::MetricsServer::Create(std::move(options));
  if (!server.ok() || !(*server)->Start().ok()) {
    std::fprintf(stderr, "cannot start the metrics server\n");
    return 1;
  }
  const int port = (*server)->port();

  std::vector<int> idle;
  for (int i = 0; i < idle_clients; ++i) {
    int fd = Connect(port, absl::Seconds(5));
    if (fd < 0) {
      std::fprintf(stderr, "cannot connect idle client %d\n", i);
      return 1;
    }
    const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    send(fd, partial, sizeof(partial) - 1, MSG_NOSIGNAL);
    idle.push_back(fd);
  }

  std::vector<double> latencies_ms;
  int answered = 0;
  for (int i = 0; i < probes; ++i) {
    absl::Time start = absl::Now();
    bool ok = Probe(port, absl::Seconds(1));
    double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (ok && ms <= 1000) ++answered;
    latencies_ms.push_back(ms);
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const auto at = [&](double q) {
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<size_t>(q * latencies_ms.size()))];
  };
  std::printf("workers=%d request_timeout_ms=%d idle_clients=%d probes=%d\n",
              edge::metrics::MetricsServer::kHttpWorkers,
              edge::metrics::MetricsServer::kRequestTimeoutMs, idle_clients, probes);
  std::printf("answered 200 within 1 s: %d/%d\n", answered, probes);
  std::printf("latency ms: p50 %.2f  p99 %.2f  max %.2f\n", at(0.5), at(0.99), latencies_ms.back());
  for (int fd : idle) close(fd);
  (*server)->Shutdown();
  return answered == probes ? 0 : 3;
}
