// MetricsServer: the operator's HTTP endpoint (METRICS_ADDRESS).
//
//   GET  /metrics  Prometheus text format of `metrics`
//   GET  /healthz  200 "ok" while `healthy()` is OK (unset: always), else
//                  503 with its message
//   GET  /readyz   200 "ready" when `ready()` is OK, else 503 with its message
// Other methods on the GET paths: 405; other paths: 404. Health and
// readiness are open to anyone who can reach the port; they answer within a
// second while up to kHttpWorkers-1 other clients hold connections open
// (a client is cut off kRequestTimeoutMs after it connected without having
// sent its whole request).
//
// Admin endpoints (contract §10), JSON answers:
//   GET  /peers/{id}             `find_peer`; NOT_FOUND: 404
//   GET  /peers?limit=N&after=ID `list_peers`, a page {peers, next}
//   POST /peers/{id}/disconnect  `kick_peer`, 202; NOT_FOUND: 404
//   POST /drain                  `drain`, 202
// They need `Authorization: Bearer <admin_token>`: with no admin_token
// configured they answer 403, a wrong or missing token 401 (compared in
// constant time). A request with an `Origin` header is refused (403), so no
// web page can drive them from an operator's browser.
//
// Threads: the server owns a pool of kHttpWorkers HTTP worker threads,
// started by Start() and joined by Shutdown(); every callback runs on them
// (never with a lock of the server held) and may be called concurrently.
// `healthy` and `ready` must answer at once; the admin callbacks may wait,
// bounded. After Shutdown() returns no callback is called again.
//
//   MetricsServerOptions o;
//   o.address = "0.0.0.0:9464";
//   o.metrics = prometheus_metrics->registry();
//   o.ready = [&] { return edge->Ready() ? absl::OkStatus()
//                                       : absl::UnavailableError("draining");
//                                       };
//   o.drain = [&] { edge->Drain(); };
//   auto server = edge::metrics::MetricsServer::Create(std::move(o));
//   if (!server.ok()) return server.status();
//   if (absl::Status s = (*server)->Start(); !s.ok()) return s;
//   LOG << (*server)->port();
#ifndef EDGE_METRICS_METRICS_SERVER_H_
#define EDGE_METRICS_METRICS_SERVER_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/logger.h"

struct mg_context;
struct mg_connection;

namespace prometheus {
class Collectable;
}

namespace edge::metrics {

// A peer as the admin API reports it.
struct AdminPeer {
  std::string peer_id;
  // The edge that holds it.
  std::string edge_id;
  // Held by this edge: its stream's admission and last message.
  std::optional<absl::Time> connected_at;
  std::optional<absl::Time> last_activity;
  // The claim's epoch (contract §9), when the tracker has one.
  std::optional<int64_t> epoch;
  // Held by another edge: that edge's registered address; empty when it
  // has none.
  std::string address;
};

struct MetricsServerOptions {
  // host:port (edge/host_port.h, the rule of METRICS_ADDRESS); port 0 picks
  // a free port (see port()). The host is an IP literal ("0.0.0.0",
  // "127.0.0.1", "[::]") or a name resolved at Start(); it cannot be empty.
  std::string address;
  // Served at /metrics; null serves an empty exposition.
  std::shared_ptr<prometheus::Collectable> metrics;
  // /healthz; unset: always healthy. Not OK: 503 with the status' message
  // (a liveness probe restarts the process). Must answer quickly: it runs
  // in a request.
  std::function<absl::Status()> healthy;
  // /readyz; unset: always ready.
  std::function<absl::Status()> ready;
  // The admin token (ADMIN_TOKEN_FILE's content); empty: admin endpoints
  // answer 403.
  std::string admin_token;
  // POST /drain; unset: /drain answers 501.
  std::function<void()> drain;
  // GET /peers/{id}: the peer here or where it is held. NOT_FOUND: 404;
  // another error: 503 with its message. May wait (bounded) on the tracker.
  std::function<absl::StatusOr<AdminPeer>(const std::string& peer_id)> find_peer;
  // GET /peers: up to `limit` peers of this edge with a peer_id greater than
  // `after`, in peer_id order.
  std::function<std::vector<AdminPeer>(const std::string& after, size_t limit)> list_peers;
  // POST /peers/{id}/disconnect. NOT_FOUND: 404.
  std::function<absl::Status(const std::string& peer_id)> kick_peer;
  // Unset admin callbacks: their endpoints answer 501.
  Logger* logger = nullptr;  // null: Logger::Null()
};

class MetricsServer {
 public:
  // HTTP worker threads: one connection each, health probes included.
  static constexpr int kHttpWorkers = 32;
  // A client that has not sent its whole request by then is cut off.
  static constexpr int kRequestTimeoutMs = 2000;
  // GET /peers page sizes.
  static constexpr size_t kDefaultPageSize = 100;
  static constexpr size_t kMaxPageSize = 1000;

  // Checks the address' syntax (INVALID_ARGUMENT). Listens on nothing yet.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Create(MetricsServerOptions options);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  ~MetricsServer();  // Shutdown()

  // Resolves the host and listens. UNAVAILABLE when the address cannot be
  // bound (in use, not local), INVALID_ARGUMENT when the host does not
  // resolve, FAILED_PRECONDITION when already started.
  absl::Status Start();
  // Stops listening and joins the worker threads. Idempotent.
  void Shutdown();

  // The port listened on once started (the chosen one for port 0); else 0.
  int port() const;

 private:
  explicit MetricsServer(MetricsServerOptions options, std::string host, int port);

  static int Handle(mg_connection* conn, void* self);
  static int LogMessage(const mg_connection* conn, const char* message);
  int Serve(mg_connection* conn);
  // The admin endpoints; `path` starts with /peers or is /drain.
  int ServeAdmin(mg_connection* conn, absl::string_view method, absl::string_view path);

  const MetricsServerOptions options_;
  const std::string host_;
  const int requested_port_;
  Logger* const logger_;

  mutable absl::Mutex mu_;
  mg_context* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  int port_ ABSL_GUARDED_BY(mu_) = 0;
  // Where Shutdown() wakes the accept loop (the listening address).
  sockaddr_storage wake_ ABSL_GUARDED_BY(mu_) = {};
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // civetweb's own words for why the last start failed.
  std::string start_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::metrics

#endif  // EDGE_METRICS_METRICS_SERVER_H_
