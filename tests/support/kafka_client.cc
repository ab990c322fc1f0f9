#include "support/kafka_client.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"

namespace edge::testing {
namespace {

using Properties = std::vector<std::pair<std::string, std::string>>;

absl::StatusOr<rd_kafka_conf_t*> NewConf(const Properties& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat("Kafka property ", name, ": ", errstr));
    }
  }
  // Broker outages are what tests inject; the test reports what matters.
  rd_kafka_conf_set_log_cb(conf, [](const rd_kafka_t*, int, const char*, const char*) {});
  return conf;
}

absl::Status KafkaError(rd_kafka_resp_err_t err, absl::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(what, ": ", rd_kafka_err2str(err)));
}

// A record's headers, in order; a header without a value has value "".
std::vector<RecordHeader> Headers(rd_kafka_message_t* message) {
  std::vector<RecordHeader> headers;
  rd_kafka_headers_t* all = nullptr;
  if (rd_kafka_message_headers(message, &all) != RD_KAFKA_RESP_ERR_NO_ERROR) return headers;
  const char* name;
  const void* value;
  size_t size;
  for (size_t i = 0;
       rd_kafka_header_get_all(all, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    headers.push_back({name, value == nullptr
                                 ? std::string()
                                 : std::string(static_cast<const char*>(value), size)});
  }
  return headers;
}

int ToMillis(absl::Duration d) {
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(d)));
}

}  // namespace

// Delivery reports, counted by the producer's callback (called from
// rd_kafka_poll/flush on the producing thread).
struct KafkaClient::Deliveries {
  absl::Mutex mu;
  int64_t delivered ABSL_GUARDED_BY(mu) = 0;
  int64_t failed ABSL_GUARDED_BY(mu) = 0;
  std::string first_error ABSL_GUARDED_BY(mu);
};

absl::StatusOr<std::unique_ptr<KafkaClient>> KafkaClient::Create(std::string bootstrap_servers) {
  auto conf = NewConf({{"bootstrap.servers", bootstrap_servers},
                       {"client.id", "edge-test-backend"},
                       {"enable.idempotence", "true"},
                       {"acks", "all"},
                       {"linger.ms", "2"},
                       {"partitioner", "murmur2_random"},
                       {"message.max.bytes", "8388608"}});
  if (!conf.ok()) return conf.status();
  auto deliveries = std::make_unique<Deliveries>();
  rd_kafka_conf_set_opaque(*conf, deliveries.get());
  rd_kafka_conf_set_dr_msg_cb(*conf,
                              [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                                auto* d = static_cast<Deliveries*>(opaque);
                                absl::MutexLock lock(&d->mu);
                                if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
                                  ++d->delivered;
                                } else {
                                  ++d->failed;
                                  if (d->first_error.empty())
                                    d->first_error = rd_kafka_err2str(message->err);
                                }
                              });
  char errstr[512];
  rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, *conf, errstr, sizeof(errstr));
  if (producer == nullptr) {
    rd_kafka_conf_destroy(*conf);
    return absl::InternalError(absl::StrCat("creating the Kafka producer: ", errstr));
  }
  return std::unique_ptr<KafkaClient>(
      new KafkaClient(std::move(bootstrap_servers), producer, std::move(deliveries)));
}

KafkaClient::KafkaClient(std::string bootstrap_servers, rd_kafka_t* producer,
                         std::unique_ptr<Deliveries> deliveries)
    : bootstrap_servers_(std::move(bootstrap_servers)),
      producer_(producer),
      deliveries_(std::move(deliveries)) {}

KafkaClient::~KafkaClient() {
  rd_kafka_flush(producer_, 5000);
  rd_kafka_destroy(producer_);
}

absl::Status KafkaClient::Produce(const std::string& topic, const std::string& key,
                                  const std::string& value, absl::Duration timeout) {
  return ProduceAll(topic, {{key, value}}, timeout);
}

absl::Status KafkaClient::ProduceWithHeaders(const std::string& topic, const std::string& key,
                                             const std::string& value,
                                             const std::vector<RecordHeader>& headers,
                                             absl::Duration timeout) {
  int64_t delivered_before;
  {
    absl::MutexLock lock(&deliveries_->mu);
    delivered_before = deliveries_->delivered;
  }
  rd_kafka_headers_t* list = rd_kafka_headers_new(headers.size());
  for (const RecordHeader& h : headers) {
    rd_kafka_header_add(list, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  }
  rd_kafka_resp_err_t err = rd_kafka_producev(
      producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_HEADERS(list),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(list);  // Owned by the record only once produced.
    return KafkaError(err, absl::StrCat("producing to ", topic));
  }
  rd_kafka_resp_err_t flushed = rd_kafka_flush(producer_, ToMillis(timeout));
  absl::MutexLock lock(&deliveries_->mu);
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR || deliveries_->delivered == delivered_before) {
    return absl::UnavailableError(
        absl::StrCat("record to ", topic, " not delivered: ", deliveries_->first_error));
  }
  return absl::OkStatus();
}

absl::Status KafkaClient::ProduceAll(
    const std::string& topic, const std::vector<std::pair<std::string, std::string>>& records,
    absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  int64_t delivered_before;
  int64_t failed_before;
  {
    absl::MutexLock lock(&deliveries_->mu);
    delivered_before = deliveries_->delivered;
    failed_before = deliveries_->failed;
  }
  for (const auto& [key, value] : records) {
    while (true) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || absl::Now() >= deadline) {
        return KafkaError(err, absl::StrCat("producing to ", topic));
      }
      rd_kafka_poll(producer_, 10);  // Serve delivery reports to make room.
    }
    rd_kafka_poll(producer_, 0);
  }
  rd_kafka_resp_err_t flushed = rd_kafka_flush(producer_, ToMillis(deadline - absl::Now()));
  absl::MutexLock lock(&deliveries_->mu);
  int64_t failed = deliveries_->failed - failed_before;
  int64_t delivered = deliveries_->delivered - delivered_before;
  if (failed > 0) {
    return absl::UnavailableError(absl::StrCat(failed, " of ", records.size(), " records to ",
                                               topic, " failed: ", deliveries_->first_error));
  }
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR || delivered < static_cast<int64_t>(records.size())) {
    return absl::DeadlineExceededError(absl::StrCat("only ", delivered, " of ", records.size(),
                                                    " records to ", topic, " delivered in time"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TopicReader>> TopicReader::Create(
    const std::string& bootstrap_servers, const std::string& topic, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  auto conf = NewConf({{"bootstrap.servers", bootstrap_servers},
                       {"client.id", "edge-test-reader"},
                       // Required by librdkafka even though no group is joined.
                       {"group.id", "edge-test-reader"},
                       {"enable.auto.commit", "false"},
                       {"fetch.wait.max.ms", "10"},
                       {"fetch.message.max.bytes", "8388608"}});
  if (!conf.ok()) return conf.status();
  char errstr[512];
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, *conf, errstr, sizeof(errstr));
  if (consumer == nullptr) {
    rd_kafka_conf_destroy(*conf);
    return absl::InternalError(absl::StrCat("creating the Kafka consumer: ", errstr));
  }
  int partitions = 0;
  while (partitions == 0) {
    rd_kafka_topic_t* handle = rd_kafka_topic_new(consumer, topic.c_str(), nullptr);
    const rd_kafka_metadata_t* metadata = nullptr;
    if (rd_kafka_metadata(consumer, 0, handle, &metadata, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        partitions = metadata->topics[0].partition_cnt;
      }
      rd_kafka_metadata_destroy(metadata);
    }
    rd_kafka_topic_destroy(handle);
    if (partitions == 0) {
      if (absl::Now() >= deadline) {
        rd_kafka_destroy(consumer);
        return absl::DeadlineExceededError(absl::StrCat("topic ", topic, " does not exist"));
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t assigned = rd_kafka_assign(consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (assigned != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_destroy(consumer);
    return KafkaError(assigned, absl::StrCat("assigning ", topic));
  }
  return std::unique_ptr<TopicReader>(new TopicReader(topic, consumer, partitions));
}

TopicReader::TopicReader(std::string topic, rd_kafka_t* consumer, int partitions)
    : topic_(std::move(topic)), consumer_(consumer), partitions_(partitions) {
  for (int p = 0; p < partitions_; ++p) next_offset_[p] = 0;
}

TopicReader::~TopicReader() {
  rd_kafka_assign(consumer_, nullptr);
  rd_kafka_destroy(consumer_);
}

void TopicReader::PollOnce(absl::Duration wait) {
  rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer_, ToMillis(wait));
  while (message != nullptr) {
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      next_offset_[message->partition] = message->offset + 1;
      IncomingRecord record;
      record.topic = topic_;
      record.partition = message->partition;
      record.offset = message->offset;
      if (message->key != nullptr) {
        record.key.assign(static_cast<const char*>(message->key), message->key_len);
      }
      if (message->payload != nullptr) {
        record.value.assign(static_cast<const char*>(message->payload), message->len);
      }
      record.headers = Headers(message);
      records_.push_back(std::move(record));
    }
    rd_kafka_message_destroy(message);
    message = rd_kafka_consumer_poll(consumer_, 0);
  }
}

bool TopicReader::WaitUntil(const std::function<bool(const std::vector<IncomingRecord>&)>& done,
                            absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done(records_)) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    PollOnce(std::min(left, absl::Milliseconds(50)));
  }
  return true;
}

bool TopicReader::WaitForCount(size_t n, absl::Duration timeout) {
  return WaitUntil([n](const std::vector<IncomingRecord>& r) { return r.size() >= n; }, timeout);
}

absl::Status TopicReader::CatchUp(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::map<int32_t, int64_t> end;
  for (int p = 0; p < partitions_; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        consumer_, topic_.c_str(), p, &low, &high, ToMillis(deadline - absl::Now()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return KafkaError(err, absl::StrCat("end offsets of ", topic_, "/", p));
    }
    // An empty partition (or one the broker trimmed to nothing) is caught up.
    end[p] = high > low ? high : 0;
  }
  bool caught_up = WaitUntil(
      [&](const std::vector<IncomingRecord>&) {
        for (const auto& [partition, offset] : end) {
          if (next_offset_[partition] < offset) return false;
        }
        return true;
      },
      deadline - absl::Now());
  if (!caught_up) {
    return absl::DeadlineExceededError(absl::StrCat("did not reach the end of ", topic_));
  }
  return absl::OkStatus();
}

std::vector<IncomingRecord> TopicReader::RecordsWithKey(absl::string_view key) const {
  std::vector<IncomingRecord> matching;
  for (const IncomingRecord& record : records_) {
    if (record.key == key) matching.push_back(record);
  }
  return matching;
}

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json) {
  google::protobuf::Struct object;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &object);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a JSON object: ", std::string(status.message()), ": ", json.substr(0, 200)));
  }
  return object;
}

std::string JsonString(const google::protobuf::Struct& object, const std::string& field) {
  auto it = object.fields().find(field);
  if (it == object.fields().end() ||
      it->second.kind_case() != google::protobuf::Value::kStringValue) {
    return "";
  }
  return it->second.string_value();
}

}  // namespace edge::testing
