// DescriptorReserve on real loopback sockets, and GrpcPeerTransport's
// descriptor_reserve against real connections.
#include "grpc/descriptor_reserve.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "contract/peer_transport/recording_handler.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "grpc/listener_probe.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge::grpc_transport::internal {
namespace {

using ::testing::HasSubstr;

// A non-blocking listening socket on 127.0.0.1 (port 0), as gRPC makes one:
// `on_socket` sees it before it is bound.
class Listener {
 public:
  template <typename OnSocket>
  explicit Listener(OnSocket on_socket) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    on_socket(fd_);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { close(fd_); }
  int fd() const { return fd_; }
  int port() const { return port_; }

  // A client connection, complete once connect returns (loopback).
  int Connect() const {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << std::strerror(errno);
    return fd;
  }
  // The next connection of the backlog; -1 when there is none.
  int Accept() const { return accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Whether the server closed `client`'s connection (EOF or reset) within
// `timeout`; false while it stays open.
bool ClosedByServer(int client, absl::Duration timeout = absl::Seconds(10)) {
  pollfd p{client, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return false;
  char byte;
  const ssize_t n = recv(client, &byte, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

// Whether the server closed every one of `clients` within `timeout` in all.
bool AllClosedByServer(const std::vector<int>& clients,
                       absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  for (int client : clients) {
    if (!ClosedByServer(client, std::max(deadline - absl::Now(), absl::ZeroDuration()))) {
      return false;
    }
  }
  return true;
}

// Log lines written to a temporary file.
class CapturedLog {
 public:
  CapturedLog()
      : file_(std::tmpfile()), logger_(LogLevel::kInfo, LogFormat::kText, fileno(file_)) {}
  ~CapturedLog() { std::fclose(file_); }
  Logger* logger() { return &logger_; }
  std::vector<std::string> Lines() {
    std::string text;
    std::rewind(file_);
    char buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof(buffer), file_)) > 0) text.append(buffer, n);
    std::fseek(file_, 0, SEEK_END);
    return absl::StrSplit(text, '\n', absl::SkipEmpty());
  }

 private:
  std::FILE* file_;
  Logger logger_;
};

TEST(DescriptorReserveTest, AdmitsBelowTheReserveAndRefusesWithinIt) {
  testing::FakeClock clock;
  CapturedLog log;
  constexpr int64_t kReserve = 8;
  std::vector<int64_t> reported;
  // Whether a reserve refuses depends on the limit it is given, set once
  // the accepted descriptor's number (which stands for how many are open)
  // is known.
  std::unique_ptr<DescriptorReserve> below;
  std::unique_ptr<DescriptorReserve> within;
  Listener listener([](int) {});
  std::vector<int> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(listener.Connect());
  const int accepted = listener.Accept();
  ASSERT_GE(accepted, 0);

  below = std::make_unique<DescriptorReserve>(
      DescriptorReserveOptions{accepted + kReserve + 1, kReserve, &clock, log.logger(),
                               [&](int64_t n) { reported.push_back(n); }});
  below->OnListenerSocket(listener.fd());
  EXPECT_FALSE(below->OnAcceptedSocket(accepted));
  EXPECT_FALSE(ClosedByServer(clients[0], absl::Milliseconds(100)));
  EXPECT_EQ(below->refused(), 0);
  EXPECT_TRUE(reported.empty());
  EXPECT_TRUE(log.Lines().empty());

  within = std::make_unique<DescriptorReserve>(
      DescriptorReserveOptions{accepted + kReserve, kReserve, &clock, log.logger(),
                               [&](int64_t n) { reported.push_back(n); }});
  within->OnListenerSocket(listener.fd());
  EXPECT_TRUE(within->OnAcceptedSocket(accepted));
  // The refused connection and the four waiting behind it are closed at
  // once; nothing is left in the backlog for the accept loop.
  EXPECT_TRUE(AllClosedByServer(clients));
  EXPECT_EQ(listener.Accept(), -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(within->refused(), 5);
  EXPECT_THAT(reported, ::testing::ElementsAre(5));
  std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("refusing new gRPC connections"));
  EXPECT_THAT(lines[0], HasSubstr("refused=5"));
  EXPECT_THAT(lines[0], HasSubstr(absl::StrCat("limit=", accepted + kReserve)));
  close(accepted);
  for (int client : clients) close(client);
}

TEST(DescriptorReserveTest, DrainsOnlyTheListenerTheConnectionCameFrom) {
  testing::FakeClock clock;
  DescriptorReserve reserve({/*limit=*/1, /*reserve=*/0, &clock, nullptr, nullptr});
  Listener busy([&](int fd) { reserve.OnListenerSocket(fd); });
  Listener other([&](int fd) { reserve.OnListenerSocket(fd); });
  const int busy_client = busy.Connect();
  const int waiting = busy.Connect();
  const int other_client = other.Connect();
  const int accepted = busy.Accept();
  ASSERT_GE(accepted, 0);
  EXPECT_TRUE(reserve.OnAcceptedSocket(accepted));  // Every descriptor is >= 1.
  EXPECT_TRUE(ClosedByServer(busy_client));
  EXPECT_TRUE(ClosedByServer(waiting));
  EXPECT_EQ(reserve.refused(), 2);
  // The other listener's connection still waits to be accepted.
  const int other_accepted = other.Accept();
  EXPECT_GE(other_accepted, 0);
  EXPECT_FALSE(ClosedByServer(other_client, absl::Milliseconds(100)));
  for (int fd : {accepted, other_accepted, busy_client, waiting, other_client}) close(fd);
}

TEST(DescriptorReserveTest, WarnsAtMostOncePerIntervalWithTheCountSince) {
  testing::FakeClock clock;
  CapturedLog log;
  DescriptorReserve reserve(
      {/*limit=*/1, /*reserve=*/0, &clock, log.logger(), nullptr, absl::Seconds(10)});
  Listener listener([&](int fd) { reserve.OnListenerSocket(fd); });
  auto refuse_one = [&] {
    const int client = listener.Connect();
    const int accepted = listener.Accept();
    ASSERT_GE(accepted, 0);
    EXPECT_TRUE(reserve.OnAcceptedSocket(accepted));
    EXPECT_TRUE(ClosedByServer(client));
    close(accepted);
    close(client);
  };
  refuse_one();
  refuse_one();
  clock.Advance(absl::Seconds(9));
  refuse_one();
  ASSERT_EQ(log.Lines().size(), 1u);
  EXPECT_THAT(log.Lines()[0], HasSubstr("refused=1"));
  clock.Advance(absl::Seconds(1));
  refuse_one();
  std::vector<std::string> lines = log.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[1], HasSubstr("refused=3"));
  EXPECT_EQ(reserve.refused(), 4);
}

// --- GrpcPeerTransport::descriptor_reserve ---

class TransportReserveTest : public ::testing::Test {
 protected:
  GrpcPeerTransportOptions Options() {
    GrpcPeerTransportOptions options;
    options.address = "127.0.0.1:0";
    options.clock = &clock_;
    options.shutdown_grace = absl::Milliseconds(500);
    // Connections that sent nothing would be closed only after this.
    options.handshake_timeout = absl::Seconds(120);
    return options;
  }

  testing::FakeClock clock_;
  edge::testing::RecordingHandler handler_;
};

// A TCP client of 127.0.0.1:`port`, connected without waiting (a flood
// opens them all before the server gets to any).
int ConnectNonBlocking(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  return fd;
}

TEST_F(TransportReserveTest, ConnectionsWithinTheReserveAreClosedAndTheListenerKeepsAccepting) {
  auto limit = DescriptorReserve::CurrentLimit();
  ASSERT_TRUE(limit.ok()) << limit.status();
  std::atomic<int64_t> reported{0};
  GrpcPeerTransportOptions options = Options();
  // Every descriptor but 0 is within the reserve: every connection is refused.
  options.descriptor_reserve = static_cast<int>(*limit - 1);
  options.on_connections_refused = [&](int64_t n) { reported += n; };
  auto transport = GrpcPeerTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ASSERT_TRUE((*transport)->Start(&handler_).ok());
  const int port = (*transport)->port();

  // One at a time, then a burst: each is closed at once, and the listener
  // is still there for the next (a mutator answering false would have
  // stopped it after the first).
  for (int i = 0; i < 5; ++i) {
    const int client = ConnectNonBlocking(port);
    EXPECT_TRUE(ClosedByServer(client)) << i;
    close(client);
  }
  std::vector<int> burst;
  for (int i = 0; i < 50; ++i) burst.push_back(ConnectNonBlocking(port));
  EXPECT_TRUE(AllClosedByServer(burst));
  for (int client : burst) close(client);
  EXPECT_TRUE(edge::testing::WaitFor([&] { return reported.load() == 55; })) << reported.load();
  // The listener probe counts a refusal as an answer: the listener works.
  for (int i = 0; i < 20; ++i) {
    absl::Status probed =
        ListenerProbe::ProbeOnce({"127.0.0.1", port, false, absl::Seconds(1), absl::Seconds(5), 2});
    EXPECT_TRUE(probed.ok()) << probed;
  }
  EXPECT_EQ(handler_.stream_count(), 0u);
  (*transport)->Shutdown();
}

TEST_F(TransportReserveTest, WithoutAReserveIdleConnectionsAreKept) {
  GrpcPeerTransportOptions options = Options();
  std::atomic<int64_t> reported{0};
  options.on_connections_refused = [&](int64_t n) { reported += n; };
  auto transport = GrpcPeerTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  ASSERT_TRUE((*transport)->Start(&handler_).ok());
  const int client = ConnectNonBlocking((*transport)->port());
  // gRPC acts on the connection (its SETTINGS frame) and keeps it open.
  pollfd p{client, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  char buffer[64];
  EXPECT_GT(recv(client, buffer, sizeof(buffer), MSG_DONTWAIT), 0);
  EXPECT_EQ(reported.load(), 0);
  close(client);
  (*transport)->Shutdown();
}

TEST_F(TransportReserveTest, AReserveNotBelowTheLimitIsRefused) {
  auto limit = DescriptorReserve::CurrentLimit();
  ASSERT_TRUE(limit.ok()) << limit.status();
  GrpcPeerTransportOptions options = Options();
  options.descriptor_reserve = -1;
  auto bad = GrpcPeerTransport::Create(options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("descriptor_reserve"));

  options.descriptor_reserve = static_cast<int>(*limit);
  auto transport = GrpcPeerTransport::Create(options);
  ASSERT_TRUE(transport.ok()) << transport.status();
  absl::Status started = (*transport)->Start(&handler_);
  EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument) << started;
  EXPECT_THAT(std::string(started.message()), HasSubstr("RLIMIT_NOFILE"));
  EXPECT_EQ((*transport)->port(), 0);
}

}  // namespace
}  // namespace edge::grpc_transport::internal
