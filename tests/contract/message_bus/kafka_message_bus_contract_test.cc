// The MessageBus contract against KafkaMessageBus, over TCP to EmbeddedKafka.
#include <memory>

#include "contract/message_bus/message_bus_contract.h"
#include "edge/kafka/embedded_kafka.h"
#include "edge/kafka/kafka_message_bus.h"
#include "kafka/kafka_test_client.h"

namespace edge::testing {
namespace {

class KafkaHarness : public MessageBusHarness {
 public:
  KafkaHarness() {
    auto kafka = kafka::EmbeddedKafka::Create(1);
    EXPECT_TRUE(kafka.ok()) << kafka.status();
    if (kafka.ok()) kafka_ = *std::move(kafka);
    client_ = std::make_unique<KafkaTestClient>(kafka_->bootstrap_servers());
  }
  absl::StatusOr<std::unique_ptr<MessageBus>> NewBus(const std::string& group,
                                                     size_t capacity) override {
    kafka::KafkaMessageBusOptions options;
    options.bootstrap_servers = kafka_->bootstrap_servers();
    options.group_id = group;
    options.capacity = capacity;
    options.commit_interval = absl::Milliseconds(100);
    options.properties = {{"consumer.fetch.wait.max.ms", "10"},
                          {"consumer.session.timeout.ms", "4000"},
                          {"consumer.heartbeat.interval.ms", "500"},
                          {"topic.metadata.refresh.interval.ms", "1000"}};
    auto bus = kafka::KafkaMessageBus::Create(std::move(options));
    if (!bus.ok()) return bus.status();
    return std::unique_ptr<MessageBus>(*std::move(bus));
  }
  absl::Status CreateTopic(const std::string& topic, int partitions) override {
    return kafka_->CreateTopic(topic, partitions);
  }
  absl::Status Produce(const std::string& topic, int32_t partition, const std::string& key,
                       const std::string& value,
                       const std::vector<RecordHeader>& headers) override {
    return client_->Produce(topic, partition, key, value, headers);
  }
  absl::StatusOr<std::vector<IncomingRecord>> ReadAll(const std::string& topic, size_t n,
                                                      absl::Duration timeout) override {
    return client_->ReadAll(topic, n, timeout);
  }
  absl::StatusOr<int64_t> Committed(const std::string& group, const std::string& topic,
                                    int32_t partition) override {
    return client_->Committed(group, topic, partition);
  }
  void SetReachable(MessageBus*, bool reachable) override {
    absl::Status s = reachable ? kafka_->SetBrokerUp(-1) : kafka_->SetBrokerDown(-1);
    EXPECT_TRUE(s.ok()) << s;
  }

 private:
  std::unique_ptr<kafka::EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaTestClient> client_;
};

INSTANTIATE_TEST_SUITE_P(Kafka, MessageBusContractTest,
                         ::testing::Values(HarnessFactory{
                             "Kafka", [] { return std::make_unique<KafkaHarness>(); }}),
                         HarnessName);

}  // namespace
}  // namespace edge::testing
