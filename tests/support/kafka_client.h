// Test-side Kafka clients on librdkafka, playing the backend against an
// EmbeddedKafka (or any cluster) over TCP:
//  - KafkaClient produces keyed records (commands) and waits for their
//    delivery reports;
//  - TopicReader reads a topic from the beginning of every partition, with
//    no consumer group (no join delay), records with their headers, and
//    waits for conditions on what it has read.
// Not thread-safe: use each object from one thread.
//
//   auto client =
//   edge::testing::KafkaClient::Create(kafka->bootstrap_servers());
//   ASSERT_TRUE((*client)->Produce("edge-commands-e1", "peer-1",
//   R"({"type":...})").ok()); auto events =
//   edge::testing::TopicReader::Create(kafka->bootstrap_servers(),
//                                                    "peer-lifecycle-events");
//   ASSERT_TRUE((*events)->WaitForCount(2, absl::Seconds(10)));
//   auto value = edge::testing::ParseJsonObject((*events)->records()[0].value);
#ifndef EDGE_TESTS_SUPPORT_KAFKA_CLIENT_H_
#define EDGE_TESTS_SUPPORT_KAFKA_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"
#include "google/protobuf/struct.pb.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace edge::testing {

class KafkaClient {
 public:
  // An idempotent producer (acks=all, murmur2 partitioner like Java's, so a
  // key always lands on the same partition), accepting values up to 8 MiB.
  static absl::StatusOr<std::unique_ptr<KafkaClient>> Create(std::string bootstrap_servers);
  ~KafkaClient();
  KafkaClient(const KafkaClient&) = delete;
  KafkaClient& operator=(const KafkaClient&) = delete;

  // Produces one record and waits for its delivery report.
  absl::Status Produce(const std::string& topic, const std::string& key, const std::string& value,
                       absl::Duration timeout = absl::Seconds(10));
  // Produces one record with Kafka headers and waits for its delivery report.
  absl::Status ProduceWithHeaders(const std::string& topic, const std::string& key,
                                  const std::string& value,
                                  const std::vector<RecordHeader>& headers,
                                  absl::Duration timeout = absl::Seconds(10));
  // Produces every (key, value) in order and waits for all delivery reports;
  // records of one key keep their order. Fails if any record failed.
  absl::Status ProduceAll(const std::string& topic,
                          const std::vector<std::pair<std::string, std::string>>& records,
                          absl::Duration timeout = absl::Seconds(30));

  const std::string& bootstrap_servers() const { return bootstrap_servers_; }

 private:
  struct Deliveries;
  KafkaClient(std::string bootstrap_servers, rd_kafka_t* producer,
              std::unique_ptr<Deliveries> deliveries);

  const std::string bootstrap_servers_;
  rd_kafka_t* const producer_;
  const std::unique_ptr<Deliveries> deliveries_;
};

class TopicReader {
 public:
  // Assigns every partition of `topic` from its beginning. Waits up to
  // `timeout` for the topic to exist.
  static absl::StatusOr<std::unique_ptr<TopicReader>> Create(
      const std::string& bootstrap_servers, const std::string& topic,
      absl::Duration timeout = absl::Seconds(10));
  ~TopicReader();
  TopicReader(const TopicReader&) = delete;
  TopicReader& operator=(const TopicReader&) = delete;

  // Reads until `done(records())` holds; false if it still does not after
  // `timeout`.
  bool WaitUntil(const std::function<bool(const std::vector<IncomingRecord>&)>& done,
                 absl::Duration timeout);
  // Reads until at least `n` records were read.
  bool WaitForCount(size_t n, absl::Duration timeout);
  // Reads until every partition is at its end (what the broker holds now).
  absl::Status CatchUp(absl::Duration timeout = absl::Seconds(10));

  // Everything read so far: partition order within a partition, partitions
  // interleaved as they were fetched.
  const std::vector<IncomingRecord>& records() const { return records_; }
  // The records whose key is `key`, in order.
  std::vector<IncomingRecord> RecordsWithKey(absl::string_view key) const;
  const std::string& topic() const { return topic_; }

 private:
  TopicReader(std::string topic, rd_kafka_t* consumer, int partitions);
  // Reads what arrives within `wait` (consumer errors are retried by
  // librdkafka; the callers' deadlines bound the wait).
  void PollOnce(absl::Duration wait);

  const std::string topic_;
  rd_kafka_t* const consumer_;
  const int partitions_;
  // Per partition: one past the last offset read.
  std::map<int32_t, int64_t> next_offset_;
  std::vector<IncomingRecord> records_;
};

// Parses a JSON object (an event or a dead letter) into a Struct.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(absl::string_view json);

// A JSON string field, "" when absent or not a string.
std::string JsonString(const google::protobuf::Struct& object, const std::string& field);

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_KAFKA_CLIENT_H_
