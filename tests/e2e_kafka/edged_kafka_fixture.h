// EdgedKafkaTest: the end-to-end fixture. Each test owns a Kafka-protocol
// broker (EmbeddedKafka, over TCP), a backend Kafka client, and the real
// edged binary as a child process speaking to that broker, with peers that
// connect to it over gRPC. Nothing is in-memory between the parts.
//
// Topics are created up front: the command topic with 4 partitions (keys
// spread over them), the dead-letter and event topics with 2. edged's Kafka
// consumer gets a short fetch wait and the shortest session timeout the
// embedded broker allows (through KAFKA_CONFIG_FILE), so that a restarted
// edged takes its partitions back quickly.
#ifndef EDGE_TESTS_E2E_KAFKA_EDGED_KAFKA_FIXTURE_H_
#define EDGE_TESTS_E2E_KAFKA_EDGED_KAFKA_FIXTURE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "edge/kafka/embedded_kafka.h"
#include "gtest/gtest.h"
#include "support/edged_process.h"
#include "support/kafka_client.h"
#include "support/test_peer.h"

namespace edge::testing {

class EdgedKafkaTest : public ::testing::Test {
 protected:
  static constexpr int kCommandPartitions = 4;

  void SetUp() override;
  void TearDown() override;

  // The environment edged starts with: EDGE_ID, KAFKA_BOOTSTRAP_SERVERS,
  // KAFKA_CONFIG_FILE, plus `extra` (which wins).
  std::map<std::string, std::string> EdgedEnv(const std::map<std::string, std::string>& extra);
  // Adds `property=value` lines to edged's KAFKA_CONFIG_FILE (before start).
  void AppendKafkaConfig(const std::string& lines);
  // Starts edged (fails the test if it does not listen).
  void StartEdged(const std::map<std::string, std::string>& extra = {});

  // A peer admitted by edged (fails the test if it is not).
  std::unique_ptr<TestPeer> ConnectPeer(const std::string& peer_id, TestPeer::Options options = {});
  // A reader of `topic` from its beginning.
  std::unique_ptr<TopicReader> Reader(const std::string& topic);

  // Produces a command, keyed by `key`, to this edge's command topic.
  void ProduceCommand(const std::string& key, const std::string& json);
  void ProduceCommands(const std::vector<std::pair<std::string, std::string>>& keyed_json);

  const std::string& edge_id() const { return edge_id_; }
  std::string commands_topic() const { return "edge-commands-" + edge_id_; }
  std::string deadletter_topic() const { return commands_topic() + ".deadletter"; }
  EdgedProcess& edged() { return *edged_; }
  kafka::EmbeddedKafka& kafka() { return *kafka_; }
  KafkaClient& backend() { return *backend_; }

  // edged's log, for failure messages.
  std::string EdgedLog() const { return edged_ == nullptr ? "" : edged_->ReadLog(); }

  std::unique_ptr<kafka::EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaClient> backend_;
  std::unique_ptr<EdgedProcess> edged_;

 private:
  std::string edge_id_;
  std::string config_dir_;
  std::string kafka_config_file_;
};

// The lifecycle event topic and the others of contract §5 (defaults).
inline constexpr char kLifecycleTopic[] = "peer-lifecycle-events";
inline constexpr char kCatalogTopic[] = "peer-catalog-updates";
inline constexpr char kFileDeleteTopic[] = "file-delete-responses";
inline constexpr char kFileHashTopic[] = "file-hash-responses";
inline constexpr char kFileOffersTopic[] = "peer-file-offers";
inline constexpr char kWebRtcTopic[] = "webrtc-signaling";

// Parses every record's value as a JSON object (failing the test on one
// that is not).
std::vector<google::protobuf::Struct> ParseAll(const std::vector<IncomingRecord>& records);

// The `request_id` of each record's value, for values that hold one.
std::vector<std::string> RequestIds(const std::vector<IncomingRecord>& records);

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_KAFKA_EDGED_KAFKA_FIXTURE_H_
