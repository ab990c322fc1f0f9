// PrometheusMetrics: edge::Metrics kept in a prometheus-cpp Registry.
//
// Every figure the core, InstrumentBus and InstrumentTracker report becomes
// a Prometheus family named `edge_...` (docs/operations.md lists them).
// Labels are closed sets (directions, message types, status codes, reasons,
// topics, tracker operations); there is never a peer_id label.
//
// Each labelled child is looked up once and cached: the hot path is an
// atomic load or a reader-locked hash lookup on a string_view, then an
// atomic increment. Thread-safe; no method blocks on I/O.
//
//   auto metrics = edge::metrics::PrometheusMetrics::Create();
//   if (!metrics.ok()) return metrics.status();
//   EdgeParts parts{..., metrics->get()};
//   MetricsServerOptions http{"0.0.0.0:9464", (*metrics)->registry(), ...};
#ifndef EDGE_METRICS_PROMETHEUS_METRICS_H_
#define EDGE_METRICS_PROMETHEUS_METRICS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/metrics.h"
#include "prometheus/registry.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace edge::metrics {

class PrometheusMetrics final : public Metrics {
 public:
  // Registers the edge's families in `registry` (a new one if null). Fails
  // if the registry already holds a family of the same name but another
  // type or help text.
  static absl::StatusOr<std::unique_ptr<PrometheusMetrics>> Create(
      std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~PrometheusMetrics() override;

  // What MetricsServer serves at /metrics.
  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

  // The registry in Prometheus' text exposition format (version 0.0.4).
  std::string TextExposition() const;

  // Every labelled family is exported from the start (contract §10): Create
  // makes each label value the edge knows (status codes, payload types,
  // dead-letter reasons, error types, tracker operations) at 0. Topics
  // depend on the configuration: this makes the Kafka counters of `topics`
  // in `direction` at 0.
  void DeclareKafkaTopics(Direction direction, const std::vector<std::string>& topics);

  // edge_ready: 1 while the edge admits new peers (as /readyz answers 200),
  // else 0; kept by its owner (edged probes it every second).
  void SetReady(bool ready);

  void PeerConnected() override;
  void PeerDisconnected(absl::Duration connected_for) override;
  void Admission(absl::StatusCode result) override;
  void PeerMessage(Direction direction, absl::string_view type, size_t bytes) override;
  void CommandDelivered(absl::Duration latency) override;
  void DeadLetter(absl::string_view reason) override;
  void Error(absl::string_view type) override;
  void KafkaMessage(Direction direction, absl::string_view topic) override;
  void KafkaPublishLatency(absl::Duration latency) override;
  void KafkaProducerQueueDepth(int64_t depth) override;
  void CommandOutcome(absl::string_view outcome) override;
  void CommandsHeld(int64_t held) override;
  void KafkaOffsetReset(absl::string_view topic, int64_t skipped) override;
  void TrackerRequest(absl::string_view op, absl::StatusCode result,
                      absl::Duration latency) override;

 private:
  // The counters of one family, keyed by the value of one label; the other
  // labels (if any) are fixed when the cache is made.
  class CounterCache;
  // Counters of one family indexed by a status code.
  class CodeCounters;
  struct TrackerOp;

  explicit PrometheusMetrics(std::shared_ptr<prometheus::Registry> registry);
  prometheus::Gauge* ready_ = nullptr;
  // Makes the known label values of every family at 0.
  void CreateKnownSeries();
  // Builds and registers every family; throws what prometheus-cpp throws.
  void Register();

  const std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Gauge* peer_connections_ = nullptr;
  prometheus::Histogram* peer_connection_duration_ = nullptr;
  prometheus::Histogram* message_size_ = nullptr;
  prometheus::Histogram* kafka_publish_latency_ = nullptr;
  prometheus::Gauge* kafka_queue_depth_ = nullptr;
  prometheus::Histogram* command_delivery_latency_ = nullptr;
  prometheus::Gauge* commands_held_ = nullptr;
  prometheus::Counter* kafka_offset_resets_ = nullptr;
  prometheus::Counter* kafka_records_skipped_ = nullptr;

  std::unique_ptr<CodeCounters> admissions_;
  std::array<std::unique_ptr<CounterCache>, 2> messages_;  // by Direction
  std::array<std::unique_ptr<CounterCache>, 2> kafka_messages_;
  std::unique_ptr<CounterCache> deadletters_;
  std::unique_ptr<CounterCache> command_outcomes_;
  std::unique_ptr<CounterCache> errors_;

  prometheus::Family<prometheus::Counter>* tracker_requests_family_ = nullptr;
  prometheus::Family<prometheus::Histogram>* tracker_latency_family_ = nullptr;
  absl::Mutex tracker_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TrackerOp>> tracker_ops_
      ABSL_GUARDED_BY(tracker_mu_);
};

}  // namespace edge::metrics

#endif  // EDGE_METRICS_PROMETHEUS_METRICS_H_
