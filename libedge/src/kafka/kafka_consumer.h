// KafkaConsumer: the consuming half of KafkaMessageBus (see its header for
// the guarantees). One thread owned by this object polls the group consumer,
// runs rebalances, hands records to the handlers and commits positions
// tracked by an OffsetTracker.
#ifndef EDGE_SRC_KAFKA_KAFKA_CONSUMER_H_
#define EDGE_SRC_KAFKA_KAFKA_CONSUMER_H_

#include <librdkafka/rdkafka.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/kafka_message_bus.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "kafka/kafka_config.h"
#include "kafka/offset_tracker.h"

namespace edge::kafka {

class KafkaConsumer {
 public:
  // Creates the group consumer and subscribes it to the handlers' topics.
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
  void StopConsuming();
  // Waits for the outcome of every handed-out record until `deadline`,
  // commits, leaves the group and destroys the consumer. Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  KafkaConsumer(std::map<std::string, RecordHandler> handlers, absl::Duration commit_interval,
                Logger* logger);

  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* partitions, void* opaque);
  static void OnCommit(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  void HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions);
  void HandleCommitResult(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets);
  void Loop();
  void Dispatch(rd_kafka_message_t* msg);
  // Commits advanced positions (of `only`, when given).
  void Commit(bool async, const std::vector<TopicPartition>* only = nullptr);
  void PauseAssignment();
  // Pauses or resumes the assignment as hold_ says (backpressure).
  void ApplyHold();

  std::map<std::string, RecordHandler> handlers_;  // consumer thread only
  const absl::Duration commit_interval_;
  Logger* const logger_;
  ClientOpaque opaque_;
  const std::shared_ptr<OffsetTracker> tracker_ = std::make_shared<OffsetTracker>();

  rd_kafka_t* rk_ = nullptr;  // consumer thread, then Shutdown after join
  bool paused_ = false;       // consumer thread only
  std::function<bool()> hold_;  // set before Start
  bool held_ = false;           // consumer thread only

  mutable absl::Mutex mu_;
  bool consuming_ ABSL_GUARDED_BY(mu_) = true;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace edge::kafka

#endif  // EDGE_SRC_KAFKA_KAFKA_CONSUMER_H_
