// KafkaMessageBus: the MessageBus over Apache Kafka (librdkafka).
//
// Publishing: an idempotent producer (acks=all, linger.ms=5, keyed with the
// Java-compatible murmur2 partitioner). A record's PublishDone runs from its
// delivery report. The bus never blocks the caller and never drops a record
// while it runs: records librdkafka cannot take yet wait in the bus's own
// queue; a retriable delivery failure (e.g. timed out while the broker was
// down) is sent again; after a fatal idempotent-producer error the producer is
// rebuilt and every record without a successful delivery report is sent again
// (so a record may be stored twice, never lost). Only a permanent error (a
// record the broker will never accept, e.g. too large) fails a record before
// Shutdown; Shutdown fails what is left with CANCELLED. Saturated() is true
// while at least `capacity` records, or `capacity_bytes` bytes of records,
// wait for their delivery report; a record is counted from Publish to its
// report, and its bytes are held once (librdkafka does not copy them).
//
// Consuming: one consumer that owns every partition of every topic given to
// Subscribe. It joins no consumer-group rebalance (each edge owns its
// command topic): at Start it reads the committed positions of `group_id`
// and assigns the partitions itself, so it reads within a fetch round-trip
// of starting, and Reading() turns true once each partition answered.
// Partitions added to a topic later are picked up within
// `partition_check_interval`. Records are handed out on the bus's consumer
// thread in partition order. Offsets are tracked per partition: the
// committed position is the lowest offset whose RecordDone has not run (or
// one past the last handed-out record), committed to `group_id` every
// `commit_interval` when it advanced, and at Shutdown. RecordDone may run on
// any thread. A partition without a committed position starts where
// auto.offset.reset says (earliest by default). A committed position the
// broker no longer has (retention ran out while the edge lagged) is logged
// as an error with the number of records skipped, reported to
// `on_offset_reset`, and reading goes on from the oldest record left.
// While more than `max_outstanding_records` records (or
// `max_outstanding_bytes` bytes of them) wait for their RecordDone, fetching
// pauses; it resumes below half of both. While Saturated(), fetching pauses
// too and no record is handed out (a command's dead letter or forward would
// have no room); it resumes once the buffer drains. Neither resumes fetching
// while the other still wants it paused.
//
// Threads: PublishDone and the drain listener run on the bus's producer
// thread; handlers on its consumer thread; never with a bus lock held.
// Publish after Shutdown fails at once, on the caller's thread, CANCELLED.
//
//   edge::kafka::KafkaMessageBusOptions options;
//   options.bootstrap_servers = "kafka-1:9092";
//   options.group_id = "edge-e1";
//   absl::StatusOr<std::unique_ptr<edge::kafka::KafkaMessageBus>> bus =
//       edge::kafka::KafkaMessageBus::Create(std::move(options));
#ifndef EDGE_KAFKA_KAFKA_MESSAGE_BUS_H_
#define EDGE_KAFKA_KAFKA_MESSAGE_BUS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/logger.h"
#include "edge/message_bus.h"

namespace edge::kafka {

using KafkaProperties = std::vector<std::pair<std::string, std::string>>;

struct KafkaMessageBusOptions {
  std::string bootstrap_servers;  // required, "host:port[,host:port...]"
  std::string group_id;           // required when Subscribe is used
  std::string client_id = "edge";
  // librdkafka properties applied after the bus's defaults, to both clients.
  // A name prefixed "producer." or "consumer." applies to that client only.
  KafkaProperties properties;
  // Saturated() while at least this many published records wait, or
  // records of at least capacity_bytes (topic, key, value and headers; the
  // bus holds one copy of each, librdkafka sends from it).
  size_t capacity = 10000;
  size_t capacity_bytes = 256 * 1024 * 1024;  // EVENT_BUFFER_MAX_BYTES
  // How often advanced consumer positions are committed.
  absl::Duration commit_interval = absl::Seconds(1);
  // Consumed records waiting for their RecordDone before fetching pauses.
  size_t max_outstanding_records = 200000;
  size_t max_outstanding_bytes = 64 * 1024 * 1024;
  // How often subscribed topics are checked for new partitions.
  absl::Duration partition_check_interval = absl::Seconds(30);
  // Topics the producer learns the metadata of at Start, so that the first
  // record to each does not wait for it.
  std::vector<std::string> warm_topics;
  // Called on the consumer thread when a committed position was gone from
  // the broker; `skipped` records were never handed out (0: unknown).
  std::function<void(const std::string& topic, int32_t partition, int64_t skipped)> on_offset_reset;
  Logger* logger = nullptr;  // null: Logger::Null()
};

// Reads KAFKA_CONFIG_FILE: `property=value` lines; blank lines and lines
// starting with '#' are skipped; whitespace around names and values is
// trimmed. Every error starts "KAFKA_CONFIG_FILE: " and names the file: a file
// that cannot be opened is NotFound; a line without '=' or with an empty name
// is InvalidArgument naming the line number (not its text, which may be a
// secret); a failed read is DataLoss. The one parser of this file: edged uses it.
absl::StatusOr<KafkaProperties> ParseKafkaConfigFile(const std::string& path);

namespace internal {
class KafkaProducer;
class KafkaConsumer;
}  // namespace internal

class KafkaMessageBus final : public MessageBus {
 public:
  // Validates the options and every property (InvalidArgument naming it)
  // and creates the producer. Does not wait for the cluster.
  static absl::StatusOr<std::unique_ptr<KafkaMessageBus>> Create(KafkaMessageBusOptions options);
  ~KafkaMessageBus() override;  // Shutdown(now) if still running.

  void Publish(OutgoingRecord record, PublishDone done) override;
  bool Saturated() const override;
  void SetDrainListener(absl::AnyInvocable<void()> listener) override;
  absl::Status Subscribe(const std::string& topic, RecordHandler handler) override;
  absl::Status Start() override;
  bool Reading() const override;
  void StopConsuming() override;
  void Shutdown(absl::Time deadline) override;

 private:
  KafkaMessageBus(KafkaMessageBusOptions options,
                  std::unique_ptr<internal::KafkaProducer> producer);

  const KafkaMessageBusOptions options_;
  Logger& logger_;
  const std::unique_ptr<internal::KafkaProducer> producer_;

  mutable absl::Mutex mu_;
  std::map<std::string, RecordHandler> handlers_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Created by Start() when there are subscriptions; then never replaced.
  std::unique_ptr<internal::KafkaConsumer> consumer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::kafka

#endif  // EDGE_KAFKA_KAFKA_MESSAGE_BUS_H_
