// edge_bench_edge: the edge with an in-memory bus, for measuring the edge
// without a broker. It wires the core exactly as edged does, with
// GrpcPeerTransport and LocalTracker, but with FakeMessageBus (every publish
// is stored at once) instead of KafkaMessageBus. Backend commands come in on
// a TCP "feed" port, one "<peer_id>\t<json>\n" line each, and are produced
// into the in-memory command topic (see command_sink.h).
//
//   edge_bench_edge --port=0 --feed_port=0 --max_seconds=600
// prints "edge_bench_edge listening port=<grpc> feed=<feed> pid=<pid>", then
// serves until SIGTERM/SIGINT or --max_seconds, and shuts down as edged does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "command_sink.h"
#include "edge/descriptors.h"
#include "edge/edge.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_message_bus.h"

ABSL_FLAG(std::string, address, "0.0.0.0", "gRPC address to listen on");
ABSL_FLAG(int, port, 0, "gRPC port (0: any free port)");
ABSL_FLAG(int, feed_port, 0, "command feed port on 127.0.0.1 (0: any free port)");
ABSL_FLAG(std::string, edge_id, "bench", "EDGE_ID");
ABSL_FLAG(int, max_peers, 20000, "MAX_PEERS");
ABSL_FLAG(int, peer_send_queue_max, 1024, "PEER_SEND_QUEUE_MAX");
ABSL_FLAG(double, peer_max_messages_per_sec, 1000, "PEER_MAX_MESSAGES_PER_SEC");
ABSL_FLAG(bool, catalog_pull_on_connect, true, "CATALOG_PULL_ON_CONNECT");
ABSL_FLAG(int, bus_capacity, 10000, "records the in-memory bus holds before it is saturated");
ABSL_FLAG(int, max_seconds, 600, "exit after this long at most");

namespace {

// Accepts feed connections and produces each line into the command topic.
class CommandFeed {
 public:
  CommandFeed(edge::testing::FakeMessageBus* bus, std::string topic)
      : bus_(bus), topic_(std::move(topic)) {}
  ~CommandFeed() {
    if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
    if (acceptor_.joinable()) acceptor_.join();
    {
      absl::MutexLock lock(&mu_);
      for (int fd : connections_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& reader : readers_) reader.join();
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  // Listens on 127.0.0.1:`port`; returns the bound port, or -1.
  int Start(int port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        listen(listen_fd_, 16) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      return -1;
    }
    acceptor_ = std::thread([this] { Accept(); });
    return ntohs(sa.sin_port);
  }

 private:
  void Accept() {
    while (true) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR) continue;
        return;
      }
      absl::MutexLock lock(&mu_);
      connections_.push_back(fd);
      readers_.emplace_back([this, fd] { Read(fd); });
    }
  }

  void Read(int fd) {
    std::string buffer;
    char chunk[64 * 1024];
    while (true) {
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      size_t begin = 0;
      for (size_t end; (end = buffer.find('\n', begin)) != std::string::npos; begin = end + 1) {
        const size_t tab = buffer.find(edge::loadgen::kFeedSeparator, begin);
        if (tab == std::string::npos || tab > end) continue;
        // Fails only for a negative partition; this is partition 0.
        (void)bus_->Produce(topic_, buffer.substr(begin, tab - begin),
                            buffer.substr(tab + 1, end - tab - 1));
      }
      buffer.erase(0, begin);
    }
    close(fd);
  }

  edge::testing::FakeMessageBus* const bus_;
  const std::string topic_;
  int listen_fd_ = -1;
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<int> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> readers_;
};

int Main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<int64_t> limit = edge::DescriptorBudget::RaiseLimit();
  if (!limit.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", limit.status().ToString().c_str());
    return 1;
  }
  // Descriptors kept free, as edged keeps them.
  edge::DescriptorBudget descriptors(*limit, edge::DescriptorBudget::kDefaultHeadroom);
  std::unique_ptr<edge::Clock> clock = edge::NewRealClock();
  edge::Logger logger(edge::LogLevel::kWarn);

  const std::string edge_id = absl::GetFlag(FLAGS_edge_id);
  edge::EdgeOptions options;
  options.edge_id = edge_id;
  options.topics.commands = absl::StrCat("edge-commands-", edge_id);
  options.topics.deadletter = absl::StrCat("edge-commands-", edge_id, ".deadletter");
  options.max_peers = absl::GetFlag(FLAGS_max_peers);
  options.peer_send_queue_max = absl::GetFlag(FLAGS_peer_send_queue_max);
  options.peer_max_messages_per_sec = absl::GetFlag(FLAGS_peer_max_messages_per_sec);
  options.catalog_pull_on_connect = absl::GetFlag(FLAGS_catalog_pull_on_connect);
  options.has_descriptor_headroom = [&descriptors] { return descriptors.HasHeadroom(); };

  edge::testing::FakeMessageBusOptions bus_options;
  bus_options.capacity = static_cast<size_t>(absl::GetFlag(FLAGS_bus_capacity));
  edge::testing::FakeMessageBus bus(bus_options);
  if (absl::Status created = bus.log()->CreateTopic(options.topics.commands, 1); !created.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", created.ToString().c_str());
    return 1;
  }
  edge::LocalTracker tracker(edge_id);
  edge::grpc_transport::GrpcPeerTransportOptions grpc;
  grpc.address = absl::StrCat(absl::GetFlag(FLAGS_address), ":", absl::GetFlag(FLAGS_port));
  grpc.clock = clock.get();
  grpc.logger = &logger;
  auto transport = edge::grpc_transport::GrpcPeerTransport::Create(grpc);
  if (!transport.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  auto edge = edge::Edge::Create(options, {transport->get(), &bus, &tracker, clock.get(), &logger});
  if (!edge.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", edge.status().ToString().c_str());
    return 1;
  }
  if (absl::Status started = (*edge)->Start(); !started.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", started.ToString().c_str());
    return 1;
  }
  CommandFeed feed(&bus, options.topics.commands);
  const int feed_port = feed.Start(absl::GetFlag(FLAGS_feed_port));
  if (feed_port < 0) {
    std::fprintf(stderr, "edge_bench_edge: cannot listen for the command feed\n");
    (*edge)->Shutdown(clock->Now() + absl::Seconds(5));
    return 1;
  }
  std::printf("edge_bench_edge listening port=%d feed=%d pid=%d\n", (*transport)->port(), feed_port,
              static_cast<int>(getpid()));
  std::fflush(stdout);

  struct timespec timeout = {absl::GetFlag(FLAGS_max_seconds), 0};
  sigtimedwait(&signals, nullptr, &timeout);
  (*edge)->Shutdown(clock->Now() + absl::Seconds(15));
  edge::EdgeStats s = (*edge)->stats();
  std::printf(
      "edge_bench_edge stats admitted=%lld rejected=%lld messages_in=%lld "
      "events_published=%lld commands_delivered=%lld "
      "commands_deadlettered=%lld "
      "keepalives=%lld\n",
      static_cast<long long>(s.admitted), static_cast<long long>(s.rejected),
      static_cast<long long>(s.messages_in), static_cast<long long>(s.events_published),
      static_cast<long long>(s.commands_delivered), static_cast<long long>(s.commands_deadlettered),
      static_cast<long long>(s.keepalives));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
