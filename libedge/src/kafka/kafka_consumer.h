// KafkaConsumer: the consuming half of KafkaMessageBus (see its header for
// the guarantees). One thread owned by this object assigns itself every
// partition of the handlers' topics (no group rebalance: the edge owns its
// topic), polls, hands records to the handlers, pauses fetching while too
// many records wait for their outcome, and commits positions tracked by an
// OffsetTracker to the group.
#ifndef EDGE_SRC_KAFKA_KAFKA_CONSUMER_H_
#define EDGE_SRC_KAFKA_KAFKA_CONSUMER_H_

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/kafka/kafka_message_bus.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "kafka_config.h"
#include "offset_tracker.h"

namespace edge::kafka::internal {

class KafkaConsumer {
 public:
  // Creates the consumer; partitions are assigned by the consumer thread.
  static absl::StatusOr<std::unique_ptr<KafkaConsumer>> Create(
      const KafkaMessageBusOptions& options, std::map<std::string, RecordHandler> handlers,
      Logger* logger);
  ~KafkaConsumer();  // Shutdown(now) if still running.
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  // Backpressure: while `hold` returns true the assigned partitions are
  // paused (polling, rebalances and commits go on), so no record is handed
  // out. Checked before each poll. Call before Start().
  void SetHold(std::function<bool()> hold);
  void Start();
  // True once every assigned partition answered a fetch (a record, or its
  // end) since Start.
  bool Reading() const { return reading_.load(std::memory_order_acquire); }
  void StopConsuming();
  // Waits for the outcome of every handed-out record until `deadline`,
  // commits and destroys the consumer. Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  KafkaConsumer(const KafkaMessageBusOptions& options,
                std::map<std::string, RecordHandler> handlers, Logger* logger);

  static void OnCommit(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  void HandleCommitResult(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets);
  bool Stopping();
  // Assigns the partitions of the subscribed topics not assigned yet, at
  // their committed positions. False when the cluster could not say (the
  // caller tries again).
  bool AssignNewPartitions();
  void Loop();
  void Dispatch(rd_kafka_message_t* msg);
  void Answered(const TopicPartition& tp);
  // Reading(): every topic assigned and every partition answered.
  void UpdateReading();
  // The broker no longer has the position `offset` of `tp`: say so, count
  // what was skipped, and read on from the oldest record left.
  void HandleOffsetReset(const TopicPartition& tp, int64_t offset, const char* detail);
  // Pauses fetching while too many records wait for their outcome.
  void Throttle();
  // Commits advanced positions.
  void Commit(bool async);
  void SetPaused(bool paused);
  // Fetching is paused while any of these reasons holds.
  bool Paused() const { return stopped_fetching_ || throttled_ || held_; }
  // Sets one pause reason; pauses or resumes the assignment only when that
  // changes Paused(), so no reason resumes partitions another still holds.
  void SetPauseReason(bool* reason, bool on);
  // Follows hold_ (backpressure from the producer).
  void ApplyHold();

  std::map<std::string, RecordHandler> handlers_;  // consumer thread only
  const absl::Duration commit_interval_;
  const size_t max_outstanding_records_;
  const size_t max_outstanding_bytes_;
  const absl::Duration partition_check_interval_;
  const std::function<void(const std::string&, int32_t, int64_t)> on_offset_reset_;
  Logger* const logger_;
  ClientOpaque opaque_;
  const std::shared_ptr<OffsetTracker> tracker_ = std::make_shared<OffsetTracker>();
  // Where a partition without a committed position starts
  // (RD_KAFKA_OFFSET_BEGINNING or _END, from auto.offset.reset).
  int64_t start_at_ = RD_KAFKA_OFFSET_BEGINNING;

  rd_kafka_t* rk_ = nullptr;  // consumer thread, then Shutdown after join
  // Consumer thread only.
  std::set<TopicPartition> assigned_;
  std::set<TopicPartition> unanswered_;
  bool stopped_fetching_ = false;  // StopConsuming paused the assignment
  bool throttled_ = false;         // too many records wait for an outcome
  bool held_ = false;              // hold_ returned true (backpressure)
  bool all_topics_assigned_ = false;
  std::atomic<bool> reading_{false};
  std::function<bool()> hold_;  // set before Start

  mutable absl::Mutex mu_;
  bool consuming_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace edge::kafka::internal

#endif  // EDGE_SRC_KAFKA_KAFKA_CONSUMER_H_
