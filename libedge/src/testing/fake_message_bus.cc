#include "edge/testing/fake_message_bus.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::testing {
namespace {

// How often the delivery thread looks for records appended by other buses
// sharing the log; records produced through this bus wake it at once.
constexpr absl::Duration kLogPollInterval = absl::Milliseconds(5);

}  // namespace

// ---------------------------------------------------------------------------
// FakeMessageBus

FakeMessageBus::FakeMessageBus(FakeMessageBusOptions options)
    : options_(std::move(options)),
      log_(options_.log ? options_.log : std::make_shared<FakeMessageLog>()),
      sink_(std::make_shared<DoneSink>()) {
  absl::MutexLock lock(&sink_->mu);
  sink_->bus = this;
}

FakeMessageBus::~FakeMessageBus() { Shutdown(absl::Now()); }

void FakeMessageBus::Publish(OutgoingRecord record, PublishDone done) {
  if (!done) done = [](absl::Status) {};
  {
    absl::MutexLock lock(&mu_);
    if (!shut_down_) {
      ++waiting_;
      if (waiting_ >= options_.capacity) saturated_ = true;
      if (fail_next_ > 0) {
        --fail_next_;
        completions_.push_back({std::move(done), fail_status_});
      } else if (unavailable_) {
        held_.push_back({std::move(record), std::move(done)});
      } else {
        StoreLocked(std::move(record), std::move(done));
      }
      return;
    }
  }
  done(absl::CancelledError("message bus is shut down"));
}

void FakeMessageBus::StoreLocked(OutgoingRecord record, PublishDone done) {
  absl::StatusOr<int64_t> offset =
      log_->Append(record.topic, -1, std::move(record.key), std::move(record.value),
                   std::move(record.headers), /*from_publish=*/true);
  completions_.push_back({std::move(done), offset.status()});
}

bool FakeMessageBus::Saturated() const {
  absl::MutexLock lock(&mu_);
  return waiting_ >= options_.capacity;
}

void FakeMessageBus::SetDrainListener(absl::AnyInvocable<void()> listener) {
  absl::MutexLock lock(&mu_);
  if (started_) return;  // documented: set before Start()
  drain_listener_ = std::move(listener);
}

absl::Status FakeMessageBus::Subscribe(const std::string& topic, RecordHandler handler) {
  if (topic.empty()) return absl::InvalidArgumentError("Subscribe: topic name is empty");
  if (!handler) return absl::InvalidArgumentError("Subscribe: handler is empty");
  absl::MutexLock lock(&mu_);
  if (started_ || shut_down_) {
    return absl::FailedPreconditionError("Subscribe must be called before Start");
  }
  if (!handlers_.emplace(topic, std::move(handler)).second) {
    return absl::AlreadyExistsError(absl::StrCat("already subscribed to ", topic));
  }
  return absl::OkStatus();
}

absl::Status FakeMessageBus::Start() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::FailedPreconditionError("message bus is shut down");
  if (started_) return absl::FailedPreconditionError("message bus already started");
  started_ = true;
  consuming_ = !handlers_.empty();
  if (options_.mode == DeliveryMode::kAutomatic) {
    thread_ = std::thread([this] { Loop(); });
  }
  return absl::OkStatus();
}

void FakeMessageBus::StopConsuming() {
  absl::MutexLock lock(&mu_);
  consuming_ = false;
}

absl::StatusOr<int64_t> FakeMessageBus::Produce(const std::string& topic, const std::string& key,
                                                const std::string& value,
                                                std::vector<RecordHeader> headers,
                                                int32_t partition) {
  if (partition < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Produce: partition must be >= 0, got ", partition));
  }
  absl::StatusOr<int64_t> offset =
      log_->Append(topic, partition, key, value, std::move(headers), /*from_publish=*/false);
  // Releasing the lock makes the delivery thread re-check for new records.
  absl::MutexLock lock(&mu_);
  return offset;
}

std::vector<OutgoingRecord> FakeMessageBus::Published(const std::string& topic) const {
  return log_->Published(topic);
}

bool FakeMessageBus::WaitForPublished(const std::string& topic, size_t n,
                                      absl::Duration timeout) const {
  return log_->WaitForPublished(topic, n, timeout);
}

int64_t FakeMessageBus::Committed(const std::string& topic, int32_t partition) const {
  return log_->Committed(options_.group_id, topic, partition);
}

size_t FakeMessageBus::PendingPublishes() const {
  absl::MutexLock lock(&mu_);
  return waiting_;
}

size_t FakeMessageBus::OutstandingRecords() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [key, state] : partitions_) n += state.outstanding.size();
  return n;
}

void FakeMessageBus::FailNextPublishes(int n, absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_next_ = std::max(n, 0);
  fail_status_ =
      status.ok() ? absl::UnavailableError("injected publish failure") : std::move(status);
}

void FakeMessageBus::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
  if (unavailable_) return;
  while (!held_.empty()) {
    Held h = std::move(held_.front());
    held_.pop_front();
    StoreLocked(std::move(h.record), std::move(h.done));
  }
}

bool FakeMessageBus::HasWorkLocked() const {
  if (dispatching_) return false;
  if (!completions_.empty()) return true;
  return consuming_ && log_->version() != seen_version_;
}

FakeMessageBus::Batch FakeMessageBus::TakeBatchLocked() {
  Batch batch;
  batch.completions.assign(std::make_move_iterator(completions_.begin()),
                           std::make_move_iterator(completions_.end()));
  completions_.clear();
  if (consuming_) {
    seen_version_ = log_->version();
    for (auto& [topic, handler] : handlers_) {
      int32_t parts = log_->Partitions(topic);
      for (int32_t p = 0; p < parts; ++p) {
        PartitionState& state = partitions_[{topic, p}];
        if (state.next < 0) state.next = log_->Committed(options_.group_id, topic, p);
        for (IncomingRecord& r :
             log_->Read(topic, p, state.next, std::numeric_limits<size_t>::max())) {
          state.outstanding.insert(r.offset);
          state.next = r.offset + 1;
          batch.records.emplace_back(&handler, std::move(r));
        }
      }
    }
  }
  dispatching_ = !batch.completions.empty() || !batch.records.empty();
  return batch;
}

size_t FakeMessageBus::RunBatch(Batch batch) {
  size_t ran = 0;
  for (Completion& c : batch.completions) {
    c.done(std::move(c.status));
    ++ran;
  }
  bool drained = false;
  {
    absl::MutexLock lock(&mu_);
    waiting_ -= batch.completions.size();
    if (saturated_ && waiting_ < options_.capacity) {
      saturated_ = false;
      drained = true;
    }
  }
  if (drained && drain_listener_) {
    drain_listener_();
    ++ran;
  }
  for (size_t i = 0; i < batch.records.size(); ++i) {
    {
      absl::MutexLock lock(&mu_);
      if (!consuming_) {
        // Give back what was not handed out; it goes to the next consumer.
        for (size_t j = i; j < batch.records.size(); ++j) {
          const IncomingRecord& r = batch.records[j].second;
          PartitionState& state = partitions_[{r.topic, r.partition}];
          state.outstanding.erase(r.offset);
          state.next = std::min(state.next, r.offset);
        }
        break;
      }
    }
    IncomingRecord& record = batch.records[i].second;
    PartitionKey key{record.topic, record.partition};
    int64_t offset = record.offset;
    // Run: the record's outcome. Destroyed unrun: abandoned (MessageBus).
    struct Outcome {
      std::shared_ptr<DoneSink> sink;
      PartitionKey key;
      int64_t offset = 0;
      bool ran = false;
      ~Outcome() {
        if (ran || sink == nullptr) return;
        absl::MutexLock lock(&sink->mu);
        if (sink->bus != nullptr) sink->bus->RecordAbandonedFor(key, offset);
      }
    };
    auto outcome = std::make_unique<Outcome>();
    outcome->sink = sink_;
    outcome->key = key;
    outcome->offset = offset;
    RecordDone done = [outcome = std::move(outcome)]() {
      outcome->ran = true;
      absl::MutexLock lock(&outcome->sink->mu);
      if (outcome->sink->bus != nullptr)
        outcome->sink->bus->RecordDoneFor(outcome->key, outcome->offset);
    };
    (*batch.records[i].first)(std::move(record), std::move(done));
    ++ran;
  }
  absl::MutexLock lock(&mu_);
  dispatching_ = false;
  return ran;
}

void FakeMessageBus::RecordAbandonedFor(const PartitionKey& key, int64_t offset) {
  absl::MutexLock lock(&mu_);
  auto it = partitions_.find(key);
  if (it == partitions_.end() || !it->second.outstanding.count(offset)) return;
  it->second.abandoned.insert(offset);
}

void FakeMessageBus::RecordDoneFor(const PartitionKey& key, int64_t offset) {
  absl::MutexLock lock(&mu_);
  auto it = partitions_.find(key);
  if (it == partitions_.end() || it->second.outstanding.erase(offset) == 0) return;
  const PartitionState& state = it->second;
  int64_t committed = state.outstanding.empty() ? state.next : *state.outstanding.begin();
  log_->Commit(options_.group_id, key.first, key.second, committed);
}

size_t FakeMessageBus::DeliverPending() {
  size_t total = 0;
  while (true) {
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      if (!started_ || !HasWorkLocked()) return total;
      batch = TakeBatchLocked();
    }
    size_t ran = RunBatch(std::move(batch));
    if (ran == 0) return total;
    total += ran;
  }
}

void FakeMessageBus::Loop() {
  while (true) {
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || HasWorkLocked(); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), kLogPollInterval);
      if (stopping_) return;
      if (!HasWorkLocked()) continue;
      batch = TakeBatchLocked();
    }
    RunBatch(std::move(batch));
  }
}

void FakeMessageBus::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    consuming_ = false;
  }
  // Wait for outcomes and publish completions. In manual mode nobody else
  // runs completions, so this thread does.
  while (true) {
    if (options_.mode == DeliveryMode::kManual) DeliverPending();
    absl::MutexLock lock(&mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (waiting_ != 0) return false;
      for (const auto& [key, state] : partitions_) {
        if (state.outstanding.size() != state.abandoned.size()) return false;
      }
      return true;
    };
    auto progress = [this, &settled]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return settled() ||
             (options_.mode == DeliveryMode::kManual && !completions_.empty() && !dispatching_);
    };
    mu_.AwaitWithDeadline(absl::Condition(&progress), deadline);
    if (settled() || absl::Now() >= deadline) break;
  }
  std::vector<Completion> cancelled;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  {
    absl::MutexLock lock(&sink_->mu);
    sink_->bus = nullptr;  // later RecordDone calls commit nothing
  }
  {
    absl::MutexLock lock(&mu_);
    for (Completion& c : completions_) cancelled.push_back(std::move(c));
    completions_.clear();
    for (Held& h : held_) {
      cancelled.push_back(
          {std::move(h.done), absl::CancelledError("message bus shut down before the "
                                                   "record could be stored")});
    }
    held_.clear();
    waiting_ = 0;
  }
  for (Completion& c : cancelled) c.done(std::move(c.status));
}

}  // namespace edge::testing
