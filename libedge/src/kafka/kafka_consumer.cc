#include "kafka/kafka_consumer.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::kafka {
namespace {

// Upper bound on how long the consumer thread takes to notice StopConsuming
// and Shutdown.
constexpr int kPollTimeoutMs = 100;

bool Cooperative(rd_kafka_t* rk) {
  return std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

std::vector<TopicPartition> ToVector(const rd_kafka_topic_partition_list_t* list) {
  std::vector<TopicPartition> out;
  for (int i = 0; i < list->cnt; ++i) {
    out.push_back({list->elems[i].topic, list->elems[i].partition});
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaConsumer>> KafkaConsumer::Create(
    const KafkaMessageBusOptions& options, std::map<std::string, RecordHandler> handlers,
    Logger* logger) {
  if (options.group_id.empty()) {
    return absl::InvalidArgumentError("Kafka consumer needs a group_id");
  }
  if (handlers.empty()) return absl::InvalidArgumentError("Kafka consumer has no topics");
  if (options.commit_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("commit_interval must be positive");
  }
  absl::StatusOr<ConfPtr> conf = BuildConf(ConsumerProperties(options), ClientKind::kConsumer);
  if (!conf.ok()) return conf.status();
  std::unique_ptr<KafkaConsumer> consumer(
      new KafkaConsumer(std::move(handlers), options.commit_interval, logger));
  SetClientOpaque(conf->get(), &consumer->opaque_);
  rd_kafka_conf_set_rebalance_cb(conf->get(), &KafkaConsumer::OnRebalance);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &KafkaConsumer::OnCommit);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaConsumer::OnError);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("creating Kafka consumer: ", errstr));
  }
  conf->release();
  consumer->rk_ = rk;
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics =
      rd_kafka_topic_partition_list_new(static_cast<int>(consumer->handlers_.size()));
  for (const auto& [topic, handler] : consumer->handlers_) {
    rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaErrorToStatus(err, "subscribe");
  return consumer;
}

KafkaConsumer::KafkaConsumer(std::map<std::string, RecordHandler> handlers,
                             absl::Duration commit_interval, Logger* logger)
    : handlers_(std::move(handlers)), commit_interval_(commit_interval), logger_(logger) {
  opaque_.logger = logger_;
  opaque_.owner = this;
}

KafkaConsumer::~KafkaConsumer() { Shutdown(absl::Now()); }

void KafkaConsumer::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || stopping_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void KafkaConsumer::SetHold(std::function<bool()> hold) {
  absl::MutexLock lock(&mu_);
  if (!started_) hold_ = std::move(hold);
}

void KafkaConsumer::StopConsuming() {
  absl::MutexLock lock(&mu_);
  consuming_ = false;
}

void KafkaConsumer::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaConsumer*>(static_cast<ClientOpaque*>(opaque)->owner);
  self->logger_->Warn("Kafka consumer error",
                      {{"error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))},
                       {"detail", reason}});
}

void KafkaConsumer::OnRebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  static_cast<KafkaConsumer*>(static_cast<ClientOpaque*>(opaque)->owner)
      ->HandleRebalance(err, partitions);
}

void KafkaConsumer::OnCommit(rd_kafka_t*, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  static_cast<KafkaConsumer*>(static_cast<ClientOpaque*>(opaque)->owner)
      ->HandleCommitResult(err, offsets);
}

void KafkaConsumer::HandleRebalance(rd_kafka_resp_err_t err,
                                    rd_kafka_topic_partition_list_t* partitions) {
  const bool cooperative = Cooperative(rk_);
  std::vector<TopicPartition> tps = ToVector(partitions);
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    for (const TopicPartition& tp : tps) tracker_->Assign(tp);
    if (cooperative) {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk_, partitions)) {
        logger_->Error("Kafka incremental assign failed", {{"detail", rd_kafka_error_string(e)}});
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk_, partitions);
    }
    if (paused_ || held_) rd_kafka_pause_partitions(rk_, partitions);
    logger_->Info("Kafka partitions assigned",
                  {{"count", absl::StrCat(tps.size())}, {"protocol", rd_kafka_rebalance_protocol(rk_)}});
    return;
  }
  // Revoked (or a rebalance error): commit what has an outcome, forget the
  // rest (its `done` is ignored; the next owner reads it again).
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    Commit(/*async=*/true, &tps);
  } else {
    logger_->Error("Kafka rebalance failed", {{"error", rd_kafka_err2name(err)}});
    Commit(/*async=*/true);
  }
  for (const TopicPartition& tp : tps) tracker_->Revoke(tp);
  if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk_, partitions)) {
      logger_->Error("Kafka incremental unassign failed", {{"detail", rd_kafka_error_string(e)}});
      rd_kafka_error_destroy(e);
    }
  } else {
    rd_kafka_assign(rk_, nullptr);
  }
  logger_->Info("Kafka partitions revoked", {{"count", absl::StrCat(tps.size())}});
}

void KafkaConsumer::HandleCommitResult(rd_kafka_resp_err_t err,
                                       rd_kafka_topic_partition_list_t* offsets) {
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET || offsets == nullptr) return;
  for (int i = 0; i < offsets->cnt; ++i) {
    const rd_kafka_topic_partition_t& p = offsets->elems[i];
    rd_kafka_resp_err_t perr = err != RD_KAFKA_RESP_ERR_NO_ERROR ? err : p.err;
    if (perr == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    tracker_->CommitFailed({p.topic, p.partition}, p.offset);
    logger_->Warn("Kafka offset commit failed; will retry",
                  {{"topic", p.topic},
                   {"partition", absl::StrCat(p.partition)},
                   {"error", rd_kafka_err2name(perr)}});
  }
}

void KafkaConsumer::Commit(bool async, const std::vector<TopicPartition>* only) {
  std::vector<PartitionPosition> positions = tracker_->TakeCommittable(only);
  if (positions.empty()) return;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(positions.size()));
  for (const PartitionPosition& p : positions) {
    rd_kafka_topic_partition_list_add(list, p.tp.topic.c_str(), p.tp.partition)->offset =
        p.offset;
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, async ? 1 : 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) HandleCommitResult(err, list);
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaConsumer::PauseAssignment() {
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_, &assignment) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_pause_partitions(rk_, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
  }
  paused_ = true;
}

void KafkaConsumer::ApplyHold() {
  const bool hold = hold_();
  if (hold == held_) return;
  held_ = hold;
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  // A paused partition resumes from the position of the last record handed
  // out: nothing fetched meanwhile is skipped.
  if (hold) {
    rd_kafka_pause_partitions(rk_, assignment);
  } else {
    rd_kafka_resume_partitions(rk_, assignment);
  }
  const int count = assignment->cnt;
  rd_kafka_topic_partition_list_destroy(assignment);
  logger_->Info(hold ? "event buffer full: consumed partitions paused"
                     : "event buffer drained: consumed partitions resumed",
                {{"partitions", absl::StrCat(count)}});
}

void KafkaConsumer::Loop() {
  absl::Time next_commit = absl::Now() + commit_interval_;
  while (true) {
    bool consuming;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      consuming = consuming_;
    }
    if (!consuming && !paused_) PauseAssignment();
    if (consuming && hold_) ApplyHold();
    if (rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, kPollTimeoutMs)) Dispatch(msg);
    absl::Time now = absl::Now();
    if (now >= next_commit) {
      Commit(/*async=*/true);
      next_commit = now + commit_interval_;
    }
  }
}

void KafkaConsumer::Dispatch(rd_kafka_message_t* msg) {
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      logger_->Warn("Kafka consume error",
                    {{"topic", msg->rkt != nullptr ? rd_kafka_topic_name(msg->rkt) : ""},
                     {"error", rd_kafka_err2name(msg->err)},
                     {"detail", rd_kafka_message_errstr(msg)}});
    }
    rd_kafka_message_destroy(msg);
    return;
  }
  {
    // Fetched but not handed out: never committed, so read again later.
    absl::MutexLock lock(&mu_);
    if (!consuming_) {
      rd_kafka_message_destroy(msg);
      return;
    }
  }
  IncomingRecord record;
  record.topic = rd_kafka_topic_name(msg->rkt);
  record.partition = msg->partition;
  record.offset = msg->offset;
  if (msg->key != nullptr) record.key.assign(static_cast<const char*>(msg->key), msg->key_len);
  if (msg->payload != nullptr) {
    record.value.assign(static_cast<const char*>(msg->payload), msg->len);
  }
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      record.headers.push_back(
          {name, value != nullptr ? std::string(static_cast<const char*>(value), size) : ""});
    }
  }
  rd_kafka_message_destroy(msg);

  auto handler = handlers_.find(record.topic);
  if (handler == handlers_.end()) {
    logger_->Error("Kafka record for a topic without handler", {{"topic", record.topic}});
    return;
  }
  TopicPartition tp{record.topic, record.partition};
  int64_t offset = record.offset;
  uint64_t generation = tracker_->Handed(tp, offset);
  std::shared_ptr<OffsetTracker> tracker = tracker_;
  handler->second(std::move(record), [tracker, tp, generation, offset]() {
    tracker->Done(tp, generation, offset);
  });
}

void KafkaConsumer::Shutdown(absl::Time deadline) {
  bool started;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || shut_down_) return;
    consuming_ = false;
    started = started_;
  }
  if (started && !tracker_->WaitAllDone(deadline)) {
    logger_->Warn("Kafka consumer shut down with records lacking an outcome; they will be "
                  "delivered again",
                  {{"count", absl::StrCat(tracker_->Outstanding())}});
  }
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (rk_ != nullptr) {
    Commit(/*async=*/true);
    tracker_->Close();
    // Leaves the group; the revoke it triggers waits for the commit above.
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      logger_->Warn("Kafka consumer close", {{"error", rd_kafka_err2name(err)}});
    }
    rd_kafka_destroy(rk_);
    rk_ = nullptr;
  }
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

}  // namespace edge::kafka
