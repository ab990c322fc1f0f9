#include "e2e_cluster/cluster_fixture.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "etcd/etcd_client.h"

namespace edge::testing {
namespace {

// edged's Kafka clients, through KAFKA_CONFIG_FILE: a short fetch wait and
// the shortest session timeout the embedded broker allows.
constexpr char kKafkaConfig[] =
    "consumer.fetch.wait.max.ms=10\n"
    "consumer.session.timeout.ms=4000\n"
    "consumer.heartbeat.interval.ms=500\n";

// How much of each edge's log a failed test prints.
constexpr size_t kLogTail = 8000;

// The smallest key greater than every key starting with `prefix`.
std::string RangeEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      ++prefix.back();
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

}  // namespace

void ClusterTest::SetUp() {
  EDGE_SKIP_WITHOUT_ETCD();
  auto etcd = EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  etcd_ = std::move(*etcd);

  auto kafka = kafka::EmbeddedKafka::Create(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  kafka_ = std::move(*kafka);
  ASSERT_TRUE(kafka_->CreateTopic(kLifecycleTopic, 2).ok());

  auto backend = KafkaClient::Create(kafka_->bootstrap_servers());
  ASSERT_TRUE(backend.ok()) << backend.status();
  backend_ = std::move(*backend);

  std::string pattern =
      (std::filesystem::temp_directory_path() / "edge-e2e-cluster-XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  config_dir_ = pattern;
  kafka_config_file_ = config_dir_ + "/kafka.properties";
  std::ofstream(kafka_config_file_) << kKafkaConfig;
}

void ClusterTest::TearDown() {
  if (HasFailure()) {
    for (const auto& [id, edge] : edges_) {
      std::string log = edge->ReadLog();
      if (log.size() > kLogTail) {
        log = "...\n" + log.substr(log.size() - kLogTail);
      }
      ADD_FAILURE() << id << "'s log:\n" << log;
    }
  }
  edges_.clear();
  backend_.reset();
  kafka_.reset();
  etcd_.reset();
  if (!config_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(config_dir_, ignored);
  }
}

EdgedProcess* ClusterTest::StartEdge(const std::string& edge_id,
                                     const std::map<std::string, std::string>& extra) {
  EXPECT_TRUE(kafka_->CreateTopic(CommandsTopic(edge_id), 2).ok());
  EXPECT_TRUE(kafka_->CreateTopic(DeadletterTopic(edge_id), 1).ok());
  EdgedProcess::Options options;
  options.env = {
      {"EDGE_ID", edge_id},
      {"KAFKA_BOOTSTRAP_SERVERS", kafka_->bootstrap_servers()},
      {"KAFKA_CONFIG_FILE", kafka_config_file_},
      {"TRACKER", "etcd"},
      {"ETCD_ENDPOINTS", etcd_->endpoint()},
      {"TRACKER_LEASE_TTL_SEC", absl::StrCat(absl::ToInt64Seconds(kLeaseTtl))},
      {"TRACKER_KEY_PREFIX", kKeyPrefix},
  };
  for (const auto& [name, value] : extra) options.env[name] = value;
  auto edge = EdgedProcess::Start(std::move(options));
  EXPECT_TRUE(edge.ok()) << edge_id << ": " << edge.status();
  if (!edge.ok()) return nullptr;
  EdgedProcess* started = edge->get();
  edges_[edge_id] = std::move(*edge);
  return started;
}

absl::StatusOr<std::unique_ptr<TestPeer>> ClusterTest::Connect(EdgedProcess& edge,
                                                               const std::string& peer_id,
                                                               TestPeer::Options options) {
  options.peer_id = peer_id;
  return TestPeer::Connect(edge.grpc_address(), std::move(options));
}

absl::StatusOr<std::map<std::string, mvccpb::KeyValue>> ClusterTest::Keys(
    const std::string& under) {
  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
  if (!client.ok()) return client.status();
  const std::string prefix = absl::StrCat(kKeyPrefix, under);
  etcdserverpb::TxnRequest request;
  etcdserverpb::RangeRequest* range = request.add_success()->mutable_request_range();
  range->set_key(prefix);
  range->set_range_end(RangeEnd(prefix));
  auto response = (*client)->TxnSync(request, absl::Now() + absl::Seconds(5));
  if (!response.ok()) return response.status();
  std::map<std::string, mvccpb::KeyValue> keys;
  for (const auto& kv : response->responses(0).response_range().kvs()) {
    keys[kv.key().substr(std::string(kKeyPrefix).size())] = kv;
  }
  return keys;
}

absl::StatusOr<mvccpb::KeyValue> ClusterTest::ClaimKey(const std::string& peer_id) {
  const std::string key = absl::StrCat("peers/", peer_id);
  auto keys = Keys(key);
  if (!keys.ok()) return keys.status();
  auto it = keys->find(key);
  if (it == keys->end()) return absl::NotFoundError(key);
  return it->second;
}

std::string ClusterTest::Holder(const std::string& peer_id) {
  auto key = ClaimKey(peer_id);
  return key.ok() ? key->value() : "";
}

std::unique_ptr<TopicReader> ClusterTest::Reader(const std::string& topic) {
  auto reader = TopicReader::Create(kafka_->bootstrap_servers(), topic);
  EXPECT_TRUE(reader.ok()) << topic << ": " << reader.status();
  return reader.ok() ? std::move(*reader) : nullptr;
}

google::protobuf::Struct ParseValue(const IncomingRecord& record) {
  auto value = ParseJsonObject(record.value);
  EXPECT_TRUE(value.ok()) << record.topic << "@" << record.offset << ": " << value.status();
  return value.ok() ? *std::move(value) : google::protobuf::Struct();
}

int64_t JsonInt(const google::protobuf::Struct& object, const std::string& field) {
  auto it = object.fields().find(field);
  if (it == object.fields().end() || !it->second.has_number_value()) return -1;
  return static_cast<int64_t>(it->second.number_value());
}

}  // namespace edge::testing
