#include "edge/metrics/prometheus_metrics.h"

#include <array>
#include <atomic>
#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "edge/dead_letter_reason.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace edge::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// Label values per family beyond which new values are counted as "other":
// the callers' sets are closed, this only guards against a caller bug
// turning into unbounded series.
constexpr size_t kMaxLabelValues = 64;
constexpr absl::string_view kOtherLabel = "other";
constexpr int kStatusCodes = 17;  // absl::StatusCode 0..16

const Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *buckets;
}

const Histogram::BucketBoundaries& DurationBuckets() {
  static const auto* buckets = new Histogram::BucketBoundaries{
      1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600};
  return *buckets;
}

const Histogram::BucketBoundaries& SizeBuckets() {
  static const auto* buckets =
      new Histogram::BucketBoundaries{64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304};
  return *buckets;
}

absl::string_view DirectionLabel(Direction d) { return d == Direction::kIn ? "in" : "out"; }
size_t DirectionIndex(Direction d) { return d == Direction::kIn ? 0 : 1; }

int CodeIndex(absl::StatusCode code) {
  int i = static_cast<int>(code);
  return i >= 0 && i < kStatusCodes ? i : static_cast<int>(absl::StatusCode::kUnknown);
}

}  // namespace

class PrometheusMetrics::CounterCache {
 public:
  CounterCache(Family<Counter>* family, prometheus::Labels fixed, std::string key_label)
      : family_(family), fixed_(std::move(fixed)), key_label_(std::move(key_label)) {}

  Counter& Get(absl::string_view key) { return Find(key, /*known=*/false); }
  // Makes the counter of a label value known in advance (at 0); known
  // values do not count against kMaxLabelValues.
  void Declare(absl::string_view key) { Find(key, /*known=*/true); }

 private:
  Counter& Find(absl::string_view key, bool known) {
    {
      absl::ReaderMutexLock lock(&mu_);
      auto it = children_.find(key);
      if (it != children_.end()) return *it->second;
    }
    absl::MutexLock lock(&mu_);
    auto it = children_.find(key);
    if (it != children_.end()) return *it->second;
    if (!known && unknown_values_ >= kMaxLabelValues) {
      key = kOtherLabel;
      it = children_.find(key);
      if (it != children_.end()) return *it->second;
    }
    prometheus::Labels labels = fixed_;
    labels[key_label_] = std::string(key);
    Counter* counter = &family_->Add(labels);
    children_.emplace(std::string(key), counter);
    if (!known) ++unknown_values_;
    return *counter;
  }

  Family<Counter>* const family_;
  const prometheus::Labels fixed_;
  const std::string key_label_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Counter*> children_ ABSL_GUARDED_BY(mu_);
  // Label values seen that were not declared.
  size_t unknown_values_ ABSL_GUARDED_BY(mu_) = 0;
};

class PrometheusMetrics::CodeCounters {
 public:
  CodeCounters(Family<Counter>* family, prometheus::Labels fixed, std::string key_label)
      : family_(family), fixed_(std::move(fixed)), key_label_(std::move(key_label)) {}

  Counter& Get(absl::StatusCode code) {
    std::atomic<Counter*>& slot = counters_[CodeIndex(code)];
    Counter* counter = slot.load(std::memory_order_acquire);
    if (counter != nullptr) return *counter;
    absl::MutexLock lock(&mu_);
    counter = slot.load(std::memory_order_relaxed);
    if (counter == nullptr) {
      prometheus::Labels labels = fixed_;
      labels[key_label_] =
          std::string(StatusCodeLabel(static_cast<absl::StatusCode>(CodeIndex(code))));
      counter = &family_->Add(labels);
      slot.store(counter, std::memory_order_release);
    }
    return *counter;
  }

 private:
  Family<Counter>* const family_;
  const prometheus::Labels fixed_;
  const std::string key_label_;
  absl::Mutex mu_;
  std::array<std::atomic<Counter*>, kStatusCodes> counters_{};
};

struct PrometheusMetrics::TrackerOp {
  TrackerOp(Family<Counter>* requests, Family<Histogram>* latency, const std::string& op)
      : results(requests, {{"op", op}}, "result"),
        latency(&latency->Add({{"op", op}}, LatencyBuckets())) {}
  CodeCounters results;
  Histogram* const latency;
};

PrometheusMetrics::PrometheusMetrics(std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)) {}

PrometheusMetrics::~PrometheusMetrics() = default;

absl::StatusOr<std::unique_ptr<PrometheusMetrics>> PrometheusMetrics::Create(
    std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<PrometheusMetrics> metrics(new PrometheusMetrics(std::move(registry)));
  try {
    metrics->Register();
    metrics->CreateKnownSeries();
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot register the edge's metrics: ", e.what()));
  }
  return metrics;
}

void PrometheusMetrics::Register() {
  prometheus::Registry& r = *registry_;
  ready_ = &prometheus::BuildGauge()
                .Name("edge_ready")
                .Help("1 while the edge admits new peers (as /readyz answers 200), else 0.")
                .Register(r)
                .Add({});
  peer_connections_ = &prometheus::BuildGauge()
                           .Name("edge_peer_connections")
                           .Help("Peer streams admitted and not yet ended.")
                           .Register(r)
                           .Add({});
  peer_connection_duration_ = &prometheus::BuildHistogram()
                                   .Name("edge_peer_connection_duration_seconds")
                                   .Help("How long admitted peer streams stayed connected.")
                                   .Register(r)
                                   .Add({}, DurationBuckets());

  auto& admissions = prometheus::BuildCounter()
                         .Name("edge_admissions_total")
                         .Help("Admission decisions by result (a status code; ok: admitted).")
                         .Register(r);
  admissions_ = std::make_unique<CodeCounters>(&admissions, prometheus::Labels{}, "result");

  auto& messages = prometheus::BuildCounter()
                       .Name("edge_messages_total")
                       .Help("Messages on peer streams, by direction and payload type.")
                       .Register(r);
  auto& kafka = prometheus::BuildCounter()
                    .Name("edge_kafka_messages_total")
                    .Help("Kafka records produced (out) and consumed (in), by topic.")
                    .Register(r);
  for (Direction d : {Direction::kIn, Direction::kOut}) {
    prometheus::Labels fixed{{"direction", std::string(DirectionLabel(d))}};
    messages_[DirectionIndex(d)] = std::make_unique<CounterCache>(&messages, fixed, "message_type");
    kafka_messages_[DirectionIndex(d)] = std::make_unique<CounterCache>(&kafka, fixed, "topic");
  }
  message_size_ = &prometheus::BuildHistogram()
                       .Name("edge_message_size_bytes")
                       .Help("Serialized size of messages on peer streams.")
                       .Register(r)
                       .Add({}, SizeBuckets());

  kafka_publish_latency_ =
      &prometheus::BuildHistogram()
           .Name("edge_kafka_publish_latency_seconds")
           .Help("From handing an event to the producer to its successful delivery report.")
           .Register(r)
           .Add({}, LatencyBuckets());
  kafka_queue_depth_ = &prometheus::BuildGauge()
                            .Name("edge_kafka_producer_queue_depth")
                            .Help("Events handed to the producer and not yet reported.")
                            .Register(r)
                            .Add({});
  command_delivery_latency_ =
      &prometheus::BuildHistogram()
           .Name("edge_command_delivery_latency_seconds")
           .Help("From a command leaving the bus to its write to the peer completing.")
           .Register(r)
           .Add({}, LatencyBuckets());

  deadletters_ = std::make_unique<CounterCache>(&prometheus::BuildCounter()
                                                     .Name("edge_deadletters_total")
                                                     .Help("Commands dead-lettered, by reason.")
                                                     .Register(r),
                                                prometheus::Labels{}, "reason");
  command_outcomes_ = std::make_unique<CounterCache>(
      &prometheus::BuildCounter()
           .Name("edge_commands_total")
           .Help("Commands by outcome: delivered, forwarded, deadlettered; and held each time "
                 "one starts waiting for its peer.")
           .Register(r),
      prometheus::Labels{}, "outcome");
  for (const char* outcome : {"delivered", "forwarded", "deadlettered", "held"}) {
    command_outcomes_->Get(outcome);
  }
  commands_held_ = &prometheus::BuildGauge()
                        .Name("edge_commands_held")
                        .Help("Commands waiting for their peer to connect (COMMAND_HOLD_MS).")
                        .Register(r)
                        .Add({});
  kafka_offset_resets_ =
      &prometheus::BuildCounter()
           .Name("edge_kafka_offset_resets_total")
           .Help("Consumer positions the broker no longer had (retention ran out).")
           .Register(r)
           .Add({});
  kafka_records_skipped_ =
      &prometheus::BuildCounter()
           .Name("edge_kafka_records_skipped_total")
           .Help(
               "Commands never read because the broker dropped them before the consumer "
               "got to them.")
           .Register(r)
           .Add({});
  errors_ = std::make_unique<CounterCache>(
      &prometheus::BuildCounter()
           .Name("edge_errors_total")
           .Help("Failures that are not a single peer's or command's fault, by type.")
           .Register(r),
      prometheus::Labels{}, "type");

  tracker_requests_family_ = &prometheus::BuildCounter()
                                  .Name("edge_tracker_requests_total")
                                  .Help("Tracker requests by operation and result.")
                                  .Register(r);
  tracker_latency_family_ = &prometheus::BuildHistogram()
                                 .Name("edge_tracker_latency_seconds")
                                 .Help("Tracker request latency by operation.")
                                 .Register(r);
}

void PrometheusMetrics::CreateKnownSeries() {
  for (int code = 0; code < kStatusCodes; ++code) {
    admissions_->Get(static_cast<absl::StatusCode>(code));
  }
  // Payload types as PeerSession names them: the payload field, or "ack"
  // for an edge message without one.
  const auto payloads = [](const google::protobuf::Descriptor* message) {
    std::vector<std::string> names;
    const google::protobuf::OneofDescriptor* oneof = message->FindOneofByName("payload");
    for (int i = 0; oneof != nullptr && i < oneof->field_count(); ++i) {
      names.push_back(oneof->field(i)->name());
    }
    return names;
  };
  for (const std::string& type : payloads(giggityflix_grpc_peer::PeerMessage::descriptor())) {
    messages_[DirectionIndex(Direction::kIn)]->Declare(type);
  }
  for (const std::string& type : payloads(giggityflix_grpc_peer::EdgeMessage::descriptor())) {
    messages_[DirectionIndex(Direction::kOut)]->Declare(type);
  }
  messages_[DirectionIndex(Direction::kOut)]->Declare("ack");
  for (DeadLetterReason reason :
       {DeadLetterReason::kInvalidJson, DeadLetterReason::kInvalidCommand,
        DeadLetterReason::kUnknownType, DeadLetterReason::kPeerNotConnected,
        DeadLetterReason::kPeerSlow, DeadLetterReason::kPeerWriteFailed}) {
    deadletters_->Declare(DeadLetterReasonName(reason));
  }
  // The types the core and the instrumented bus report.
  for (const char* type :
       {"deadletter_unstored", "publish_failed", "tracker_release", "rate_limited"}) {
    errors_->Declare(type);
  }
  // The operations of InstrumentTracker, each with every result.
  for (const char* op : {"claim", "release", "lookup"}) {
    auto slot = std::make_unique<TrackerOp>(tracker_requests_family_, tracker_latency_family_, op);
    for (int code = 0; code < kStatusCodes; ++code) {
      slot->results.Get(static_cast<absl::StatusCode>(code));
    }
    absl::MutexLock lock(&tracker_mu_);
    tracker_ops_[op] = std::move(slot);
  }
}

void PrometheusMetrics::SetReady(bool ready) { ready_->Set(ready ? 1 : 0); }

void PrometheusMetrics::DeclareKafkaTopics(Direction direction,
                                           const std::vector<std::string>& topics) {
  for (const std::string& topic : topics)
    kafka_messages_[DirectionIndex(direction)]->Declare(topic);
}

std::string PrometheusMetrics::TextExposition() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void PrometheusMetrics::PeerConnected() { peer_connections_->Increment(); }

void PrometheusMetrics::PeerDisconnected(absl::Duration connected_for) {
  peer_connections_->Decrement();
  peer_connection_duration_->Observe(absl::ToDoubleSeconds(connected_for));
}

void PrometheusMetrics::Admission(absl::StatusCode result) { admissions_->Get(result).Increment(); }

void PrometheusMetrics::PeerMessage(Direction direction, absl::string_view type, size_t bytes) {
  messages_[DirectionIndex(direction)]->Get(type).Increment();
  message_size_->Observe(static_cast<double>(bytes));
}

void PrometheusMetrics::CommandDelivered(absl::Duration latency) {
  command_delivery_latency_->Observe(absl::ToDoubleSeconds(latency));
}

void PrometheusMetrics::CommandOutcome(absl::string_view outcome) {
  command_outcomes_->Get(outcome).Increment();
}

void PrometheusMetrics::CommandsHeld(int64_t held) {
  commands_held_->Set(static_cast<double>(held));
}

void PrometheusMetrics::KafkaOffsetReset(absl::string_view, int64_t skipped) {
  kafka_offset_resets_->Increment();
  if (skipped > 0) kafka_records_skipped_->Increment(static_cast<double>(skipped));
}

void PrometheusMetrics::DeadLetter(absl::string_view reason) {
  deadletters_->Get(reason).Increment();
}

void PrometheusMetrics::Error(absl::string_view type) { errors_->Get(type).Increment(); }

void PrometheusMetrics::KafkaMessage(Direction direction, absl::string_view topic) {
  kafka_messages_[DirectionIndex(direction)]->Get(topic).Increment();
}

void PrometheusMetrics::KafkaPublishLatency(absl::Duration latency) {
  kafka_publish_latency_->Observe(absl::ToDoubleSeconds(latency));
}

void PrometheusMetrics::KafkaProducerQueueDepth(int64_t depth) {
  kafka_queue_depth_->Set(static_cast<double>(depth));
}

void PrometheusMetrics::TrackerRequest(absl::string_view op, absl::StatusCode result,
                                       absl::Duration latency) {
  TrackerOp* tracker_op = nullptr;
  {
    absl::ReaderMutexLock lock(&tracker_mu_);
    auto it = tracker_ops_.find(op);
    if (it != tracker_ops_.end()) tracker_op = it->second.get();
  }
  if (tracker_op == nullptr) {
    absl::MutexLock lock(&tracker_mu_);
    if (tracker_ops_.size() >= kMaxLabelValues && !tracker_ops_.contains(op)) op = kOtherLabel;
    auto& slot = tracker_ops_[std::string(op)];
    if (slot == nullptr) {
      slot = std::make_unique<TrackerOp>(tracker_requests_family_, tracker_latency_family_,
                                         std::string(op));
    }
    tracker_op = slot.get();
  }
  tracker_op->results.Get(result).Increment();
  tracker_op->latency->Observe(absl::ToDoubleSeconds(latency));
}

}  // namespace edge::metrics
