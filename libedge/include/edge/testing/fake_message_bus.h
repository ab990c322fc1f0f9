// FakeMessageBus: a working in-memory MessageBus, one client of a
// FakeMessageLog (edge/testing/fake_message_log.h). Several buses may share
// one log (the same group after a restart, or a "backend" reading what the
// edge wrote).
//
// Publish appends to the log at once (partition chosen by key hash) unless
// the bus is unavailable or an error was injected; the record's `done` runs
// later, on the bus's delivery thread, and the record counts toward
// Saturated() until it has. Subscribed records are handed out in partition
// order; the committed position of a partition is the first offset whose
// `done` has not run (committed on every advance).
//
// Threads: in DeliveryMode::kAutomatic (the default) a thread owned by the bus
// runs every callback (publish completions, record handlers, the drain
// listener), one at a time, never with a lock held. In DeliveryMode::kManual
// nothing happens on its own: DeliverPending() runs whatever is ready on the
// calling thread, for tests that want to step the bus. Either way handler
// calls are never concurrent. Methods may be called from any thread,
// including from inside callbacks (but DeliverPending() from inside a
// callback does nothing).
//
//   edge::testing::FakeMessageBus bus;
//   bus.Subscribe("cmds", [](edge::IncomingRecord r, edge::RecordDone done) {
//     done();
//   });
//   bus.Start();
//   bus.Produce("cmds", "peer-1", "{}");
//   bus.Publish({"events", "peer-1", "{}"}, [](absl::Status) {});
//   bus.WaitForPublished("events", 1, absl::Seconds(5));
#ifndef EDGE_TESTING_FAKE_MESSAGE_BUS_H_
#define EDGE_TESTING_FAKE_MESSAGE_BUS_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"
#include "edge/testing/fake_message_log.h"

namespace edge::testing {

enum class DeliveryMode { kAutomatic, kManual };

struct FakeMessageBusOptions {
  DeliveryMode mode = DeliveryMode::kAutomatic;
  // Saturated() is true while at least this many publishes wait for `done`.
  size_t capacity = 1024;
  std::string group_id = "fake-group";
  // Shared with other buses; null: a private log.
  std::shared_ptr<FakeMessageLog> log;
};

class FakeMessageBus final : public MessageBus {
 public:
  explicit FakeMessageBus(FakeMessageBusOptions options = {});
  ~FakeMessageBus() override;  // Shutdown(now) if not done yet.

  // MessageBus. Publish after Shutdown fails at once, on the calling thread,
  // with CANCELLED.
  void Publish(OutgoingRecord record, PublishDone done) override;
  bool Saturated() const override;
  void SetDrainListener(absl::AnyInvocable<void()> listener) override;
  absl::Status Subscribe(const std::string& topic, RecordHandler handler) override;
  absl::Status Start() override;
  void StopConsuming() override;
  void Shutdown(absl::Time deadline) override;

  // Backend side: appends a record to the log (see FakeMessageLog::Append).
  absl::StatusOr<int64_t> Produce(const std::string& topic, const std::string& key,
                                  const std::string& value, std::vector<RecordHeader> headers = {},
                                  int32_t partition = 0);

  // Inspection.
  std::vector<OutgoingRecord> Published(const std::string& topic) const;
  bool WaitForPublished(const std::string& topic, size_t n, absl::Duration timeout) const;
  int64_t Committed(const std::string& topic, int32_t partition) const;
  size_t PendingPublishes() const;    // accepted, `done` not yet run
  size_t OutstandingRecords() const;  // handed out, `done` not yet run
  const std::shared_ptr<FakeMessageLog>& log() const { return log_; }

  // Fault injection. The next `n` publishes fail with `status` (not stored).
  void FailNextPublishes(int n, absl::Status status);
  // While unavailable, publishes are held (not stored, `done` not run) and
  // count toward Saturated(); turning available again stores them in order.
  void SetUnavailable(bool unavailable);

  // Manual mode: runs every ready publish completion, drain notification and
  // record hand-out on this thread; returns how many callbacks ran.
  size_t DeliverPending();

 private:
  struct Completion {
    PublishDone done;
    absl::Status status;
  };
  struct Held {
    OutgoingRecord record;
    PublishDone done;
  };
  struct PartitionState {
    int64_t next = -1;              // next offset to hand out; -1: unknown
    std::set<int64_t> outstanding;  // handed out, done not run
    std::set<int64_t> abandoned;    // of those, done dropped unrun
  };
  using PartitionKey = std::pair<std::string, int32_t>;

  // Takes ready work: completions, and records to hand out (at most one batch).
  struct Batch {
    std::vector<Completion> completions;
    std::vector<std::pair<RecordHandler*, IncomingRecord>> records;
  };
  // Where RecordDone lands; outlives the bus so a late `done` is harmless.
  struct DoneSink {
    absl::Mutex mu;
    FakeMessageBus* bus ABSL_GUARDED_BY(mu) = nullptr;
  };
  Batch TakeBatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t RunBatch(Batch batch);
  void StoreLocked(OutgoingRecord record, PublishDone done) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordDoneFor(const PartitionKey& key, int64_t offset);
  // The record's `done` was dropped unrun: it keeps blocking the commit but
  // Shutdown no longer waits for it.
  void RecordAbandonedFor(const PartitionKey& key, int64_t offset);
  void Loop();

  const FakeMessageBusOptions options_;
  const std::shared_ptr<FakeMessageLog> log_;

  mutable absl::Mutex mu_;
  std::deque<Completion> completions_ ABSL_GUARDED_BY(mu_);
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  size_t waiting_ ABSL_GUARDED_BY(mu_) = 0;  // accepted, done not yet run
  bool saturated_ ABSL_GUARDED_BY(mu_) = false;
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status fail_status_ ABSL_GUARDED_BY(mu_);
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  // The drain listener and handlers are only set before Start(), then called
  // without the lock by the one thread dispatching at a time.
  absl::AnyInvocable<void()> drain_listener_;
  std::map<std::string, RecordHandler> handlers_;
  std::map<PartitionKey, PartitionState> partitions_ ABSL_GUARDED_BY(mu_);
  uint64_t seen_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool consuming_ ABSL_GUARDED_BY(mu_) = false;
  bool dispatching_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  const std::shared_ptr<DoneSink> sink_;
  std::thread thread_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTING_FAKE_MESSAGE_BUS_H_
