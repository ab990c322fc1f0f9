#include "listener_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::grpc_transport::internal {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Waits for `events` on `fd` until `deadline`; false on timeout.
bool WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(ms));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // Let the next call report the error.
  }
}

// A TLS ClientHello offering h2, as a gRPC client would send it.
std::string ClientHello() {
  std::string hello;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return hello;
  SSL* ssl = SSL_new(ctx);
  if (ssl != nullptr) {
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, in, out);  // The SSL owns both from here.
    static const unsigned char kAlpn[] = {2, 'h', '2'};
    SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn));
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl);  // Wants to read the answer: the hello is in `out`.
    char* data = nullptr;
    const long size = BIO_get_mem_data(out, &data);
    if (size > 0) hello.assign(data, static_cast<size_t>(size));
    SSL_free(ssl);
  }
  SSL_CTX_free(ctx);
  return hello;
}

}  // namespace

std::string ProbeHostFor(const std::string& listen_address) {
  std::string host = listen_address;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
    in6_addr v6;
    // gRPC listens dual-stack on [::], or on 0.0.0.0 where the host has no
    // IPv6: IPv4 loopback reaches it either way, ::1 not always.
    if (host == "::" || inet_pton(AF_INET6, host.c_str(), &v6) != 1) return "127.0.0.1";
    return host;
  }
  host = host.substr(0, host.rfind(':'));
  in_addr v4;
  if (host.empty() || host == "0.0.0.0" || inet_pton(AF_INET, host.c_str(), &v4) != 1) {
    return "127.0.0.1";
  }
  return host;
}

absl::Status ListenerProbe::ProbeOnce(const ListenerProbeOptions& o) {
  sockaddr_storage addr{};
  socklen_t addr_len;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, o.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(o.port));
    addr_len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, o.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(o.port));
    addr_len = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("listener probe: not an IP: ", o.host));
  }
  const std::string where = absl::StrCat(o.host, " port ", o.port);
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot open a socket to probe the gRPC listener");
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  const absl::Time deadline = absl::Now() + o.timeout;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    if (errno != EINPROGRESS) {
      return Errno(absl::StrCat("connecting to the gRPC listener at ", where));
    }
    if (!WaitFor(fd, POLLOUT, deadline)) {
      return absl::UnavailableError(absl::StrCat(
          "the gRPC listener at ", where, " did not complete a TCP connection within ",
          absl::FormatDuration(o.timeout), " (its backlog is full: it no longer accepts)"));
    }
    int error = 0;
    socklen_t error_len = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len);
    if (error != 0) {
      errno = error;
      return Errno(absl::StrCat("connecting to the gRPC listener at ", where));
    }
  }
  if (o.tls) {
    const std::string hello = ClientHello();
    if (hello.empty() ||
        send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size())) {
      return Errno("sending the listener probe's TLS ClientHello");
    }
  }
  if (!WaitFor(fd, POLLIN, deadline)) {
    return absl::UnavailableError(absl::StrCat(
        "the gRPC listener at ", where, " did not answer a new connection within ",
        absl::FormatDuration(o.timeout),
        " (it no longer accepts connections, e.g. after running out of file descriptors)"));
  }
  char byte;
  const ssize_t n = recv(fd, &byte, 1, 0);
  // Data, an orderly close or a reset: in each case the server accepted
  // the connection and acted on it.
  if (n >= 0 || errno == ECONNRESET) return absl::OkStatus();
  return Errno(absl::StrCat("reading from the gRPC listener at ", where));
}

ListenerProbe::ListenerProbe(ListenerProbeOptions options) : options_(std::move(options)) {}

ListenerProbe::~ListenerProbe() { Stop(); }

void ListenerProbe::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void ListenerProbe::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status ListenerProbe::status() const {
  absl::MutexLock lock(&mu_);
  if (failures_ < options_.failures_to_fail) return absl::OkStatus();
  return last_failure_;
}

void ListenerProbe::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.Unlock();
    absl::Status result = ProbeOnce(options_);
    mu_.Lock();
    if (result.ok()) {
      failures_ = 0;
    } else {
      ++failures_;
      last_failure_ = absl::UnavailableError(
          absl::StrCat(failures_, " listener probe(s) in a row failed; last: ", result.message()));
    }
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.interval);
  }
}

}  // namespace edge::grpc_transport::internal
