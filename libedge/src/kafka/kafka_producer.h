// KafkaProducer: the publishing half of KafkaMessageBus (see its header for
// the guarantees). One thread owned by this object calls librdkafka's
// produce and poll, runs PublishDone callbacks and the drain listener, and
// rebuilds the producer after a fatal error.
#ifndef EDGE_SRC_KAFKA_KAFKA_PRODUCER_H_
#define EDGE_SRC_KAFKA_KAFKA_PRODUCER_H_

#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
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

namespace edge::kafka::internal {

class KafkaProducer {
 public:
  // Validates the configuration and creates the librdkafka producer.
  static absl::StatusOr<std::unique_ptr<KafkaProducer>> Create(
      const KafkaMessageBusOptions& options, Logger* logger);
  ~KafkaProducer();  // Shutdown(now) if still running.
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  void SetDrainListener(absl::AnyInvocable<void()> listener);
  void Start();
  void Publish(OutgoingRecord record, PublishDone done);
  bool Saturated() const;
  size_t Waiting() const;
  // Waits for every delivery report until `deadline`, then fails what is
  // left with CANCELLED and destroys the producer. Idempotent.
  void Shutdown(absl::Time deadline);

 private:
  struct Entry {
    OutgoingRecord record;
    PublishDone done;
    size_t bytes = 0;  // counted against capacity_bytes
  };
  struct Completion {
    PublishDone done;
    absl::Status status;
  };

  KafkaProducer(KafkaProperties properties, size_t capacity, size_t capacity_bytes, Logger* logger);
  bool FullLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseEntryLocked(std::map<uint64_t, Entry>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<rd_kafka_t*> NewHandle();
  void DestroyHandle();

  static void OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  static void OnQueueEvent(rd_kafka_t* rk, void* opaque);
  // `fatal`: the handle was in a fatal state when it reported `msg`.
  void HandleDelivery(const rd_kafka_message_t* msg, bool fatal);

  void Loop();
  void SendQueued();
  void Recover();
  void RunCompletions();
  void ReportResends();

  const KafkaProperties properties_;
  const size_t capacity_;
  const size_t capacity_bytes_;
  Logger* const logger_;
  ClientOpaque opaque_;

  // Owned by the producer thread once started (and by Shutdown after it
  // joined); the delivery and error callbacks run inside rd_kafka_poll on
  // that thread.
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* main_queue_ = nullptr;
  // Topics whose metadata each handle fetches as it is made (set by
  // Create), and their handles, released with rk_.
  std::vector<std::string> warm_topic_names_;
  std::vector<rd_kafka_topic_t*> warm_topics_;
  std::vector<Completion> ready_;                         // producer-thread only
  absl::Time last_resend_report_ = absl::InfinitePast();  // producer-thread only
  absl::AnyInvocable<void()> drain_listener_;             // set before Start

  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Records without a successful delivery report, by publish order.
  // Their nodes never move: librdkafka sends values and keys from them
  // (no copy) until the record's delivery report.
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  size_t entry_bytes_ ABSL_GUARDED_BY(mu_) = 0;            // sum of entries_' bytes
  std::deque<uint64_t> to_send_ ABSL_GUARDED_BY(mu_);      // not in librdkafka
  std::vector<Completion> rejected_ ABSL_GUARDED_BY(mu_);  // failed at Publish
  size_t resent_ ABSL_GUARDED_BY(mu_) = 0;                 // since the last report
  rd_kafka_resp_err_t last_resend_error_ ABSL_GUARDED_BY(mu_) = RD_KAFKA_RESP_ERR_NO_ERROR;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool fatal_ ABSL_GUARDED_BY(mu_) = false;
  bool saturated_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // failures now mean CANCELLED
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool discarding_ ABSL_GUARDED_BY(mu_) = false;  // old handle being torn down
  std::thread thread_;
};

}  // namespace edge::kafka::internal

#endif  // EDGE_SRC_KAFKA_KAFKA_PRODUCER_H_
