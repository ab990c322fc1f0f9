// EmbeddedKafka: a Kafka-protocol cluster inside this process.
//
// librdkafka's mock cluster: brokers listening on 127.0.0.1 (ephemeral
// ports), reachable over TCP by any Kafka client (edged uses it when
// KAFKA_BOOTSTRAP_SERVERS is unset; tests use it as the broker). It supports
// producing (idempotent too), consumer groups with offset commits and topic
// auto-creation (4 partitions by default). Data lives in memory only, and
// each partition keeps only its most recent ~5 MiB / 100k message sets.
// Fault injection: brokers down/up, request errors, added round-trip time.
//
// Thread-safe; the cluster runs on its own threads until destroyed.
//
//   auto kafka = edge::kafka::EmbeddedKafka::Create(/*num_brokers=*/1);
//   (*kafka)->CreateTopic("edge-commands-e1", 2);
//   options.bootstrap_servers = (*kafka)->bootstrap_servers();
#ifndef EDGE_KAFKA_EMBEDDED_KAFKA_H_
#define EDGE_KAFKA_EMBEDDED_KAFKA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge::kafka {

class EmbeddedKafka {
 public:
  // Kafka protocol request types, for PushRequestErrors.
  static constexpr int16_t kProduceRequest = 0;
  static constexpr int16_t kFetchRequest = 1;
  static constexpr int16_t kOffsetCommitRequest = 8;
  static constexpr int16_t kJoinGroupRequest = 11;
  static constexpr int16_t kInitProducerIdRequest = 22;

  // Starts `num_brokers` (1..16) brokers, ids 1..num_brokers.
  static absl::StatusOr<std::unique_ptr<EmbeddedKafka>> Create(int num_brokers = 1);
  ~EmbeddedKafka();
  EmbeddedKafka(const EmbeddedKafka&) = delete;
  EmbeddedKafka& operator=(const EmbeddedKafka&) = delete;

  // "127.0.0.1:port,..." for bootstrap.servers.
  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  int num_brokers() const { return num_brokers_; }

  absl::Status CreateTopic(const std::string& name, int partitions);

  // Broker `broker_id` (or -1: every broker) drops its connections and
  // refuses new ones until SetBrokerUp.
  absl::Status SetBrokerDown(int32_t broker_id = -1);
  absl::Status SetBrokerUp(int32_t broker_id = -1);
  absl::Status SetBrokerRtt(int32_t broker_id, absl::Duration rtt);

  // The next errors.size() requests of type `api_key`, to any broker, fail
  // with these Kafka error codes in turn (0 = no error; -195, the client's
  // transport error, makes the broker drop the connection).
  absl::Status PushRequestErrors(int16_t api_key, const std::vector<int32_t>& errors);
  void ClearRequestErrors(int16_t api_key);

 private:
  struct Cluster;
  EmbeddedKafka(std::unique_ptr<Cluster> cluster, std::string bootstrap_servers, int num_brokers);

  const std::unique_ptr<Cluster> cluster_;
  const std::string bootstrap_servers_;
  const int num_brokers_;
};

}  // namespace edge::kafka

#endif  // EDGE_KAFKA_EMBEDDED_KAFKA_H_
