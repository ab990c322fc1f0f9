#include "edge/kafka/embedded_kafka.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "kafka_config.h"

namespace edge::kafka {

using internal::BuildConf;
using internal::ConfPtr;
using internal::KafkaErrorToStatus;

struct EmbeddedKafka::Cluster {
  rd_kafka_t* rk = nullptr;  // the handle the mock cluster belongs to
  rd_kafka_mock_cluster_t* mock = nullptr;

  ~Cluster() {
    if (mock != nullptr) rd_kafka_mock_cluster_destroy(mock);
    if (rk != nullptr) rd_kafka_destroy(rk);
  }
};

absl::StatusOr<std::unique_ptr<EmbeddedKafka>> EmbeddedKafka::Create(int num_brokers) {
  if (num_brokers < 1 || num_brokers > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("EmbeddedKafka: num_brokers must be 1..16, got ", num_brokers));
  }
  // The owning handle never connects anywhere; silence its warnings about
  // having no bootstrap servers.
  absl::StatusOr<ConfPtr> conf = BuildConf({{"log_level", "0"}});
  if (!conf.ok()) return conf.status();
  char errstr[512];
  auto cluster = std::make_unique<Cluster>();
  cluster->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->release(), errstr, sizeof(errstr));
  if (cluster->rk == nullptr) {
    return absl::InternalError(absl::StrCat("EmbeddedKafka: rd_kafka_new: ", errstr));
  }
  cluster->mock = rd_kafka_mock_cluster_new(cluster->rk, num_brokers);
  if (cluster->mock == nullptr) {
    return absl::InternalError("EmbeddedKafka: could not start the mock cluster");
  }
  std::string bootstraps = rd_kafka_mock_cluster_bootstraps(cluster->mock);
  return std::unique_ptr<EmbeddedKafka>(
      new EmbeddedKafka(std::move(cluster), std::move(bootstraps), num_brokers));
}

EmbeddedKafka::EmbeddedKafka(std::unique_ptr<Cluster> cluster, std::string bootstrap_servers,
                             int num_brokers)
    : cluster_(std::move(cluster)),
      bootstrap_servers_(std::move(bootstrap_servers)),
      num_brokers_(num_brokers) {}

EmbeddedKafka::~EmbeddedKafka() = default;

absl::Status EmbeddedKafka::CreateTopic(const std::string& name, int partitions) {
  if (name.empty()) return absl::InvalidArgumentError("CreateTopic: topic name is empty");
  if (partitions < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CreateTopic ", name, ": partitions must be >= 1, got ", partitions));
  }
  int replication = num_brokers_ < 3 ? num_brokers_ : 3;
  return KafkaErrorToStatus(
      rd_kafka_mock_topic_create(cluster_->mock, name.c_str(), partitions, replication),
      absl::StrCat("CreateTopic ", name));
}

absl::Status EmbeddedKafka::SetBrokerDown(int32_t broker_id) {
  return KafkaErrorToStatus(rd_kafka_mock_broker_set_down(cluster_->mock, broker_id),
                            absl::StrCat("SetBrokerDown ", broker_id));
}

absl::Status EmbeddedKafka::SetBrokerUp(int32_t broker_id) {
  return KafkaErrorToStatus(rd_kafka_mock_broker_set_up(cluster_->mock, broker_id),
                            absl::StrCat("SetBrokerUp ", broker_id));
}

absl::Status EmbeddedKafka::SetBrokerRtt(int32_t broker_id, absl::Duration rtt) {
  return KafkaErrorToStatus(
      rd_kafka_mock_broker_set_rtt(cluster_->mock, broker_id,
                                   static_cast<int>(absl::ToInt64Milliseconds(rtt))),
      absl::StrCat("SetBrokerRtt ", broker_id));
}

absl::Status EmbeddedKafka::PushRequestErrors(int16_t api_key, const std::vector<int32_t>& errors) {
  if (api_key < 0) {
    return absl::InvalidArgumentError(absl::StrCat("PushRequestErrors: invalid api key ", api_key));
  }
  if (errors.empty()) return absl::OkStatus();
  std::vector<rd_kafka_resp_err_t> codes;
  codes.reserve(errors.size());
  for (int32_t e : errors) codes.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(cluster_->mock, api_key, codes.size(), codes.data());
  return absl::OkStatus();
}

void EmbeddedKafka::ClearRequestErrors(int16_t api_key) {
  rd_kafka_mock_clear_request_errors(cluster_->mock, api_key);
}

}  // namespace edge::kafka
