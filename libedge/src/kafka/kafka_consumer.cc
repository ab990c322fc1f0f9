#include "kafka_consumer.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::kafka::internal {
namespace {

// Upper bound on how long the consumer thread takes to notice StopConsuming
// and Shutdown.
constexpr int kPollTimeoutMs = 100;
// Cluster requests made at start (metadata, committed positions, watermarks).
constexpr int kRequestTimeoutMs = 2000;
// Between attempts to assign while the cluster cannot answer.
constexpr absl::Duration kAssignRetry = absl::Milliseconds(200);

// A record's outcome: running it marks the record done; destroying it unrun
// abandons the record (no outcome: never committed past, not waited for).
class Outcome {
 public:
  Outcome(std::shared_ptr<OffsetTracker> tracker, TopicPartition tp, uint64_t generation,
          int64_t offset)
      : tracker_(std::move(tracker)),
        tp_(std::move(tp)),
        generation_(generation),
        offset_(offset) {}
  Outcome(const Outcome&) = delete;
  Outcome& operator=(const Outcome&) = delete;
  ~Outcome() {
    if (!ran_) tracker_->Abandon(tp_, generation_, offset_);
  }
  void Run() {
    if (ran_) return;
    ran_ = true;
    tracker_->Done(tp_, generation_, offset_);
  }

 private:
  const std::shared_ptr<OffsetTracker> tracker_;
  const TopicPartition tp_;
  const uint64_t generation_;
  const int64_t offset_;
  bool ran_ = false;
};

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
  std::unique_ptr<KafkaConsumer> consumer(new KafkaConsumer(options, std::move(handlers), logger));
  // auto.offset.reset decides where a partition without a committed
  // position starts; the consumer applies it itself and has librdkafka
  // report every other reset (a position the broker no longer has) as an
  // error, so that none passes silently.
  char reset[32] = "";
  size_t reset_size = sizeof(reset);
  rd_kafka_topic_conf_t* topic_conf = rd_kafka_conf_get_default_topic_conf(conf->get());
  if (topic_conf != nullptr && rd_kafka_topic_conf_get(topic_conf, "auto.offset.reset", reset,
                                                       &reset_size) == RD_KAFKA_CONF_OK) {
    absl::string_view policy(reset);
    if (policy == "latest" || policy == "largest" || policy == "end") {
      consumer->start_at_ = RD_KAFKA_OFFSET_END;
    }
  }
  char errstr[512];
  for (const auto& [name, value] :
       {std::pair<const char*, const char*>{"auto.offset.reset", "error"},
        {"enable.partition.eof", "true"}}) {
    if (rd_kafka_conf_set(conf->get(), name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      return absl::InternalError(absl::StrCat("Kafka consumer property ", name, ": ", errstr));
    }
  }
  SetClientOpaque(conf->get(), &consumer->opaque_);
  rd_kafka_conf_set_offset_commit_cb(conf->get(), &KafkaConsumer::OnCommit);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaConsumer::OnError);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("creating Kafka consumer: ", errstr));
  }
  conf->release();
  consumer->rk_ = rk;
  rd_kafka_poll_set_consumer(rk);
  return consumer;
}

KafkaConsumer::KafkaConsumer(const KafkaMessageBusOptions& options,
                             std::map<std::string, RecordHandler> handlers, Logger* logger)
    : handlers_(std::move(handlers)),
      commit_interval_(options.commit_interval),
      max_outstanding_records_(options.max_outstanding_records),
      max_outstanding_bytes_(options.max_outstanding_bytes),
      partition_check_interval_(options.partition_check_interval),
      on_offset_reset_(options.on_offset_reset),
      logger_(logger) {
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

bool KafkaConsumer::Stopping() {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

void KafkaConsumer::OnError(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaConsumer*>(static_cast<ClientOpaque*>(opaque)->owner);
  self->logger_->Warn(
      "Kafka consumer error",
      {{"error", rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))}, {"detail", reason}});
}

void KafkaConsumer::OnCommit(rd_kafka_t*, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  static_cast<KafkaConsumer*>(static_cast<ClientOpaque*>(opaque)->owner)
      ->HandleCommitResult(err, offsets);
}

bool KafkaConsumer::AssignNewPartitions() {
  rd_kafka_topic_partition_list_t* fresh = rd_kafka_topic_partition_list_new(4);
  bool complete = true;
  for (const auto& [topic, handler] : handlers_) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 0, rkt, &md, kRequestTimeoutMs);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || md == nullptr || md->topic_cnt != 1 ||
        md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR || md->topics[0].partition_cnt == 0) {
      rd_kafka_resp_err_t why = err != RD_KAFKA_RESP_ERR_NO_ERROR ? err
                                : md != nullptr && md->topic_cnt == 1
                                    ? md->topics[0].err
                                    : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
      logger_->Debug("Kafka topic not readable yet",
                     {{"topic", topic}, {"error", rd_kafka_err2name(why)}});
      complete = false;
    } else {
      for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
        TopicPartition tp{topic, md->topics[0].partitions[i].id};
        if (!assigned_.count(tp)) {
          rd_kafka_topic_partition_list_add(fresh, topic.c_str(), tp.partition);
        }
      }
    }
    if (md != nullptr) rd_kafka_metadata_destroy(md);
  }
  if (fresh->cnt == 0) {
    rd_kafka_topic_partition_list_destroy(fresh);
    return complete;
  }
  // The group's committed positions; partitions without one start at
  // start_at_.
  rd_kafka_resp_err_t err = rd_kafka_committed(rk_, fresh, kRequestTimeoutMs);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    logger_->Debug("Kafka committed positions not known yet", {{"error", rd_kafka_err2name(err)}});
    rd_kafka_topic_partition_list_destroy(fresh);
    return false;
  }
  for (int i = 0; i < fresh->cnt; ++i) {
    rd_kafka_topic_partition_t& p = fresh->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR || p.offset < 0) p.offset = start_at_;
    p.err = RD_KAFKA_RESP_ERR_NO_ERROR;
  }
  rd_kafka_error_t* error = rd_kafka_incremental_assign(rk_, fresh);
  if (error != nullptr) {
    logger_->Error("Kafka assign failed", {{"detail", rd_kafka_error_string(error)}});
    rd_kafka_error_destroy(error);
    rd_kafka_topic_partition_list_destroy(fresh);
    return false;
  }
  for (int i = 0; i < fresh->cnt; ++i) {
    TopicPartition tp{fresh->elems[i].topic, fresh->elems[i].partition};
    tracker_->Assign(tp);
    assigned_.insert(tp);
    unanswered_.insert(tp);
  }
  if (Paused()) rd_kafka_pause_partitions(rk_, fresh);
  logger_->Info("Kafka partitions assigned", {{"count", absl::StrCat(fresh->cnt)}});
  rd_kafka_topic_partition_list_destroy(fresh);
  return complete;
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

void KafkaConsumer::Commit(bool async) {
  std::vector<PartitionPosition> positions = tracker_->TakeCommittable();
  if (positions.empty()) return;
  rd_kafka_topic_partition_list_t* list =
      rd_kafka_topic_partition_list_new(static_cast<int>(positions.size()));
  for (const PartitionPosition& p : positions) {
    rd_kafka_topic_partition_list_add(list, p.tp.topic.c_str(), p.tp.partition)->offset = p.offset;
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_, list, async ? 1 : 0);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) HandleCommitResult(err, list);
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaConsumer::SetPaused(bool paused) {
  rd_kafka_topic_partition_list_t* assignment = nullptr;
  if (rd_kafka_assignment(rk_, &assignment) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (paused) {
    rd_kafka_pause_partitions(rk_, assignment);
  } else {
    rd_kafka_resume_partitions(rk_, assignment);
  }
  rd_kafka_topic_partition_list_destroy(assignment);
}

void KafkaConsumer::Throttle() {
  const size_t records = tracker_->Outstanding();
  const size_t bytes = tracker_->OutstandingBytes();
  if (!throttled_ && (records > max_outstanding_records_ || bytes > max_outstanding_bytes_)) {
    SetPauseReason(&throttled_, true);
    logger_->Warn("Kafka consumer paused: too many commands wait for their outcome",
                  {{"records", absl::StrCat(records)}, {"bytes", absl::StrCat(bytes)}});
  } else if (throttled_ && records <= max_outstanding_records_ / 2 &&
             bytes <= max_outstanding_bytes_ / 2) {
    SetPauseReason(&throttled_, false);
    logger_->Info("Kafka consumer resumed",
                  {{"records", absl::StrCat(records)}, {"bytes", absl::StrCat(bytes)}});
  }
}

void KafkaConsumer::SetPauseReason(bool* reason, bool on) {
  const bool was_paused = Paused();
  *reason = on;
  // A paused partition resumes from the position of the last record handed
  // out: nothing fetched meanwhile is skipped.
  if (Paused() != was_paused) SetPaused(Paused());
}

void KafkaConsumer::ApplyHold() {
  const bool hold = hold_();
  if (hold == held_) return;
  SetPauseReason(&held_, hold);
  logger_->Info(hold ? "event buffer full: consumed partitions paused"
                     : "event buffer drained: consumed partitions resumed",
                {{"partitions", absl::StrCat(assigned_.size())}});
}

void KafkaConsumer::Loop() {
  absl::Time next_check = absl::InfinitePast();
  absl::Time next_commit = absl::Now() + commit_interval_;
  while (true) {
    bool consuming;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      consuming = consuming_;
    }
    if (!consuming && !stopped_fetching_) SetPauseReason(&stopped_fetching_, true);
    if (consuming && hold_) ApplyHold();
    absl::Time now = absl::Now();
    if (now >= next_check && consuming) {
      // Until every topic is assigned, retry soon; then look for added
      // partitions now and then.
      // Once every topic was assigned, a later failed check (the broker
      // away for a moment) does not make the consumer unready.
      const bool complete = AssignNewPartitions();
      all_topics_assigned_ = all_topics_assigned_ || complete;
      next_check = now + (complete ? partition_check_interval_ : kAssignRetry);
      UpdateReading();
    }
    if (rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk_, kPollTimeoutMs)) Dispatch(msg);
    Throttle();
    now = absl::Now();
    if (now >= next_commit) {
      Commit(/*async=*/true);
      next_commit = now + commit_interval_;
    }
  }
}

void KafkaConsumer::Answered(const TopicPartition& tp) {
  if (unanswered_.erase(tp) > 0) UpdateReading();
}

void KafkaConsumer::UpdateReading() {
  const bool reading = all_topics_assigned_ && unanswered_.empty() && !assigned_.empty();
  if (reading == reading_.load(std::memory_order_relaxed)) return;
  reading_.store(reading, std::memory_order_release);
  if (reading) {
    logger_->Info("Kafka consumer reading", {{"partitions", absl::StrCat(assigned_.size())}});
  }
}

void KafkaConsumer::HandleOffsetReset(const TopicPartition& tp, int64_t offset,
                                      const char* detail) {
  int64_t low = RD_KAFKA_OFFSET_BEGINNING;
  int64_t high = 0;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk_, tp.topic.c_str(), tp.partition,
                                                             &low, &high, kRequestTimeoutMs);
  int64_t skipped = 0;
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && offset >= 0 && offset < low) skipped = low - offset;
  logger_->Error(
      "Kafka consumer position no longer on the broker: commands were skipped",
      {{"topic", tp.topic},
       {"partition", absl::StrCat(tp.partition)},
       {"position", absl::StrCat(offset)},
       {"oldest_available", err == RD_KAFKA_RESP_ERR_NO_ERROR ? absl::StrCat(low) : "unknown"},
       {"newest_available", err == RD_KAFKA_RESP_ERR_NO_ERROR ? absl::StrCat(high) : "unknown"},
       {"skipped", absl::StrCat(skipped)},
       {"detail", detail}});
  if (on_offset_reset_) on_offset_reset_(tp.topic, tp.partition, skipped);
  // Read on from the oldest record left: nothing more is lost, and a
  // position past the end (a recreated topic) rereads rather than skips.
  // The partition's fetcher stopped on the error; assigning it again at the
  // new position restarts it.
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, tp.topic.c_str(), tp.partition)->offset =
      err == RD_KAFKA_RESP_ERR_NO_ERROR ? low : RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk_, list);
  if (e == nullptr) e = rd_kafka_incremental_assign(rk_, list);
  if (e != nullptr) {
    logger_->Error("Kafka reassign after an offset reset failed",
                   {{"detail", rd_kafka_error_string(e)}});
    rd_kafka_error_destroy(e);
  } else if (Paused()) {
    rd_kafka_pause_partitions(rk_, list);
  }
  rd_kafka_topic_partition_list_destroy(list);
}

void KafkaConsumer::Dispatch(rd_kafka_message_t* msg) {
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* topic = msg->rkt != nullptr ? rd_kafka_topic_name(msg->rkt) : "";
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      Answered({topic, msg->partition});
    } else if (msg->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && msg->rkt != nullptr) {
      HandleOffsetReset({topic, msg->partition}, msg->offset, rd_kafka_message_errstr(msg));
      Answered({topic, msg->partition});
    } else {
      logger_->Warn("Kafka consume error", {{"topic", topic},
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
  size_t bytes = record.key.size() + record.value.size();
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(msg, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      record.headers.push_back(
          {name, value != nullptr ? std::string(static_cast<const char*>(value), size) : ""});
      bytes += record.headers.back().key.size() + record.headers.back().value.size();
    }
  }
  rd_kafka_message_destroy(msg);

  TopicPartition tp{record.topic, record.partition};
  Answered(tp);
  auto handler = handlers_.find(record.topic);
  if (handler == handlers_.end()) {
    logger_->Error("Kafka record for a topic without handler", {{"topic", record.topic}});
    return;
  }
  int64_t offset = record.offset;
  uint64_t generation = tracker_->Handed(tp, offset, bytes);
  auto outcome = std::make_unique<Outcome>(tracker_, tp, generation, offset);
  handler->second(std::move(record), [outcome = std::move(outcome)]() { outcome->Run(); });
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
    logger_->Warn(
        "Kafka consumer shut down with records lacking an outcome; they will be "
        "delivered again",
        {{"count", absl::StrCat(tracker_->Outstanding())}});
  }
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (rk_ != nullptr) {
    // Closing the client waits for this commit to complete.
    Commit(/*async=*/true);
    tracker_->Close();
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

}  // namespace edge::kafka::internal
