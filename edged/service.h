// EdgedService: edged's parts wired together from an EdgedConfig.
//
// The gRPC transport, the Kafka bus (on the configured cluster, or on an
// embedded broker when KAFKA_BOOTSTRAP_SERVERS is unset), the tracker
// (local or etcd) and the edge core, started and stopped in order. main.cc
// only adds the environment and signals; tests run the service in-process.
#ifndef EDGED_SERVICE_H_
#define EDGED_SERVICE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "edge/tracker.h"

namespace edge {

class GrpcPeerTransport;
class DescriptorBudget;
namespace kafka {
class EmbeddedKafka;
}

class EdgedService {
 public:
  // Builds every part; nothing is listening yet. `logger` must outlive it.
  static absl::StatusOr<std::unique_ptr<EdgedService>> Create(const EdgedConfig& config,
                                                               Logger* logger);
  ~EdgedService();

  // Starts the bus, tracker, core and the gRPC server (and the metrics
  // endpoint). Logs the addresses it listens on.
  absl::Status Start();

  // SIGUSR1: stop admitting and end streams at DRAIN_RATE_PER_SEC.
  void Drain();
  // SIGHUP: re-read the TLS certificate and key.
  absl::Status ReloadCredentials();
  // SIGTERM/SIGINT: contract §7, within SHUTDOWN_TIMEOUT_SEC. Idempotent.
  void Shutdown();

  int grpc_port() const;
  // The Kafka cluster in use (the embedded broker's address if embedded).
  const std::string& kafka_bootstrap_servers() const { return kafka_bootstrap_servers_; }
  Edge& edge() { return *edge_; }

 private:
  EdgedService(const EdgedConfig& config, Logger* logger);

  const EdgedConfig config_;
  Logger* const logger_;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<DescriptorBudget> descriptors_;
  std::unique_ptr<kafka::EmbeddedKafka> embedded_kafka_;
  std::string kafka_bootstrap_servers_;
  std::unique_ptr<MessageBus> bus_;
  std::unique_ptr<Tracker> tracker_;
  std::unique_ptr<GrpcPeerTransport> transport_;
  std::unique_ptr<Edge> edge_;
  bool shut_down_ = false;
};

}  // namespace edge

#endif  // EDGED_SERVICE_H_
