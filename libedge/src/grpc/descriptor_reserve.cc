#include "descriptor_reserve.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "socket_mutator_abi.h"

namespace edge::grpc_transport::internal {
namespace {

// At most this many backlog connections are reset per refusal, so that a
// flood that never pauses cannot hold a poller thread here for good; gRPC's
// accept loop calls again for the next one.
constexpr int kMaxDrainedPerCall = 4096;

// A close that resets the connection (RST) rather than keeping it in the
// kernel for an orderly shutdown.
void SetResetOnClose(int fd) {
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

uint16_t PortOf(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) return reinterpret_cast<const sockaddr_in&>(addr).sin_port;
  if (addr.ss_family == AF_INET6) return reinterpret_cast<const sockaddr_in6&>(addr).sin6_port;
  return 0;
}

bool IsWildcard(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(addr).sin_addr.s_addr == htonl(INADDR_ANY);
  }
  if (addr.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6&>(addr).sin6_addr;
    return IN6_IS_ADDR_UNSPECIFIED(&a);
  }
  return false;
}

bool SameHost(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(b).sin_addr.s_addr;
  }
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                     &reinterpret_cast<const sockaddr_in6&>(b).sin6_addr, sizeof(in6_addr)) == 0;
}

// Whether `listener` is a listening, non-blocking socket that accepted
// connections to `local` (the local address of one of them).
bool ListensFor(int listener, const sockaddr_storage& local) {
  int accepting = 0;
  socklen_t len = sizeof(accepting);
  if (getsockopt(listener, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 || !accepting) {
    return false;
  }
  const int flags = fcntl(listener, F_GETFL);
  if (flags < 0 || (flags & O_NONBLOCK) == 0) return false;  // Draining would block.
  sockaddr_storage bound{};
  len = sizeof(bound);
  if (getsockname(listener, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return false;
  if (bound.ss_family != local.ss_family || PortOf(bound) != PortOf(local)) return false;
  return IsWildcard(bound) || SameHost(bound, local);
}

// The socket mutator gRPC holds: a reference to the reserve.
struct ReserveMutator : grpc_socket_mutator {
  std::shared_ptr<DescriptorReserve> reserve;
};

bool MutateFd(int, grpc_socket_mutator*) { return true; }

bool MutateFd2(const grpc_mutate_socket_info* info, grpc_socket_mutator* mutator) {
  DescriptorReserve& reserve = *static_cast<ReserveMutator*>(mutator)->reserve;
  switch (info->usage) {
    case GRPC_FD_SERVER_LISTENER_USAGE:
      reserve.OnListenerSocket(info->fd);
      break;
    case GRPC_FD_SERVER_CONNECTION_USAGE:
      reserve.OnAcceptedSocket(info->fd);
      break;
    default:
      break;
  }
  // Never false: see descriptor_reserve.h.
  return true;
}

int CompareMutators(grpc_socket_mutator* a, grpc_socket_mutator* b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

void DestroyMutator(grpc_socket_mutator* mutator) { delete static_cast<ReserveMutator*>(mutator); }

const grpc_socket_mutator_vtable kReserveMutatorVtable = {MutateFd, CompareMutators, DestroyMutator,
                                                          MutateFd2};

class ReserveOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReserveOption(std::shared_ptr<DescriptorReserve> reserve)
      : reserve_(std::move(reserve)) {}
  void UpdateArguments(grpc::ChannelArguments* args) override {
    auto* mutator = new ReserveMutator;
    mutator->vtable = &kReserveMutatorVtable;
    gpr_ref_init(&mutator->refcount, 1);
    mutator->reserve = reserve_;
    args->SetSocketMutator(mutator);  // Takes the reference.
  }
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>*) override {}

 private:
  const std::shared_ptr<DescriptorReserve> reserve_;
};

}  // namespace

DescriptorReserve::DescriptorReserve(DescriptorReserveOptions options)
    : options_(std::move(options)),
      logger_(options_.logger != nullptr ? options_.logger : &Logger::Null()) {}

absl::StatusOr<int64_t> DescriptorReserve::CurrentLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  if (limit.rlim_cur == RLIM_INFINITY ||
      limit.rlim_cur > static_cast<rlim_t>(std::numeric_limits<int>::max())) {
    return int64_t{std::numeric_limits<int>::max()};
  }
  return static_cast<int64_t>(limit.rlim_cur);
}

void DescriptorReserve::OnListenerSocket(int fd) {
  absl::MutexLock lock(&mu_);
  if (std::find(listeners_.begin(), listeners_.end(), fd) == listeners_.end()) {
    listeners_.push_back(fd);
  }
}

bool DescriptorReserve::OnAcceptedSocket(int fd) {
  if (fd < options_.limit - options_.reserve) return false;
  SetResetOnClose(fd);
  // gRPC reads EOF and closes it; its descriptor is in use until then.
  shutdown(fd, SHUT_RDWR);
  const int64_t refused = 1 + DrainBacklogOf(fd);
  refused_.fetch_add(refused, std::memory_order_relaxed);
  if (options_.on_refused) options_.on_refused(refused);

  int64_t to_log = 0;
  {
    absl::MutexLock lock(&mu_);
    unlogged_ += refused;
    const absl::Time now = options_.clock->Now();
    if (now - last_log_ >= options_.log_every) {
      last_log_ = now;
      to_log = std::exchange(unlogged_, 0);
    }
  }
  if (to_log > 0) {
    logger_->Warn(
        "refusing new gRPC connections: the process is within its descriptor reserve of the "
        "limit",
        {{"descriptor", absl::StrCat(fd)},
         {"limit", absl::StrCat(options_.limit)},
         {"reserve", absl::StrCat(options_.reserve)},
         {"refused", absl::StrCat(to_log)}});
  }
  return true;
}

int64_t DescriptorReserve::DrainBacklogOf(int accepted) {
  sockaddr_storage local{};
  socklen_t len = sizeof(local);
  if (getsockname(accepted, reinterpret_cast<sockaddr*>(&local), &len) != 0) return 0;
  std::vector<int> listeners;
  {
    absl::MutexLock lock(&mu_);
    listeners = listeners_;
  }
  int64_t drained = 0;
  for (int listener : listeners) {
    // The listener gRPC is accepting from is open: gRPC closes a listener
    // only after its accept loop has returned.
    if (!ListensFor(listener, local)) continue;
    while (drained < kMaxDrainedPerCall) {
      const int fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        break;  // EAGAIN: the backlog is empty; EMFILE: nothing left to drain with.
      }
      SetResetOnClose(fd);
      close(fd);
      ++drained;
    }
  }
  return drained;
}

std::unique_ptr<grpc::ServerBuilderOption> DescriptorReserveOption(
    std::shared_ptr<DescriptorReserve> reserve) {
  return std::make_unique<ReserveOption>(std::move(reserve));
}

}  // namespace edge::grpc_transport::internal
