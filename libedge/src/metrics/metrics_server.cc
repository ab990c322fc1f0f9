#include "edge/metrics_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/call_once.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "civetweb.h"
#include "prometheus/collectable.h"
#include "prometheus/text_serializer.h"

namespace edge {
namespace {

constexpr char kTextFormat[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kPlain[] = "text/plain; charset=utf-8";

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

// Writes a whole response; the connection closes after it.
int Reply(mg_connection* conn, bool head, int code, absl::string_view content_type,
          absl::string_view body, absl::string_view allow = "") {
  std::string header =
      absl::StrCat("HTTP/1.1 ", code, " ", ReasonPhrase(code), "\r\nContent-Type: ",
                   content_type, "\r\nContent-Length: ", body.size(),
                   "\r\nCache-Control: no-store\r\nConnection: close\r\n");
  if (!allow.empty()) absl::StrAppend(&header, "Allow: ", allow, "\r\n");
  header += "\r\n";
  mg_write(conn, header.data(), header.size());
  if (!head && !body.empty()) mg_write(conn, body.data(), body.size());
  return code;
}

// Splits "host:port" / "[v6]:port"; the host keeps no brackets.
absl::Status SplitHostPort(absl::string_view address, std::string* host, int* port) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" has no port (expected host:port)"));
  }
  absl::string_view h = address.substr(0, colon);
  absl::string_view p = address.substr(colon + 1);
  if (absl::ConsumePrefix(&h, "[")) {
    if (!absl::ConsumeSuffix(&h, "]") || h.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address \"", address, "\" has a malformed IPv6 host"));
    }
  } else if (h.find(':') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", address, "\": an IPv6 host must be in brackets ([::1]:9464)"));
  }
  int value = -1;
  if (p.empty() || !std::all_of(p.begin(), p.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(p, &value) || value < 0 || value > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" has an invalid port (0-65535)"));
  }
  *host = h.empty() ? "0.0.0.0" : std::string(h);
  *port = value;
  return absl::OkStatus();
}

// Opens and closes a connection to `address`:`port`, so that civetweb's
// accept loop wakes up (it notices a stop only between polls, every 2 s).
void Poke(const sockaddr_storage& address, int port) {
  sockaddr_storage target = address;
  socklen_t length;
  if (target.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&target)->sin_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else {
    reinterpret_cast<sockaddr_in6*>(&target)->sin6_port = htons(static_cast<uint16_t>(port));
    length = sizeof(sockaddr_in6);
  }
  int fd = socket(target.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  connect(fd, reinterpret_cast<sockaddr*>(&target), length);
  close(fd);
}

// The address to poke a server listening on `bound`: loopback for a
// wildcard.
sockaddr_storage WakeAddress(const addrinfo& bound) {
  sockaddr_storage address{};
  std::memcpy(&address, bound.ai_addr, bound.ai_addrlen);
  if (address.ss_family == AF_INET) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    if (v4->sin_addr.s_addr == htonl(INADDR_ANY)) v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) v6->sin6_addr = in6addr_loopback;
  }
  return address;
}

// civetweb's listening_ports entry for `host`:`port`, the host resolved to
// an IP literal; `wake` is where to poke the server (see Poke).
absl::StatusOr<std::string> ListeningPort(const std::string& host, int port,
                                          sockaddr_storage* wake) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address host \"", host,
                                                   "\" does not resolve: ", gai_strerror(rc)));
  }
  char ip[INET6_ADDRSTRLEN] = {};
  std::string entry;
  if (found->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr, ip, sizeof(ip));
    entry = absl::StrCat(ip, ":", port);
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(found->ai_addr)->sin6_addr, ip,
              sizeof(ip));
    entry = absl::StrCat("[", ip, "]:", port);
  }
  int family = found->ai_family;
  *wake = WakeAddress(*found);
  freeaddrinfo(found);
  if (family == AF_INET6 && mg_check_feature(MG_FEATURES_IPV6) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address host \"", host, "\" is IPv6, which this HTTP library lacks"));
  }
  return entry;
}

}  // namespace

MetricsServer::MetricsServer(MetricsServerOptions options, std::string host, int port)
    : options_(std::move(options)),
      host_(std::move(host)),
      requested_port_(port),
      logger_(options_.logger != nullptr ? options_.logger : &Logger::Null()) {}

MetricsServer::~MetricsServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(
    MetricsServerOptions options) {
  std::string host;
  int port = 0;
  if (absl::Status split = SplitHostPort(options.address, &host, &port); !split.ok()) {
    return split;
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(options), host, port));
}

absl::Status MetricsServer::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("metrics server already started");
    started_ = true;
    start_error_.clear();
  }
  sockaddr_storage wake;
  absl::StatusOr<std::string> listening = ListeningPort(host_, requested_port_, &wake);
  if (!listening.ok()) return listening.status();

  static absl::once_flag init_once;
  absl::call_once(init_once, [] { mg_init_library(0); });

  mg_callbacks callbacks{};
  callbacks.log_message = &MetricsServer::LogMessage;
  const char* civet_options[] = {"listening_ports", listening->c_str(),
                                 "num_threads", "4",
                                 "request_timeout_ms", "10000",
                                 "enable_keep_alive", "no",
                                 nullptr};
  // No lock held: civetweb reports start errors through LogMessage, on this
  // thread.
  mg_context* context = mg_start(&callbacks, this, civet_options);
  if (context == nullptr) {
    absl::MutexLock lock(&mu_);
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for metrics on ", options_.address, ": ",
        start_error_.empty() ? "the HTTP server did not start" : start_error_));
  }
  mg_set_request_handler(context, "/", &MetricsServer::Handle, this);
  int port = 0;
  std::vector<mg_server_port> ports(4);
  int n = mg_get_server_ports(context, static_cast<int>(ports.size()), ports.data());
  if (n > 0) port = ports[0].port;
  absl::MutexLock lock(&mu_);
  context_ = context;
  port_ = port;
  wake_ = wake;
  return absl::OkStatus();
}

void MetricsServer::Shutdown() {
  mg_context* context;
  int port;
  sockaddr_storage wake;
  {
    absl::MutexLock lock(&mu_);
    context = context_;
    context_ = nullptr;
    port = port_;
    port_ = 0;
    wake = wake_;
  }
  if (context == nullptr) return;
  // mg_stop joins civetweb's threads, so no handler runs after it; its
  // accept loop only sees the stop when woken, hence the pokes meanwhile.
  absl::Mutex stop_mu;
  bool stopped = false;
  std::thread waker([&] {
    absl::MutexLock lock(&stop_mu);
    while (!stop_mu.AwaitWithTimeout(absl::Condition(&stopped), absl::Milliseconds(20))) {
      Poke(wake, port);
    }
  });
  mg_stop(context);
  {
    absl::MutexLock lock(&stop_mu);
    stopped = true;
  }
  waker.join();
}

int MetricsServer::port() const {
  absl::MutexLock lock(&mu_);
  return port_;
}

int MetricsServer::LogMessage(const mg_connection* conn, const char* message) {
  const mg_context* context = conn != nullptr ? mg_get_context(conn) : nullptr;
  auto* self = context != nullptr ? static_cast<MetricsServer*>(mg_get_user_data(context))
                                  : nullptr;
  if (self == nullptr) return 0;  // Let civetweb print it.
  absl::string_view text = absl::StripAsciiWhitespace(message);
  bool running;
  {
    absl::MutexLock lock(&self->mu_);
    running = self->context_ != nullptr;
    if (!running) {
      if (!self->start_error_.empty()) self->start_error_ += "; ";
      self->start_error_.append(text.data(), text.size());
    }
  }
  if (running) self->logger_->Warn("metrics HTTP server", {{"error", text}});
  return 1;
}

int MetricsServer::Handle(mg_connection* conn, void* self) {
  return static_cast<MetricsServer*>(self)->Serve(conn);
}

int MetricsServer::Serve(mg_connection* conn) {
  const mg_request_info* request = mg_get_request_info(conn);
  absl::string_view method = request->request_method != nullptr ? request->request_method : "";
  absl::string_view path = request->local_uri != nullptr ? request->local_uri : "";
  bool head = method == "HEAD";
  bool get = method == "GET" || head;

  if (path == "/metrics" || path == "/healthz" || path == "/readyz") {
    if (!get) return Reply(conn, head, 405, kPlain, "method not allowed\n", "GET, HEAD");
    if (path == "/healthz") {
      absl::Status healthy = options_.healthy ? options_.healthy() : absl::OkStatus();
      if (healthy.ok()) return Reply(conn, head, 200, kPlain, "ok\n");
      return Reply(conn, head, 503, kPlain, absl::StrCat(healthy.message(), "\n"));
    }
    if (path == "/readyz") {
      absl::Status ready = options_.ready ? options_.ready() : absl::OkStatus();
      if (ready.ok()) return Reply(conn, head, 200, kPlain, "ready\n");
      return Reply(conn, head, 503, kPlain, absl::StrCat("not ready: ", ready.message(), "\n"));
    }
    std::string body;
    if (options_.metrics != nullptr) {
      body = prometheus::TextSerializer().Serialize(options_.metrics->Collect());
    }
    return Reply(conn, head, 200, kTextFormat, body);
  }
  if (path == "/drain") {
    if (method != "POST") return Reply(conn, head, 405, kPlain, "method not allowed\n", "POST");
    if (!options_.drain) return Reply(conn, false, 501, kPlain, "drain is not available\n");
    logger_->Info("drain requested over HTTP");
    options_.drain();
    return Reply(conn, false, 202, kPlain, "draining\n");
  }
  return Reply(conn, head, 404, kPlain, "not found\n");
}

}  // namespace edge
