// KafkaTestClient: a plain librdkafka client playing the backend in tests:
// produces records synchronously, reads a topic back from the beginning, and
// reads a consumer group's committed offsets.
#ifndef EDGE_TESTS_KAFKA_KAFKA_TEST_CLIENT_H_
#define EDGE_TESTS_KAFKA_KAFKA_TEST_CLIENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"

namespace edge::testing {

class KafkaTestClient {
 public:
  explicit KafkaTestClient(std::string bootstrap_servers)
      : bootstrap_servers_(std::move(bootstrap_servers)) {}

  // Produces one record to `partition` and waits for its delivery report.
  absl::Status Produce(const std::string& topic, int32_t partition, const std::string& key,
                       const std::string& value, const std::vector<RecordHeader>& headers = {});

  // Reads `topic` from the start of every partition until at least `n`
  // records were read and every partition reached its end, or `timeout`
  // (then DeadlineExceeded). Partition order within, partitions ascending.
  absl::StatusOr<std::vector<IncomingRecord>> ReadAll(const std::string& topic, size_t n,
                                                      absl::Duration timeout);

  // The next offset `group` reads from in topic/partition; -1 if none.
  absl::StatusOr<int64_t> Committed(const std::string& group, const std::string& topic,
                                    int32_t partition);

 private:
  const std::string bootstrap_servers_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_KAFKA_KAFKA_TEST_CLIENT_H_
