#include "edge/metrics/metrics_server.h"

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
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "civetweb.h"
#include "edge/host_port.h"
#include "prometheus/collectable.h"
#include "prometheus/text_serializer.h"

namespace edge::metrics {
namespace {

constexpr char kTextFormat[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kPlain[] = "text/plain; charset=utf-8";
constexpr char kJson[] = "application/json";

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// Writes a whole response; the connection closes after it.
int Reply(mg_connection* conn, bool head, int code, absl::string_view content_type,
          absl::string_view body, absl::string_view allow = "",
          absl::string_view extra_header = "") {
  std::string header = absl::StrCat(
      "HTTP/1.1 ", code, " ", ReasonPhrase(code), "\r\nContent-Type: ", content_type,
      "\r\nContent-Length: ", body.size(), "\r\nCache-Control: no-store\r\nConnection: close\r\n");
  if (!allow.empty()) absl::StrAppend(&header, "Allow: ", allow, "\r\n");
  if (!extra_header.empty()) absl::StrAppend(&header, extra_header, "\r\n");
  header += "\r\n";
  mg_write(conn, header.data(), header.size());
  if (!head && !body.empty()) mg_write(conn, body.data(), body.size());
  return code;
}

// A JSON string literal.
std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(&out, absl::StrFormat("\\u%04x", c));
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

std::string JsonTime(absl::Time t) {
  return JsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()));
}

std::string PeerJson(const AdminPeer& peer) {
  std::string json = absl::StrCat("{\"peer_id\":", JsonString(peer.peer_id),
                                  ",\"edge_id\":", JsonString(peer.edge_id));
  if (peer.connected_at) absl::StrAppend(&json, ",\"connected_at\":", JsonTime(*peer.connected_at));
  if (peer.last_activity) {
    absl::StrAppend(&json, ",\"last_activity\":", JsonTime(*peer.last_activity));
  }
  if (peer.epoch) absl::StrAppend(&json, ",\"epoch\":", *peer.epoch);
  if (!peer.connected_at) {
    absl::StrAppend(&json,
                    ",\"address\":", peer.address.empty() ? "null" : JsonString(peer.address));
  }
  json += "}";
  return json;
}

std::string ErrorJson(absl::string_view message) {
  return absl::StrCat("{\"error\":", JsonString(message), "}\n");
}

// The peer_id rules (contract §2): 1 to 128 bytes of [A-Za-z0-9._:@-].
bool IsPeerId(absl::string_view id) {
  return !id.empty() && id.size() <= 128 && std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
  });
}

// Compares without returning early, so that the time taken does not tell
// how much of a guessed token was right.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  unsigned char differ = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    differ |= static_cast<unsigned char>(a[i]) ^
              static_cast<unsigned char>(b.empty() ? 0 : b[i % b.size()]);
  }
  return differ == 0;
}

// Splits "host:port" / "[v6]:port" by the rule of every host:port setting;
// the host keeps no brackets.
absl::Status SplitHostPort(absl::string_view address, std::string* host, int* port) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(address, kListenPort);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", address, "\" ", parsed.status().message(), " (expected host:port)"));
  }
  *host = std::move(parsed->host);
  *port = parsed->port;
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
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address host \"", host, "\" does not resolve: ", gai_strerror(rc)));
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
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address host \"", host, "\" is IPv6, which this HTTP library lacks"));
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

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Create(MetricsServerOptions options) {
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

  // Many workers and a short request timeout: each connection holds a
  // worker, so a few idle or slow clients must not starve health probes.
  static const std::string kWorkers = absl::StrCat(kHttpWorkers);
  static const std::string kTimeout = absl::StrCat(kRequestTimeoutMs);
  mg_callbacks callbacks{};
  callbacks.log_message = &MetricsServer::LogMessage;
  const char* civet_options[] = {
      "listening_ports", listening->c_str(),  "num_threads", kWorkers.c_str(), "request_timeout_ms",
      kTimeout.c_str(),  "enable_keep_alive", "no",          nullptr};
  // No lock held: civetweb reports start errors through LogMessage, on this
  // thread.
  mg_context* context = mg_start(&callbacks, this, civet_options);
  if (context == nullptr) {
    absl::MutexLock lock(&mu_);
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", options_.address, ": ",
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
  auto* self =
      context != nullptr ? static_cast<MetricsServer*>(mg_get_user_data(context)) : nullptr;
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
      return Reply(conn, head, 503, kPlain, absl::StrCat("unhealthy: ", healthy.message(), "\n"));
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
  if (path == "/drain" || path == "/peers" || absl::StartsWith(path, "/peers/")) {
    return ServeAdmin(conn, method, path);
  }
  return Reply(conn, head, 404, kPlain, "not found\n");
}

int MetricsServer::ServeAdmin(mg_connection* conn, absl::string_view method,
                              absl::string_view path) {
  // Route first (an unknown path or method says nothing about the token).
  enum class Op { kDrain, kList, kFind, kKick } op;
  std::string peer_id;
  absl::string_view allow;
  if (path == "/drain") {
    op = Op::kDrain;
    allow = "POST";
  } else if (path == "/peers") {
    op = Op::kList;
    allow = "GET";
  } else {
    absl::string_view rest = path.substr(std::strlen("/peers/"));
    if (absl::ConsumeSuffix(&rest, "/disconnect")) {
      op = Op::kKick;
      allow = "POST";
    } else {
      op = Op::kFind;
      allow = "GET";
    }
    if (rest.empty() || absl::StrContains(rest, '/')) {
      return Reply(conn, false, 404, kJson, ErrorJson("not found"));
    }
    peer_id = std::string(rest);
  }
  if (method != allow) {
    return Reply(conn, false, 405, kJson, ErrorJson("method not allowed"), allow);
  }

  if (mg_get_header(conn, "Origin") != nullptr) {
    logger_->Warn("admin request with an Origin header refused", {{"path", path}});
    return Reply(conn, false, 403, kJson,
                 ErrorJson("admin requests from a browser (with an Origin header) are refused"));
  }
  if (options_.admin_token.empty()) {
    return Reply(conn, false, 403, kJson,
                 ErrorJson("the admin API is disabled: ADMIN_TOKEN_FILE is not set"));
  }
  const char* authorization = mg_get_header(conn, "Authorization");
  absl::string_view presented = authorization != nullptr ? authorization : "";
  if (!absl::ConsumePrefix(&presented, "Bearer ") ||
      !ConstantTimeEquals(presented, options_.admin_token)) {
    logger_->Warn("admin request with a wrong or missing token refused", {{"path", path}});
    return Reply(conn, false, 401, kJson, ErrorJson("a valid bearer token is required"), "",
                 "WWW-Authenticate: Bearer");
  }

  if ((op == Op::kFind || op == Op::kKick) && !IsPeerId(peer_id)) {
    return Reply(conn, false, 400, kJson,
                 ErrorJson("not a peer_id: 1 to 128 bytes of [A-Za-z0-9._:@-]"));
  }
  const auto not_available = [&] {
    return Reply(conn, false, 501, kJson, ErrorJson("not available on this server"));
  };
  const auto failed = [&](const absl::Status& status) {
    return Reply(conn, false, absl::IsNotFound(status) ? 404 : 503, kJson,
                 ErrorJson(status.message()));
  };
  switch (op) {
    case Op::kDrain:
      if (!options_.drain) return not_available();
      logger_->Info("drain requested over HTTP");
      options_.drain();
      return Reply(conn, false, 202, kJson, "{\"draining\":true}\n");
    case Op::kFind: {
      if (!options_.find_peer) return not_available();
      absl::StatusOr<AdminPeer> peer = options_.find_peer(peer_id);
      if (!peer.ok()) return failed(peer.status());
      return Reply(conn, false, 200, kJson, absl::StrCat(PeerJson(*peer), "\n"));
    }
    case Op::kKick: {
      if (!options_.kick_peer) return not_available();
      logger_->Info("disconnect requested over HTTP", {{"peer_id", peer_id}});
      if (absl::Status kicked = options_.kick_peer(peer_id); !kicked.ok()) return failed(kicked);
      return Reply(conn, false, 202, kJson, "{\"disconnecting\":true}\n");
    }
    case Op::kList: {
      if (!options_.list_peers) return not_available();
      const mg_request_info* request = mg_get_request_info(conn);
      const char* query = request->query_string != nullptr ? request->query_string : "";
      size_t limit = kDefaultPageSize;
      char value[256];
      int n = mg_get_var(query, std::strlen(query), "limit", value, sizeof(value));
      if (n >= 0 || n == -2) {
        size_t parsed = 0;
        if (n < 0 || !absl::SimpleAtoi(absl::string_view(value, n), &parsed) || parsed < 1 ||
            parsed > kMaxPageSize) {
          return Reply(
              conn, false, 400, kJson,
              ErrorJson(absl::StrCat("limit must be an integer from 1 to ", kMaxPageSize)));
        }
        limit = parsed;
      }
      std::string after;
      n = mg_get_var(query, std::strlen(query), "after", value, sizeof(value));
      if (n == -2) {
        return Reply(conn, false, 400, kJson, ErrorJson("after is too long to be a peer_id"));
      }
      if (n > 0) after.assign(value, n);
      // One more than asked for tells whether there is a next page.
      std::vector<AdminPeer> peers = options_.list_peers(after, limit + 1);
      bool more = peers.size() > limit;
      if (more) peers.resize(limit);
      std::string body = "{\"peers\":[";
      for (size_t i = 0; i < peers.size(); ++i) {
        if (i > 0) body += ",";
        body += PeerJson(peers[i]);
      }
      absl::StrAppend(&body,
                      "],\"next\":", more ? JsonString(peers.back().peer_id) : std::string("null"),
                      "}\n");
      return Reply(conn, false, 200, kJson, body);
    }
  }
  return Reply(conn, false, 404, kJson, ErrorJson("not found"));
}

}  // namespace edge::metrics
