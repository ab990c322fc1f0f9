#include "edge/kafka/kafka_message_bus.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "kafka_consumer.h"
#include "kafka_producer.h"

namespace edge::kafka {

using internal::BuildConf;
using internal::ClientKind;
using internal::ConfPtr;
using internal::ConsumerProperties;
using internal::KafkaConsumer;
using internal::KafkaProducer;

absl::StatusOr<std::unique_ptr<KafkaMessageBus>> KafkaMessageBus::Create(
    KafkaMessageBusOptions options) {
  if (options.bootstrap_servers.empty()) {
    return absl::InvalidArgumentError("KafkaMessageBus: bootstrap_servers is empty");
  }
  if (options.capacity == 0) {
    return absl::InvalidArgumentError("KafkaMessageBus: capacity must be positive");
  }
  if (options.capacity_bytes == 0) {
    return absl::InvalidArgumentError("KafkaMessageBus: capacity_bytes must be positive");
  }
  if (options.commit_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("KafkaMessageBus: commit_interval must be positive");
  }
  if (options.max_outstanding_records == 0 || options.max_outstanding_bytes == 0) {
    return absl::InvalidArgumentError(
        "KafkaMessageBus: max_outstanding_records and max_outstanding_bytes must be positive");
  }
  if (options.partition_check_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("KafkaMessageBus: partition_check_interval must be positive");
  }
  // Check the consumer's configuration now, not at Start.
  absl::StatusOr<ConfPtr> consumer_conf =
      BuildConf(ConsumerProperties(options), ClientKind::kConsumer);
  if (!consumer_conf.ok()) return consumer_conf.status();
  Logger* logger = options.logger != nullptr ? options.logger : &Logger::Null();
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(options, logger);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<KafkaMessageBus>(
      new KafkaMessageBus(std::move(options), *std::move(producer)));
}

KafkaMessageBus::KafkaMessageBus(KafkaMessageBusOptions options,
                                 std::unique_ptr<KafkaProducer> producer)
    : options_(std::move(options)),
      logger_(options_.logger != nullptr ? *options_.logger : Logger::Null()),
      producer_(std::move(producer)) {}

KafkaMessageBus::~KafkaMessageBus() { Shutdown(absl::Now()); }

void KafkaMessageBus::Publish(OutgoingRecord record, PublishDone done) {
  producer_->Publish(std::move(record), std::move(done));
}

bool KafkaMessageBus::Saturated() const { return producer_->Saturated(); }

void KafkaMessageBus::SetDrainListener(absl::AnyInvocable<void()> listener) {
  producer_->SetDrainListener(std::move(listener));
}

absl::Status KafkaMessageBus::Subscribe(const std::string& topic, RecordHandler handler) {
  if (topic.empty()) return absl::InvalidArgumentError("Subscribe: topic name is empty");
  if (!handler) return absl::InvalidArgumentError("Subscribe: handler is empty");
  if (options_.group_id.empty()) {
    return absl::FailedPreconditionError("Subscribe: the bus has no group_id");
  }
  absl::MutexLock lock(&mu_);
  if (started_ || shut_down_) {
    return absl::FailedPreconditionError("Subscribe must be called before Start");
  }
  if (!handlers_.emplace(topic, std::move(handler)).second) {
    return absl::AlreadyExistsError(absl::StrCat("already subscribed to ", topic));
  }
  return absl::OkStatus();
}

absl::Status KafkaMessageBus::Start() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::FailedPreconditionError("message bus is shut down");
  if (started_) return absl::FailedPreconditionError("message bus already started");
  if (!handlers_.empty()) {
    absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
        KafkaConsumer::Create(options_, std::move(handlers_), &logger_);
    handlers_.clear();
    if (!consumer.ok()) return consumer.status();
    consumer_ = *std::move(consumer);
    KafkaProducer* producer = producer_.get();
    consumer_->SetHold([producer] { return producer->Saturated(); });
    consumer_->Start();
  }
  producer_->Start();
  started_ = true;
  logger_.Info("Kafka message bus started", {{"bootstrap_servers", options_.bootstrap_servers},
                                             {"group_id", options_.group_id}});
  return absl::OkStatus();
}

bool KafkaMessageBus::Reading() const {
  absl::MutexLock lock(&mu_);
  if (!started_ || shut_down_) return false;
  return consumer_ == nullptr || consumer_->Reading();
}

void KafkaMessageBus::StopConsuming() {
  absl::MutexLock lock(&mu_);
  if (consumer_) consumer_->StopConsuming();
}

void KafkaMessageBus::Shutdown(absl::Time deadline) {
  KafkaConsumer* consumer;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    consumer = consumer_.get();  // never replaced once set
  }
  // Outcomes first: settling a record may publish (a dead letter).
  if (consumer != nullptr) consumer->Shutdown(deadline);
  producer_->Shutdown(deadline);
}

}  // namespace edge::kafka
