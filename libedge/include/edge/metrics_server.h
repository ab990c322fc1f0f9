// MetricsServer: the operator's HTTP endpoint (METRICS_ADDRESS).
//
//   GET  /metrics  Prometheus text format of `metrics`
//   GET  /healthz  200 "ok" while `healthy()` is OK, else 503 with its message
//   GET  /readyz   200 "ready" when `ready()` is OK, else 503 with its message
//   POST /drain    calls `drain()`, 202; any other method 405
// Other methods on the GET paths: 405; other paths: 404.
//
// Threads: the server owns a small pool of HTTP worker threads, started by
// Start() and joined by Shutdown(); `ready`, `healthy` and `drain` run on
// them (never with a lock of the server held) and may be called
// concurrently. After
// Shutdown() returns they are never called again.
//
//   MetricsServerOptions o;
//   o.address = "0.0.0.0:9464";
//   o.metrics = prometheus_metrics->registry();
//   o.ready = [&] { return edge->Ready() ? absl::OkStatus()
//                                       : absl::UnavailableError("draining"); };
//   o.drain = [&] { edge->Drain(); };
//   auto server = edge::MetricsServer::Create(std::move(o));
//   if (!server.ok()) return server.status();
//   if (absl::Status s = (*server)->Start(); !s.ok()) return s;
//   LOG << (*server)->port();
#ifndef EDGE_METRICS_SERVER_H_
#define EDGE_METRICS_SERVER_H_

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "edge/logger.h"

struct mg_context;
struct mg_connection;

namespace prometheus {
class Collectable;
}

namespace edge {

struct MetricsServerOptions {
  // host:port; port 0 picks a free port (see port()). The host is an IP
  // literal ("0.0.0.0", "127.0.0.1", "[::]") or a name resolved at Start().
  std::string address;
  // Served at /metrics; null serves an empty exposition.
  std::shared_ptr<prometheus::Collectable> metrics;
  // /readyz; unset: always ready.
  std::function<absl::Status()> ready;
  // /healthz: 200 "ok" while OK, else 503 with the status' message; unset:
  // always healthy.
  std::function<absl::Status()> healthy;
  // POST /drain; unset: /drain answers 501.
  std::function<void()> drain;
  Logger* logger = nullptr;  // null: Logger::Null()
};

class MetricsServer {
 public:
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

}  // namespace edge

#endif  // EDGE_METRICS_SERVER_H_
