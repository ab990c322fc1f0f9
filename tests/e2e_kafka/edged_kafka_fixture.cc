#include "e2e_kafka/edged_kafka_fixture.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace edge::testing {
namespace {

// edged's Kafka clients, through KAFKA_CONFIG_FILE.
constexpr char kKafkaConfig[] =
    "# end-to-end tests on the embedded broker\n"
    "consumer.fetch.wait.max.ms=10\n"
    "consumer.session.timeout.ms=4000\n"
    "consumer.heartbeat.interval.ms=500\n";

// How much of edged's log a failed test prints.
constexpr size_t kLogTail = 12000;

}  // namespace

void EdgedKafkaTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // Peer-id rules: [A-Za-z0-9._:@-], so no '_' and no '/'.
  edge_id_ = absl::AsciiStrToLower(
      absl::StrReplaceAll(absl::StrCat("e2e-", info->name()), {{"_", "-"}, {"/", "-"}}));

  auto kafka = kafka::EmbeddedKafka::Create(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  kafka_ = std::move(*kafka);
  ASSERT_TRUE(kafka_->CreateTopic(commands_topic(), kCommandPartitions).ok());
  for (const char* topic : {kLifecycleTopic, kCatalogTopic, kFileDeleteTopic, kFileHashTopic,
                            kFileOffersTopic, kWebRtcTopic}) {
    ASSERT_TRUE(kafka_->CreateTopic(topic, 2).ok()) << topic;
  }
  ASSERT_TRUE(kafka_->CreateTopic(deadletter_topic(), 2).ok());

  auto backend = KafkaClient::Create(kafka_->bootstrap_servers());
  ASSERT_TRUE(backend.ok()) << backend.status();
  backend_ = std::move(*backend);

  std::string pattern = (std::filesystem::temp_directory_path() / "edge-e2e-kafka-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  config_dir_ = pattern;
  kafka_config_file_ = config_dir_ + "/kafka.properties";
  std::ofstream(kafka_config_file_) << kKafkaConfig;
}

void EdgedKafkaTest::TearDown() {
  if (HasFailure() && edged_ != nullptr) {
    std::string log = edged_->ReadLog();
    if (log.size() > kLogTail) log = "...\n" + log.substr(log.size() - kLogTail);
    ADD_FAILURE() << "edged's log (" << edged_->log_path() << "):\n" << log;
  }
  edged_.reset();
  backend_.reset();
  kafka_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(config_dir_, ignored);
}

std::map<std::string, std::string> EdgedKafkaTest::EdgedEnv(
    const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env = {
      {"EDGE_ID", edge_id_},
      {"KAFKA_BOOTSTRAP_SERVERS", kafka_->bootstrap_servers()},
      {"KAFKA_CONFIG_FILE", kafka_config_file_},
  };
  for (const auto& [name, value] : extra) env[name] = value;
  return env;
}

void EdgedKafkaTest::AppendKafkaConfig(const std::string& lines) {
  std::ofstream(kafka_config_file_, std::ios::app) << lines << "\n";
}

void EdgedKafkaTest::StartEdged(const std::map<std::string, std::string>& extra) {
  EdgedProcess::Options options;
  options.env = EdgedEnv(extra);
  auto edged = EdgedProcess::Start(std::move(options));
  ASSERT_TRUE(edged.ok()) << edged.status();
  edged_ = std::move(*edged);
}

std::unique_ptr<TestPeer> EdgedKafkaTest::ConnectPeer(const std::string& peer_id,
                                                      TestPeer::Options options) {
  options.peer_id = peer_id;
  auto peer = TestPeer::Connect(edged_->grpc_address(), std::move(options));
  EXPECT_TRUE(peer.ok()) << peer_id << ": " << peer.status();
  return peer.ok() ? std::move(*peer) : nullptr;
}

std::unique_ptr<TopicReader> EdgedKafkaTest::Reader(const std::string& topic) {
  auto reader = TopicReader::Create(kafka_->bootstrap_servers(), topic);
  EXPECT_TRUE(reader.ok()) << reader.status();
  return reader.ok() ? std::move(*reader) : nullptr;
}

void EdgedKafkaTest::ProduceCommand(const std::string& key, const std::string& json) {
  ProduceCommands({{key, json}});
}

void EdgedKafkaTest::ProduceCommands(
    const std::vector<std::pair<std::string, std::string>>& keyed_json) {
  absl::Status produced = backend_->ProduceAll(commands_topic(), keyed_json);
  ASSERT_TRUE(produced.ok()) << produced;
}

std::vector<google::protobuf::Struct> ParseAll(const std::vector<IncomingRecord>& records) {
  std::vector<google::protobuf::Struct> values;
  for (const IncomingRecord& record : records) {
    auto value = ParseJsonObject(record.value);
    EXPECT_TRUE(value.ok()) << record.topic << "@" << record.offset << ": " << value.status();
    values.push_back(value.ok() ? std::move(*value) : google::protobuf::Struct());
  }
  return values;
}

std::vector<std::string> RequestIds(const std::vector<IncomingRecord>& records) {
  std::vector<std::string> ids;
  for (const IncomingRecord& record : records) {
    auto value = ParseJsonObject(record.value);
    if (!value.ok()) continue;
    std::string id = JsonString(*value, "request_id");
    if (!id.empty()) ids.push_back(std::move(id));
  }
  return ids;
}

}  // namespace edge::testing
