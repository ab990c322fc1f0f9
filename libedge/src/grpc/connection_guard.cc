#include "connection_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace edge::grpc_transport::internal {

ConnectionGuard::Verdict ConnectionGuard::Admit(uint64_t call_id, absl::string_view peer,
                                                bool stream) {
  const absl::Time now = clock_->Now();
  Verdict verdict;
  absl::MutexLock lock(&mu_);
  if (now - last_prune_ >= absl::Seconds(1)) PruneLocked(now);
  auto [it, inserted] = connections_.try_emplace(peer);
  Connection& c = it->second;
  const double rate = limits_.call_starts_per_sec;
  const double burst = std::max(1.0, limits_.call_start_burst);
  if (inserted) {
    c.tokens = burst;
    c.refilled = now;
  }
  if (rate > 0) {
    c.tokens = std::min(burst, c.tokens + rate * absl::ToDoubleSeconds(now - c.refilled));
    c.refilled = now;
    if (c.tokens < 1) {
      verdict.status = absl::ResourceExhaustedError(
          absl::StrCat("this connection starts calls faster than ", rate, " per second (burst ",
                       burst, "); the edge closes it"));
      verdict.close_connection = !c.closing;
      c.closing = true;
      verdict.first_refusal = !c.refused;
      c.refused = true;
      return verdict;
    }
    c.tokens -= 1;
  }
  if (stream && limits_.max_streams > 0 && c.streams >= limits_.max_streams) {
    verdict.status = absl::ResourceExhaustedError(
        absl::StrCat("this connection already holds ", c.streams,
                     " AsyncOperations stream(s), the most one connection may open at once"));
    verdict.first_refusal = !c.refused;
    c.refused = true;
    return verdict;
  }
  ++c.calls;
  if (stream) ++c.streams;
  calls_.emplace(call_id, Call{&*it, stream});
  return verdict;
}

void ConnectionGuard::Release(uint64_t call_id) {
  absl::MutexLock lock(&mu_);
  auto call = calls_.find(call_id);
  if (call == calls_.end()) return;
  ConnectionEntry& entry = *call->second.connection;
  --entry.second.calls;
  if (call->second.stream) --entry.second.streams;
  calls_.erase(call);
  // Without a start rate nothing needs remembering once the last call ended.
  if (entry.second.calls == 0 && limits_.call_starts_per_sec <= 0) {
    connections_.erase(entry.first);
  }
}

size_t ConnectionGuard::connections() const {
  absl::MutexLock lock(&mu_);
  return connections_.size();
}

void ConnectionGuard::PruneLocked(absl::Time now) {
  last_prune_ = now;
  const double rate = limits_.call_starts_per_sec;
  const double burst = std::max(1.0, limits_.call_start_burst);
  // An entry with no call open whose bucket has refilled holds nothing a new
  // entry would not: dropping it forgets nothing.
  absl::erase_if(connections_, [&](const auto& entry) {
    const Connection& c = entry.second;
    if (c.calls > 0) return false;
    return rate <= 0 || c.tokens + rate * absl::ToDoubleSeconds(now - c.refilled) >= burst;
  });
}

namespace {

// The remote address of a socket in the forms gRPC's peer strings use after
// the scheme: "10.0.0.7:51234" and "[::1]:51234"; a v4-mapped IPv6 address
// in both forms.
std::vector<std::string> PeerForms(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {};
  std::vector<std::string> forms;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    forms.push_back(absl::StrCat(host, ":", ntohs(in->sin_port)));
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    const int port = ntohs(in6->sin6_port);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    forms.push_back(absl::StrCat("[", host, "]:", port));
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
      forms.push_back(absl::StrCat(host, ":", port));
    }
  }
  return forms;
}

int LocalPort(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  }
  if (addr.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  return -1;
}

}  // namespace

absl::Status CloseTcpConnection(int local_port, absl::string_view peer) {
  const size_t colon = peer.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("not a TCP peer: ", peer));
  }
  const absl::string_view scheme = peer.substr(0, colon);
  if (scheme != "ipv4" && scheme != "ipv6") {
    return absl::InvalidArgumentError(absl::StrCat("not a TCP peer: ", peer));
  }
  // gRPC percent-encodes the brackets of an IPv6 address.
  const std::string want = absl::StrReplaceAll(
      peer.substr(colon + 1), {{"%5B", "["}, {"%5D", "]"}, {"%5b", "["}, {"%5d", "]"}});
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot list /proc/self/fd: ", std::strerror(errno)));
  }
  const int own = dirfd(dir);
  bool found = false;
  while (dirent* entry = readdir(dir)) {
    int fd;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == own) continue;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof(local);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 ||
        LocalPort(local) != local_port) {
      continue;
    }
    sockaddr_storage remote{};
    len = sizeof(remote);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &len) != 0) continue;
    for (const std::string& form : PeerForms(remote)) {
      if (form == want) {
        shutdown(fd, SHUT_RDWR);
        found = true;
        break;
      }
    }
    if (found) break;
  }
  closedir(dir);
  if (!found) return absl::NotFoundError(absl::StrCat("no open connection from ", peer));
  return absl::OkStatus();
}

}  // namespace edge::grpc_transport::internal
