// EdgedService: edged's parts wired together from an EdgedConfig.
//
// The gRPC transport, the Kafka bus (on the configured cluster, or on an
// embedded broker when KAFKA_BOOTSTRAP_SERVERS is unset), the tracker
// (local or etcd) and the edge core, started and stopped in order. main.cc
// only adds the environment and signals; tests run the service in-process.
#ifndef EDGE_EDGED_SERVICE_H_
#define EDGE_EDGED_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "edge/tracker.h"

namespace edge {

class DescriptorBudget;
namespace etcd {
class EtcdTracker;
}
namespace grpc_transport {
class GrpcPeerTransport;
}
namespace metrics {
struct AdminPeer;
class MetricsServer;
class PrometheusMetrics;
}  // namespace metrics
namespace kafka {
class EmbeddedKafka;
}

class EdgedService {
 public:
  // Builds every part; nothing is listening yet. `logger` must outlive it.
  static absl::StatusOr<std::unique_ptr<EdgedService>> Create(const EdgedConfig& config,
                                                              Logger* logger);
  ~EdgedService();

  // Starts the metrics endpoint (when METRICS_ADDRESS is set), then the
  // bus, tracker, core and the gRPC server. Logs the addresses it listens on.
  absl::Status Start();

  // SIGUSR1 or POST /drain: stop admitting, report NOT_SERVING on gRPC
  // health, and end streams at DRAIN_RATE_PER_SEC. Thread-safe.
  void Drain();
  // SIGHUP: re-read the TLS certificate and key.
  absl::Status ReloadCredentials();
  // SIGTERM/SIGINT: contract §7, within SHUTDOWN_TIMEOUT_SEC. Idempotent.
  void Shutdown();

  int grpc_port() const;
  // The metrics endpoint's port; 0 when METRICS_ADDRESS is empty or before
  // Start().
  int metrics_port() const;
  // The Kafka cluster in use (the embedded broker's address if embedded).
  const std::string& kafka_bootstrap_servers() const { return kafka_bootstrap_servers_; }
  Edge& edge() { return *edge_; }

 private:
  EdgedService(const EdgedConfig& config, Logger* logger);

  // Creates the metrics, the instrumented bus and tracker, and the endpoint.
  absl::Status CreateMetrics();
  // /readyz: OK when the edge admits peers and, with an etcd tracker that
  // does not fail open, etcd answered the last background probe.
  absl::Status Readiness();
  // The background probe behind /readyz and the edge_ready gauge: every
  // kTrackerProbeEvery, one etcd Lookup at a time (with an etcd tracker
  // that does not fail open), so that no request ever waits on etcd.
  struct TrackerProbe;
  void ProbeTracker(std::shared_ptr<TrackerProbe> probe);
  // The admin API (contract §10).
  absl::StatusOr<metrics::AdminPeer> FindPeer(const std::string& peer_id);
  std::vector<metrics::AdminPeer> ListPeers(const std::string& after, size_t limit);

  const EdgedConfig config_;
  Logger* const logger_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<DescriptorBudget> descriptors_;
  std::unique_ptr<kafka::EmbeddedKafka> embedded_kafka_;
  std::string kafka_bootstrap_servers_;
  std::unique_ptr<MessageBus> bus_;
  std::unique_ptr<Tracker> tracker_;
  // tracker_ when TRACKER=etcd, else null.
  etcd::EtcdTracker* etcd_ = nullptr;
  std::shared_ptr<TrackerProbe> probe_;
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
  // With metrics: the edge talks to the bus and tracker through these
  // wrappers, which report to metrics_.
  std::unique_ptr<metrics::PrometheusMetrics> metrics_;
  std::unique_ptr<MessageBus> instrumented_bus_;
  std::unique_ptr<Tracker> instrumented_tracker_;
  std::unique_ptr<Edge> edge_;
  // Calls into edge_ from its threads: declared last, destroyed first.
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::atomic<bool> stopping_{false};
  bool shut_down_ = false;
};

}  // namespace edge

#endif  // EDGE_EDGED_SERVICE_H_
