// Metrics: what the edge counts and times, for an exporter to expose.
//
// The core reports peers, admissions, messages, command deliveries, dead
// letters and errors; InstrumentBus / InstrumentTracker (below) wrap a bus
// and a tracker to report Kafka and tracker figures without either knowing.
// Labels are small closed sets (message types, reasons, topics, status
// codes), never a peer_id.
//
// Thread-safety: every method may be called concurrently from any thread
// and must not block.
//
//   auto metrics = edge::metrics::PrometheusMetrics::Create();
//   auto bus = edge::InstrumentBus(kafka_bus.get(), metrics->get(), clock);
//   EdgeParts parts{..., bus.get(), ..., metrics->get()};
#ifndef EDGE_METRICS_H_
#define EDGE_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"
#include "edge/tracker.h"

namespace edge {

enum class Direction { kIn, kOut };  // into the edge / out of the edge

class Metrics {
 public:
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  virtual ~Metrics() = default;

  // --- the core ---
  virtual void PeerConnected() = 0;
  virtual void PeerDisconnected(absl::Duration connected_for) = 0;
  // One admission decision; OK means admitted.
  virtual void Admission(absl::StatusCode result) = 0;
  // A message on a peer stream: `type` is the payload's field name
  // ("file_hash_response", "ack", ...), `bytes` its serialized size.
  virtual void PeerMessage(Direction direction, absl::string_view type, size_t bytes) = 0;
  // A command written to its peer, `latency` after the bus handed it over.
  virtual void CommandDelivered(absl::Duration latency) = 0;
  virtual void DeadLetter(absl::string_view reason) = 0;
  // One command's outcome (contract §4): "delivered", "forwarded",
  // "deadlettered"; and "held" each time a command starts waiting for its
  // peer. Defaults count nothing, for exporters that predate them.
  virtual void CommandOutcome(absl::string_view /*outcome*/) {}
  // Commands now waiting for their peer (COMMAND_HOLD_MS).
  virtual void CommandsHeld(int64_t /*held*/) {}
  // Something went wrong that is not a peer's or command's fault alone:
  // "publish_failed", "tracker_release", "rate_limited", ...
  virtual void Error(absl::string_view type) = 0;

  // --- the bus (reported by InstrumentBus) ---
  virtual void KafkaMessage(Direction direction, absl::string_view topic) = 0;
  virtual void KafkaPublishLatency(absl::Duration latency) = 0;
  virtual void KafkaProducerQueueDepth(int64_t depth) = 0;
  // The broker no longer had a consumer position of `topic`: `skipped`
  // records (0 when unknown) were never handed out.
  virtual void KafkaOffsetReset(absl::string_view /*topic*/, int64_t /*skipped*/) {}

  // --- the tracker (reported by InstrumentTracker) ---
  virtual void TrackerRequest(absl::string_view op, absl::StatusCode result,
                              absl::Duration latency) = 0;
};

// Counts nothing.
Metrics& NullMetrics();

// Canonical status code name in lower case ("ok", "already_exists"), for
// labels.
absl::string_view StatusCodeLabel(absl::StatusCode code);

// Wrappers that forward every call to `bus` / `tracker` (borrowed) and
// report to `metrics`. Time is read from `clock`.
class Clock;
std::unique_ptr<MessageBus> InstrumentBus(MessageBus* bus, Metrics* metrics, Clock* clock);
std::unique_ptr<Tracker> InstrumentTracker(Tracker* tracker, Metrics* metrics, Clock* clock);

}  // namespace edge

#endif  // EDGE_METRICS_H_
