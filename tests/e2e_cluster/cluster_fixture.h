// ClusterTest: the end-to-end fixture for a cluster of edges (contract §2
// rows 7-8, §9). Each test owns a real etcd (EtcdProcess, free loopback
// ports, temporary data), a Kafka-protocol broker (EmbeddedKafka over TCP)
// and a backend Kafka client; edges are real edged child processes with
// TRACKER=etcd and a 2 s lease, and peers are real gRPC peers.
//
//   EdgedProcess* a = StartEdge("edge-a");
//   auto peer = Connect(*a, "peer-1");
//   ASSERT_TRUE(peer.ok()) << peer.status();
//   EXPECT_EQ(Holder("peer-1"), "edge-a");
#ifndef EDGE_TESTS_E2E_CLUSTER_CLUSTER_FIXTURE_H_
#define EDGE_TESTS_E2E_CLUSTER_CLUSTER_FIXTURE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/kafka/embedded_kafka.h"
#include "etcdserverpb/rpc.pb.h"
#include "gtest/gtest.h"
#include "support/edged_process.h"
#include "support/etcd_process.h"
#include "support/kafka_client.h"
#include "support/test_peer.h"

namespace edge::testing {

inline constexpr char kLifecycleTopic[] = "peer-lifecycle-events";
inline constexpr char kKeyPrefix[] = "/cluster/";
inline constexpr absl::Duration kLeaseTtl = absl::Seconds(2);

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts edged as `edge_id` in the cluster (its command and dead-letter
  // topics created first); `extra` variables win over the fixture's. Fails
  // the test (and returns null) if it does not listen.
  EdgedProcess* StartEdge(const std::string& edge_id,
                          const std::map<std::string, std::string>& extra = {});
  // Connects `peer_id` to `edge` and waits for the edge's verdict: the
  // admitted peer, or the status its stream was refused with.
  absl::StatusOr<std::unique_ptr<TestPeer>> Connect(EdgedProcess& edge, const std::string& peer_id,
                                                    TestPeer::Options options = {});

  // The keys under `{prefix}{under}` in etcd, by key relative to the prefix
  // (e.g. "peers/peer-1").
  absl::StatusOr<std::map<std::string, mvccpb::KeyValue>> Keys(const std::string& under);
  // The edge holding `peer_id` according to etcd; "" when nobody does.
  std::string Holder(const std::string& peer_id);
  // The claim key of `peer_id`; NOT_FOUND when absent.
  absl::StatusOr<mvccpb::KeyValue> ClaimKey(const std::string& peer_id);

  static std::string CommandsTopic(const std::string& edge_id) {
    return "edge-commands-" + edge_id;
  }
  static std::string DeadletterTopic(const std::string& edge_id) {
    return CommandsTopic(edge_id) + ".deadletter";
  }
  // A reader of `topic` from its beginning (records with their headers);
  // null, failing the test, when the topic does not exist.
  std::unique_ptr<TopicReader> Reader(const std::string& topic);

  EtcdProcess& etcd() { return *etcd_; }
  kafka::EmbeddedKafka& kafka() { return *kafka_; }
  KafkaClient& backend() { return *backend_; }

 private:
  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<kafka::EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaClient> backend_;
  std::string config_dir_;
  std::string kafka_config_file_;
  std::map<std::string, std::unique_ptr<EdgedProcess>> edges_;
};

// Parses a record's JSON value, failing the test on one that is not JSON.
google::protobuf::Struct ParseValue(const IncomingRecord& record);
// A JSON number field as an integer; -1 when absent.
int64_t JsonInt(const google::protobuf::Struct& object, const std::string& field);

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_CLUSTER_CLUSTER_FIXTURE_H_
