#include "etcd/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpProxy>> TcpProxy::Start(int target_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError(absl::StrCat("proxy listen failed: ", std::strerror(errno)));
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(fd);
    return absl::InternalError("eventfd failed");
  }
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(fd, ntohs(addr.sin_port), target_port, wake));
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  return proxy;
}

TcpProxy::TcpProxy(int listen_fd, int port, int target_port, int wake_fd)
    : listen_fd_(listen_fd), port_(port), target_port_(target_port), wake_fd_(wake_fd) {}

TcpProxy::~TcpProxy() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  Wake();
  thread_.join();
  close(listen_fd_);
  close(wake_fd_);
}

std::string TcpProxy::endpoint() const { return absl::StrCat("127.0.0.1:", port_); }

void TcpProxy::SetConnected(bool connected) {
  {
    absl::MutexLock lock(&mu_);
    connected_ = connected;
    if (!connected) ++generation_;
  }
  Wake();
}

void TcpProxy::SetReplyDelay(absl::Duration delay) {
  {
    absl::MutexLock lock(&mu_);
    reply_delay_ = delay;
  }
  Wake();
}

void TcpProxy::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void TcpProxy::Run() {
  struct Held {
    absl::Time due;
    std::string bytes;
  };
  struct Pair {
    int client;
    int server;
    std::deque<Held> replies;  // from the server, held back by the delay
  };
  std::vector<Pair> pairs;
  int seen_generation = 0;
  auto close_pair = [](Pair& pair) {
    close(pair.client);
    close(pair.server);
    pair.client = pair.server = -1;
    pair.replies.clear();
  };
  while (true) {
    bool connected;
    int generation;
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      connected = connected_;
      generation = generation_;
      delay = reply_delay_;
    }
    if (generation != seen_generation) {
      for (Pair& pair : pairs) close_pair(pair);
      pairs.clear();
      seen_generation = generation;
    }
    std::vector<pollfd> fds = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    for (const Pair& pair : pairs) {
      fds.push_back({pair.client, POLLIN, 0});
      fds.push_back({pair.server, POLLIN, 0});
    }
    // Held replies due now go out, in order; the poll wakes for the next.
    absl::Time next_due = absl::InfiniteFuture();
    for (Pair& pair : pairs) {
      while (pair.client >= 0 && !pair.replies.empty() && pair.replies.front().due <= absl::Now()) {
        const std::string& bytes = pair.replies.front().bytes;
        if (!WriteAll(pair.client, bytes.data(), bytes.size())) close_pair(pair);
        if (!pair.replies.empty()) pair.replies.pop_front();
      }
      if (!pair.replies.empty()) next_due = std::min(next_due, pair.replies.front().due);
    }
    int timeout_ms = -1;
    if (next_due != absl::InfiniteFuture()) {
      timeout_ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(next_due - absl::Now()) + 1));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) {
      uint64_t value;
      (void)!read(wake_fd_, &value, sizeof(value));
      continue;  // re-read the state first
    }
    for (size_t i = 0; i < pairs.size(); ++i) {
      for (int side = 0; side < 2; ++side) {
        const pollfd& polled = fds[2 + 2 * i + side];
        if (polled.revents == 0 || pairs[i].client < 0) continue;
        int from = side == 0 ? pairs[i].client : pairs[i].server;
        int to = side == 0 ? pairs[i].server : pairs[i].client;
        char buffer[65536];
        ssize_t n = recv(from, buffer, sizeof(buffer), 0);
        if (n > 0 && side == 1 && (delay > absl::ZeroDuration() || !pairs[i].replies.empty())) {
          // Behind what is already held, so the bytes keep their order.
          pairs[i].replies.push_back(
              {absl::Now() + delay, std::string(buffer, static_cast<size_t>(n))});
          continue;
        }
        if (n <= 0 || !WriteAll(to, buffer, static_cast<size_t>(n))) {
          close_pair(pairs[i]);
        }
      }
    }
    std::vector<Pair> open;
    for (Pair& pair : pairs) {
      if (pair.client >= 0) open.push_back(std::move(pair));
    }
    pairs.swap(open);
    if (fds[0].revents != 0) {
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      if (!connected) {
        close(client);
        continue;
      }
      int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr = Loopback(target_port_);
      if (server < 0 || connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        close(client);
        if (server >= 0) close(server);
        continue;
      }
      pairs.push_back({client, server, {}});
    }
  }
  for (Pair& pair : pairs) close_pair(pair);
}

}  // namespace edge::testing
