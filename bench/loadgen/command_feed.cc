#include "command_feed.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "command_sink.h"

namespace edge::loadgen {

void CommandFeed::Stop() {
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> readers;
  std::vector<int> connections;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : connections_) shutdown(fd, SHUT_RDWR);
    readers = std::move(readers_);
    connections = std::move(connections_);
  }
  for (auto& reader : readers) reader.join();
  for (int fd : connections) close(fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  listen_fd_ = -1;
}

int CommandFeed::Start(int port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return -1;
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

void CommandFeed::Accept() {
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

void CommandFeed::Read(int fd) {
  std::string buffer;
  char chunk[64 * 1024];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    const absl::string_view data(buffer);
    size_t begin = 0;
    for (size_t end; (end = data.find('\n', begin)) != absl::string_view::npos; begin = end + 1) {
      const absl::string_view line = data.substr(begin, end - begin);
      const size_t tab = line.find(kFeedSeparator);
      if (tab == absl::string_view::npos) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      on_command_(line.substr(0, tab), line.substr(tab + 1));
    }
    buffer.erase(0, begin);
  }
  // The descriptor stays listed (and open) until Stop: closing it here could
  // let accept4 reuse the number while Stop shuts the stale entry down.
}

}  // namespace edge::loadgen
