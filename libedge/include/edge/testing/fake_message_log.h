// FakeMessageLog: the broker side of FakeMessageBus, in memory.
//
// It models a broker: topics of partitions of records with offsets, and the
// committed position of each consumer group. Several FakeMessageBus may share
// one log (the same group after a restart, or a "backend" reading what the
// edge wrote); each bus models one client of it.
#ifndef EDGE_TESTING_FAKE_MESSAGE_LOG_H_
#define EDGE_TESTING_FAKE_MESSAGE_LOG_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"

namespace edge::testing {

// The broker side: thread-safe, shared by the buses attached to it.
class FakeMessageLog {
 public:
  FakeMessageLog() = default;
  FakeMessageLog(const FakeMessageLog&) = delete;
  FakeMessageLog& operator=(const FakeMessageLog&) = delete;

  // Creates `topic` with `partitions` partitions, or grows it to that many.
  absl::Status CreateTopic(const std::string& topic, int32_t partitions);

  // Appends a record and returns its offset. `partition` < 0 picks one by
  // hashing the key over the topic's partitions (a missing topic is created
  // with one partition; an explicit partition beyond the end grows it).
  absl::StatusOr<int64_t> Append(const std::string& topic, int32_t partition, std::string key,
                                 std::string value, std::vector<RecordHeader> headers,
                                 bool from_publish, int32_t* partition_out = nullptr);

  int32_t Partitions(const std::string& topic) const;
  // Every record of `topic` (all partitions, partition then offset order).
  std::vector<IncomingRecord> Records(const std::string& topic) const;
  // Records of `topic` that came through Publish, in the order stored.
  std::vector<OutgoingRecord> Published(const std::string& topic) const;
  // Up to `max` records of one partition starting at `from`.
  std::vector<IncomingRecord> Read(const std::string& topic, int32_t partition, int64_t from,
                                   size_t max) const;

  // Next offset `group` reads from in topic/partition; 0 if never committed.
  int64_t Committed(const std::string& group, const std::string& topic, int32_t partition) const;
  void Commit(const std::string& group, const std::string& topic, int32_t partition,
              int64_t offset);

  // Bumped on every append; lets buses notice records produced elsewhere.
  uint64_t version() const;

  // True once `topic` holds at least `n` published records; false after
  // `timeout`.
  bool WaitForPublished(const std::string& topic, size_t n, absl::Duration timeout) const;

 private:
  struct Stored {
    IncomingRecord record;
    bool from_publish = false;
    uint64_t sequence = 0;
  };
  // A deque: appending never moves the records already stored (a vector
  // doubling under a long run moved them all at once, holding the lock).
  using Partition = std::deque<Stored>;

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<Partition>> topics_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::pair<std::string, int32_t>>, int64_t> committed_
      ABSL_GUARDED_BY(mu_);
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edge::testing

#endif  // EDGE_TESTING_FAKE_MESSAGE_LOG_H_
