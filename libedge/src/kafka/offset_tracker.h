// OffsetTracker: which consumed records still wait for their outcome, per
// partition, and how far each partition's committed position may go.
//
// The committable position of a partition is its lowest handed-out offset
// whose `done` has not run, or one past the highest handed-out offset when
// none is pending: a commit never passes a record without an outcome.
// Each assignment of a partition gets a new generation; a `done` from an
// earlier generation (the partition was revoked meanwhile) is ignored.
// A record abandoned (its `done` dropped unrun) keeps blocking the commit
// but is no longer waited for nor counted as in flight.
// Thread-safe; shared with the RecordDone callbacks so a late call is harmless.
#ifndef EDGE_SRC_KAFKA_OFFSET_TRACKER_H_
#define EDGE_SRC_KAFKA_OFFSET_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace edge::kafka::internal {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator<(const TopicPartition& o) const {
    return std::tie(topic, partition) < std::tie(o.topic, o.partition);
  }
};

struct PartitionPosition {
  TopicPartition tp;
  int64_t offset = 0;  // the next offset to read
};

class OffsetTracker {
 public:
  void Assign(const TopicPartition& tp);
  void Revoke(const TopicPartition& tp);
  // Records a handed-out offset; returns the generation its `done` must cite
  // (0 when the partition is not assigned: that `done` is ignored).
  uint64_t Handed(const TopicPartition& tp, int64_t offset, size_t bytes = 0);
  void Done(const TopicPartition& tp, uint64_t generation, int64_t offset);
  void Abandon(const TopicPartition& tp, uint64_t generation, int64_t offset);

  // Positions that moved past what was last taken (optionally only for
  // `only`); each is then considered committed.
  std::vector<PartitionPosition> TakeCommittable(const std::vector<TopicPartition>* only = nullptr);
  // A commit of `tp` at `offset` failed: offer it again next time.
  void CommitFailed(const TopicPartition& tp, int64_t offset);

  // Handed-out records whose `done` may still run, and their bytes.
  size_t Outstanding() const;
  size_t OutstandingBytes() const;
  // True once no handed-out record waits for its `done`; false at `deadline`.
  bool WaitAllDone(absl::Time deadline) const;
  // After this every `done` is ignored.
  void Close();

 private:
  struct Pending {
    size_t bytes = 0;
    bool abandoned = false;
  };
  struct State {
    uint64_t generation = 0;
    int64_t high = -1;       // one past the highest handed-out offset
    int64_t committed = -1;  // last position taken for commit
    std::map<int64_t, Pending> outstanding;
  };
  // Forgets the live records of `s` from the totals.
  void UncountLocked(const State& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<TopicPartition, State> parts_ ABSL_GUARDED_BY(mu_);
  uint64_t last_generation_ ABSL_GUARDED_BY(mu_) = 0;
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;        // live: not abandoned
  size_t outstanding_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // of the live ones
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace edge::kafka::internal

#endif  // EDGE_SRC_KAFKA_OFFSET_TRACKER_H_
