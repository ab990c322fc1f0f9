#include "kafka_producer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::kafka::internal {
namespace {

// Safety net: the thread also wakes this often without being signalled.
constexpr absl::Duration kIdleWake = absl::Milliseconds(100);
// At shutdown, how long purged in-flight requests may take to report.
constexpr int kShutdownFlushMs = 500;
// Failed deliveries being sent again are logged at most this often.
constexpr absl::Duration kResendReportInterval = absl::Seconds(5);

absl::Status Cancelled(absl::string_view why) {
  return absl::CancelledError(absl::StrCat("message bus shut down: ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<KafkaProducer>> KafkaProducer::Create(
    const KafkaMessageBusOptions& options, Logger* logger) {
  if (options.capacity == 0) return absl::InvalidArgumentError("capacity must be positive");
  KafkaProperties props = ProducerProperties(options);
  absl::StatusOr<ConfPtr> check = BuildConf(props, ClientKind::kProducer);
  if (!check.ok()) return check.status();
  std::unique_ptr<KafkaProducer> producer(
      new KafkaProducer(std::move(props), options.capacity, options.capacity_bytes, logger));
  producer->warm_topic_names_ = options.warm_topics;
  absl::StatusOr<rd_kafka_t*> rk = producer->NewHandle();
  if (!rk.ok()) return rk.status();
  producer->rk_ = *rk;
  return producer;
}

KafkaProducer::KafkaProducer(KafkaProperties properties, size_t capacity, size_t capacity_bytes,
                             Logger* logger)
    : properties_(std::move(properties)),
      capacity_(capacity),
      capacity_bytes_(capacity_bytes),
      logger_(logger) {
  opaque_.logger = logger_;
  opaque_.owner = this;
}

KafkaProducer::~KafkaProducer() { Shutdown(absl::Now()); }

absl::StatusOr<rd_kafka_t*> KafkaProducer::NewHandle() {
  absl::StatusOr<ConfPtr> conf = BuildConf(properties_, ClientKind::kProducer);
  if (!conf.ok()) return conf.status();
  SetClientOpaque(conf->get(), &opaque_);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &KafkaProducer::OnDelivery);
  rd_kafka_conf_set_error_cb(conf->get(), &KafkaProducer::OnError);
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), errstr, sizeof(errstr));
  if (rk == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("creating Kafka producer: ", errstr));
  }
  conf->release();  // owned by rk now
  main_queue_ = rd_kafka_queue_get_main(rk);
  rd_kafka_queue_cb_event_enable(main_queue_, &KafkaProducer::OnQueueEvent, this);
  // A topic handle makes librdkafka fetch the topic's metadata now, in the
  // background, rather than when its first record waits for it.
  for (const std::string& topic : warm_topic_names_) {
    if (rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr)) {
      warm_topics_.push_back(rkt);
    }
  }
  return rk;
}

void KafkaProducer::DestroyHandle() {
  if (rk_ == nullptr) return;
  for (rd_kafka_topic_t* rkt : warm_topics_) rd_kafka_topic_destroy(rkt);
  warm_topics_.clear();
  if (main_queue_ != nullptr) {
    rd_kafka_queue_cb_event_enable(main_queue_, nullptr, nullptr);
    rd_kafka_queue_destroy(main_queue_);
    main_queue_ = nullptr;
  }
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
}

void KafkaProducer::SetDrainListener(absl::AnyInvocable<void()> listener) {
  absl::MutexLock lock(&mu_);
  if (!started_) drain_listener_ = std::move(listener);
}

void KafkaProducer::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || shut_down_) return;
  started_ = true;
  thread_ = std::thread([this] { Loop(); });
}

void KafkaProducer::Publish(OutgoingRecord record, PublishDone done) {
  if (!done) done = [](absl::Status) {};
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      wake_ = true;
      if (record.topic.empty()) {
        rejected_.push_back(
            {std::move(done), absl::InvalidArgumentError("Publish: record has no topic")});
        return;
      }
      uint64_t id = next_id_++;
      size_t bytes = record.topic.size() + record.key.size() + record.value.size();
      for (const RecordHeader& h : record.headers) bytes += h.key.size() + h.value.size();
      entries_.emplace(id, Entry{std::move(record), std::move(done), bytes});
      entry_bytes_ += bytes;
      to_send_.push_back(id);
      if (FullLocked()) saturated_ = true;
      return;
    }
  }
  done(Cancelled("publish after shutdown"));
}

bool KafkaProducer::Saturated() const {
  absl::MutexLock lock(&mu_);
  return FullLocked();
}

void KafkaProducer::EraseEntryLocked(std::map<uint64_t, Entry>::iterator it) {
  entry_bytes_ -= it->second.bytes;
  entries_.erase(it);
}

bool KafkaProducer::FullLocked() const {
  return entries_.size() >= capacity_ || entry_bytes_ >= capacity_bytes_;
}

size_t KafkaProducer::Waiting() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void KafkaProducer::OnQueueEvent(rd_kafka_t*, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(opaque);
  absl::MutexLock lock(&self->mu_);
  self->wake_ = true;
}

void KafkaProducer::OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaProducer*>(static_cast<ClientOpaque*>(opaque)->owner);
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (code == RD_KAFKA_RESP_ERR__FATAL) {
    absl::MutexLock lock(&self->mu_);
    self->fatal_ = true;
    self->wake_ = true;
  }
  self->logger_->Warn("Kafka producer error",
                      {{"error", rd_kafka_err2name(code)}, {"detail", reason}});
}

void KafkaProducer::OnDelivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque) {
  // librdkafka raises a fatal error before it fails the records it still
  // holds, with the fatal error's own code (CLUSTER_AUTHORIZATION_FAILED
  // when the producer id is refused). Such a failure says nothing about the
  // record: it is sent again by the rebuilt producer. Read here, on the
  // handle that reported, so the order in which the error callback and
  // the delivery reports run does not matter.
  const bool fatal = msg->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                     rd_kafka_fatal_error(rk, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR;
  static_cast<KafkaProducer*>(static_cast<ClientOpaque*>(opaque)->owner)
      ->HandleDelivery(msg, fatal);
}

void KafkaProducer::HandleDelivery(const rd_kafka_message_t* msg, bool fatal) {
  auto id = reinterpret_cast<uintptr_t>(msg->_private);
  absl::MutexLock lock(&mu_);
  if (fatal) {
    fatal_ = true;
    wake_ = true;
  }
  if (discarding_) return;
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ready_.push_back({std::move(it->second.done), absl::OkStatus()});
    EraseEntryLocked(it);
    return;
  }
  std::string context = absl::StrCat("publish to ", it->second.record.topic);
  if (closing_) {
    ready_.push_back(
        {std::move(it->second.done), Cancelled(KafkaErrorToStatus(msg->err, context).message())});
    EraseEntryLocked(it);
  } else if (!fatal && IsPermanentDeliveryError(msg->err)) {
    absl::Status status = KafkaErrorToStatus(msg->err, context);
    logger_->Error("Kafka record rejected", {{"detail", status.message()}});
    ready_.push_back({std::move(it->second.done), std::move(status)});
    EraseEntryLocked(it);
  } else {
    // Retriable (timed out while the broker was away, purged by a
    // recovery, ...): send it again. Reported in a summary by the loop.
    ++resent_;
    last_resend_error_ = msg->err;
    to_send_.push_back(id);
    wake_ = true;
  }
}

void KafkaProducer::Loop() {
  while (true) {
    bool fatal;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&woken), kIdleWake);
      if (stopping_) return;
      wake_ = false;
      fatal = fatal_;
    }
    if (fatal) Recover();
    SendQueued();
    if (rk_ != nullptr) rd_kafka_poll(rk_, 0);
    RunCompletions();
    ReportResends();
  }
}

void KafkaProducer::ReportResends() {
  absl::Time now = absl::Now();
  if (now - last_resend_report_ < kResendReportInterval) return;
  size_t resent;
  rd_kafka_resp_err_t error;
  {
    absl::MutexLock lock(&mu_);
    resent = resent_;
    error = last_resend_error_;
    resent_ = 0;
  }
  if (resent == 0) return;
  last_resend_report_ = now;
  logger_->Warn("Kafka deliveries failed; sending them again",
                {{"count", absl::StrCat(resent)}, {"last_error", rd_kafka_err2name(error)}});
}

void KafkaProducer::SendQueued() {
  if (rk_ == nullptr) return;
  while (true) {
    uint64_t id;
    const Entry* entry;
    {
      absl::MutexLock lock(&mu_);
      if (to_send_.empty() || fatal_) return;
      id = to_send_.front();
      auto it = entries_.find(id);
      if (it == entries_.end()) {
        to_send_.pop_front();
        continue;
      }
      // Only this thread erases entries, so the node stays valid unlocked.
      entry = &it->second;
    }
    const OutgoingRecord& r = entry->record;
    rd_kafka_headers_t* headers = nullptr;
    if (!r.headers.empty()) {
      headers = rd_kafka_headers_new(r.headers.size());
      for (const RecordHeader& h : r.headers) {
        rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                            h.value.data(), static_cast<ssize_t>(h.value.size()));
      }
    }
    rd_kafka_vu_t vus[6];
    size_t n = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[n++].u.cstr = r.topic.c_str();
    if (!r.key.empty()) {
      vus[n].vtype = RD_KAFKA_VTYPE_KEY;
      vus[n].u.mem.ptr = const_cast<char*>(r.key.data());
      vus[n++].u.mem.size = r.key.size();
    }
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = const_cast<char*>(r.value.data());
    vus[n++].u.mem.size = r.value.size();
    // No copy: the entry keeps the value until the delivery report, so a
    // record is held once, and capacity_bytes bounds what is held.
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = 0;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = reinterpret_cast<void*>(static_cast<uintptr_t>(id));
    if (headers != nullptr) {
      vus[n].vtype = RD_KAFKA_VTYPE_HEADERS;
      vus[n++].u.headers = headers;
    }
    rd_kafka_error_t* error = rd_kafka_produceva(rk_, vus, n);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (error != nullptr) {
      // After a fatal error produce refuses every record with the fatal
      // error's own code (CLUSTER_AUTHORIZATION_FAILED, say), flagged fatal;
      // that may happen before the error callback ran. The record is not at
      // fault: rebuild and send it again.
      err = rd_kafka_error_is_fatal(error) ? RD_KAFKA_RESP_ERR__FATAL : rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
      if (headers != nullptr) rd_kafka_headers_destroy(headers);
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return;  // retried after reports
    absl::MutexLock lock(&mu_);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      to_send_.pop_front();
      continue;
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      fatal_ = true;
      wake_ = true;
      return;
    }
    if (IsPermanentDeliveryError(err)) {
      to_send_.pop_front();
      auto it = entries_.find(id);
      absl::Status status = KafkaErrorToStatus(err, absl::StrCat("publish to ", r.topic));
      logger_->Error("Kafka record rejected", {{"detail", status.message()}});
      ready_.push_back({std::move(it->second.done), std::move(status)});
      EraseEntryLocked(it);
      continue;
    }
    // Not now (e.g. the topic is not known yet): keep the order, try again
    // on the next wake-up.
    logger_->Warn("Kafka produce deferred",
                  {{"topic", r.topic}, {"error", rd_kafka_err2name(err)}});
    return;
  }
}

void KafkaProducer::Recover() {
  if (rk_ != nullptr) {
    char reason[512] = "";
    rd_kafka_resp_err_t cause = rd_kafka_fatal_error(rk_, reason, sizeof(reason));
    logger_->Error(
        "Kafka producer failed fatally; rebuilding it and sending again every "
        "record without a delivery report",
        {{"error", rd_kafka_err2name(cause)}, {"detail", reason}});
    // Collect reports for what did get stored before dropping the handle.
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk_, 0);
    {
      absl::MutexLock lock(&mu_);
      discarding_ = true;
    }
    DestroyHandle();
  }
  absl::StatusOr<rd_kafka_t*> rk = NewHandle();
  absl::MutexLock lock(&mu_);
  discarding_ = false;
  to_send_.clear();
  for (const auto& [id, entry] : entries_) to_send_.push_back(id);
  if (!rk.ok()) {
    logger_->Error("Kafka producer could not be rebuilt; retrying",
                   {{"detail", rk.status().message()}});
    return;  // fatal_ stays set: the next wake-up tries again
  }
  rk_ = *rk;
  fatal_ = false;
}

void KafkaProducer::RunCompletions() {
  std::vector<Completion> run = std::move(ready_);
  ready_.clear();
  bool drained = false;
  {
    absl::MutexLock lock(&mu_);
    for (Completion& c : rejected_) run.push_back(std::move(c));
    rejected_.clear();
  }
  for (Completion& c : run) c.done(std::move(c.status));
  {
    absl::MutexLock lock(&mu_);
    if (saturated_ && !FullLocked() && !closing_) {
      saturated_ = false;
      drained = true;
    }
  }
  if (drained && drain_listener_) drain_listener_();
}

void KafkaProducer::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || shut_down_) return;
    if (started_) {
      auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return entries_.empty() && rejected_.empty();
      };
      mu_.AwaitWithDeadline(absl::Condition(&settled), deadline);
    }
    closing_ = true;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  if (rk_ != nullptr) {
    // Whatever librdkafka still holds reports now (stored, or purged).
    rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_, kShutdownFlushMs);
    {
      absl::MutexLock lock(&mu_);
      discarding_ = true;
    }
    DestroyHandle();
  }
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, entry] : entries_) {
      ready_.push_back(
          {std::move(entry.done), Cancelled(absl::StrCat("record for ", entry.record.topic,
                                                         " not stored before the deadline"))});
    }
    entries_.clear();
    entry_bytes_ = 0;
    to_send_.clear();
    shut_down_ = true;
  }
  RunCompletions();
}

}  // namespace edge::kafka::internal
