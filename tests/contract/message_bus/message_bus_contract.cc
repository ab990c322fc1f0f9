// The MessageBus contract suite (see message_bus_contract.h).
#include "contract/message_bus/message_bus_contract.h"

#include <atomic>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

// Publish outcomes, in completion order.
class PublishResults {
 public:
  PublishDone Callback() {
    return [this](absl::Status s) {
      absl::MutexLock lock(&mu_);
      statuses_.push_back(std::move(s));
    };
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return statuses_.size();
  }
  std::vector<absl::Status> statuses() {
    absl::MutexLock lock(&mu_);
    return statuses_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Status> statuses_ ABSL_GUARDED_BY(mu_);
};

// Records handed to a handler, with their `done`s held for the test.
class Received {
 public:
  RecordHandler Handler(bool auto_done) {
    return [this, auto_done](IncomingRecord r, RecordDone done) {
      absl::MutexLock lock(&mu_);
      if (auto_done)
        done();
      else
        dones_[{r.partition, r.offset}] = std::move(done);
      records_.push_back(std::move(r));
    };
  }
  size_t size() {
    absl::MutexLock lock(&mu_);
    return records_.size();
  }
  std::vector<IncomingRecord> records() {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  void Done(int32_t partition, int64_t offset) {
    RecordDone done;
    {
      absl::MutexLock lock(&mu_);
      auto it = dones_.find({partition, offset});
      ASSERT_NE(it, dones_.end()) << "no record at " << partition << "/" << offset;
      done = std::move(it->second);
      dones_.erase(it);
    }
    done();
  }

 private:
  absl::Mutex mu_;
  std::vector<IncomingRecord> records_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<int32_t, int64_t>, RecordDone> dones_ ABSL_GUARDED_BY(mu_);
};

std::string UniqueName(absl::string_view base) {
  static std::atomic<int> counter{0};
  return absl::StrCat(base, "-", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                      "-", counter++);
}

TEST_P(MessageBusContractTest, PublishCompletesOkAndRecordIsReadable) {
  const std::string topic = UniqueName("events");
  auto bus = harness_->NewBus(UniqueName("group"));
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE((*bus)->Start().ok());
  PublishResults results;
  (*bus)->Publish({topic,
                   "peer-1",
                   R"({"event_type":"connected"})",
                   {{"content-type", "application/json"}, {"empty", ""}}},
                  results.Callback());
  ASSERT_TRUE(WaitFor([&] { return results.size() == 1; }, kTimeout));
  EXPECT_TRUE(results.statuses()[0].ok()) << results.statuses()[0];

  auto stored = harness_->ReadAll(topic, 1, kTimeout);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1u);
  const IncomingRecord& r = (*stored)[0];
  EXPECT_EQ(r.key, "peer-1");
  EXPECT_EQ(r.value, R"({"event_type":"connected"})");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0].key, "content-type");
  EXPECT_EQ(r.headers[0].value, "application/json");
  EXPECT_EQ(r.headers[1].key, "empty");
  EXPECT_EQ(r.headers[1].value, "");
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

TEST_P(MessageBusContractTest, PublishesToOneKeyStayInOrder) {
  const std::string topic = UniqueName("events");
  ASSERT_TRUE(harness_->CreateTopic(topic, 3).ok());
  auto bus = harness_->NewBus(UniqueName("group"));
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE((*bus)->Start().ok());
  constexpr int kPerKey = 200;
  PublishResults results;
  for (int i = 0; i < kPerKey; ++i) {
    for (const char* key : {"peer-a", "peer-b", "peer-c"}) {
      (*bus)->Publish({topic, key, absl::StrCat(i), {}}, results.Callback());
    }
  }
  ASSERT_TRUE(WaitFor([&] { return results.size() == 3 * kPerKey; }, kTimeout));
  for (const absl::Status& s : results.statuses()) ASSERT_TRUE(s.ok()) << s;

  auto stored = harness_->ReadAll(topic, 3 * kPerKey, kTimeout);
  ASSERT_TRUE(stored.ok()) << stored.status();
  std::map<std::string, std::vector<std::string>> by_key;
  for (const IncomingRecord& r : *stored) by_key[r.key].push_back(r.value);
  ASSERT_EQ(by_key.size(), 3u);
  for (const auto& [key, values] : by_key) {
    ASSERT_EQ(values.size(), static_cast<size_t>(kPerKey)) << key;
    for (int i = 0; i < kPerKey; ++i) ASSERT_EQ(values[i], absl::StrCat(i)) << key;
  }
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

TEST_P(MessageBusContractTest, SubscribeReceivesRecordsInPartitionOrderWithHeaders) {
  const std::string topic = UniqueName("commands");
  ASSERT_TRUE(harness_->CreateTopic(topic, 2).ok());
  constexpr int kPerPartition = 10;
  for (int i = 0; i < kPerPartition; ++i) {
    for (int32_t p = 0; p < 2; ++p) {
      ASSERT_TRUE(harness_
                      ->Produce(topic, p, absl::StrCat("peer-", p), absl::StrCat(p, ":", i),
                                {{"seq", absl::StrCat(i)}})
                      .ok());
    }
  }
  auto bus = harness_->NewBus(UniqueName("group"));
  ASSERT_TRUE(bus.ok()) << bus.status();
  Received received;
  ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler(/*auto_done=*/true)).ok());
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return received.size() == 2 * kPerPartition; }, kTimeout))
      << received.size();

  std::map<int32_t, std::vector<IncomingRecord>> by_partition;
  for (IncomingRecord& r : received.records()) by_partition[r.partition].push_back(r);
  ASSERT_EQ(by_partition.size(), 2u);
  for (const auto& [p, records] : by_partition) {
    ASSERT_EQ(records.size(), static_cast<size_t>(kPerPartition));
    for (int i = 0; i < kPerPartition; ++i) {
      EXPECT_EQ(records[i].topic, topic);
      EXPECT_EQ(records[i].offset, i);
      EXPECT_EQ(records[i].key, absl::StrCat("peer-", p));
      EXPECT_EQ(records[i].value, absl::StrCat(p, ":", i));
      ASSERT_EQ(records[i].headers.size(), 1u);
      EXPECT_EQ(records[i].headers[0].key, "seq");
      EXPECT_EQ(records[i].headers[0].value, absl::StrCat(i));
    }
  }
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

TEST_P(MessageBusContractTest, CommitNeverPassesRecordWithoutOutcomeAndRestartRedelivers) {
  const std::string topic = UniqueName("commands");
  const std::string group = UniqueName("group");
  ASSERT_TRUE(harness_->CreateTopic(topic, 1).ok());
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(harness_->Produce(topic, 0, "peer-1", absl::StrCat(i), {}).ok());
  }
  auto committed = [&]() -> int64_t {
    absl::StatusOr<int64_t> c = harness_->Committed(group, topic, 0);
    return c.ok() ? *c : -100;
  };

  auto first = harness_->NewBus(group);
  ASSERT_TRUE(first.ok()) << first.status();
  Received received;
  ASSERT_TRUE((*first)->Subscribe(topic, received.Handler(/*auto_done=*/false)).ok());
  ASSERT_TRUE((*first)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return received.size() == 6; }, kTimeout));

  // Outcomes out of order: 0, 1 and 3. The commit stops at the gap (2).
  received.Done(0, 3);
  received.Done(0, 0);
  received.Done(0, 1);
  ASSERT_TRUE(WaitFor([&] { return committed() == 2; }, kTimeout)) << committed();
  // Closing the gap moves it past every contiguous outcome (2 and 3).
  received.Done(0, 2);
  ASSERT_TRUE(WaitFor([&] { return committed() == 4; }, kTimeout)) << committed();
  // 4 and 5 never get an outcome: shutting down gives up on them.
  (*first)->Shutdown(absl::Now() + absl::Milliseconds(300));
  EXPECT_EQ(committed(), 4);

  auto second = harness_->NewBus(group);
  ASSERT_TRUE(second.ok()) << second.status();
  Received again;
  ASSERT_TRUE((*second)->Subscribe(topic, again.Handler(/*auto_done=*/true)).ok());
  ASSERT_TRUE((*second)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return again.size() >= 2; }, kTimeout));
  std::vector<IncomingRecord> redelivered = again.records();
  ASSERT_EQ(redelivered.size(), 2u);
  EXPECT_EQ(redelivered[0].offset, 4);
  EXPECT_EQ(redelivered[0].value, "4");
  EXPECT_EQ(redelivered[1].offset, 5);
  EXPECT_EQ(redelivered[1].value, "5");
  (*second)->Shutdown(absl::Now() + kTimeout);
  EXPECT_EQ(committed(), 6);
}

TEST_P(MessageBusContractTest, ShutdownCancelsPublishesWhenBrokerUnreachable) {
  const std::string topic = UniqueName("events");
  auto bus = harness_->NewBus(UniqueName("group"));
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE((*bus)->Start().ok());
  harness_->SetReachable(bus->get(), false);
  PublishResults results;
  for (int i = 0; i < 3; ++i) (*bus)->Publish({topic, "peer-1", "v", {}}, results.Callback());
  absl::Time start = absl::Now();
  (*bus)->Shutdown(start + absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_EQ(results.size(), 3u);
  for (const absl::Status& s : results.statuses()) {
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
  }
  // After Shutdown a publish fails at once.
  (*bus)->Publish({topic, "peer-1", "late", {}}, results.Callback());
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(absl::IsCancelled(results.statuses()[3]));
  harness_->SetReachable(bus->get(), true);
}

TEST_P(MessageBusContractTest, SaturatedWhileCapacityWaitsAndDrainListenerFires) {
  const std::string topic = UniqueName("events");
  auto bus = harness_->NewBus(UniqueName("group"), /*capacity=*/5);
  ASSERT_TRUE(bus.ok()) << bus.status();
  std::atomic<int> drained{0};
  (*bus)->SetDrainListener([&] { ++drained; });
  ASSERT_TRUE((*bus)->Start().ok());
  harness_->SetReachable(bus->get(), false);
  PublishResults results;
  for (int i = 0; i < 4; ++i) (*bus)->Publish({topic, "peer-1", "v", {}}, results.Callback());
  EXPECT_FALSE((*bus)->Saturated());
  (*bus)->Publish({topic, "peer-1", "v", {}}, results.Callback());
  EXPECT_TRUE((*bus)->Saturated());
  harness_->SetReachable(bus->get(), true);
  ASSERT_TRUE(WaitFor([&] { return drained.load() == 1; }, kTimeout));
  EXPECT_FALSE((*bus)->Saturated());
  ASSERT_TRUE(WaitFor([&] { return results.size() == 5; }, kTimeout));
  for (const absl::Status& s : results.statuses()) EXPECT_TRUE(s.ok()) << s;
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

TEST_P(MessageBusContractTest, StopConsumingStopsHandingOutRecords) {
  const std::string topic = UniqueName("commands");
  const std::string group = UniqueName("group");
  ASSERT_TRUE(harness_->CreateTopic(topic, 1).ok());
  ASSERT_TRUE(harness_->Produce(topic, 0, "peer-1", "0", {}).ok());
  auto bus = harness_->NewBus(group);
  ASSERT_TRUE(bus.ok()) << bus.status();
  Received received;
  ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler(/*auto_done=*/false)).ok());
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return received.size() == 1; }, kTimeout));

  (*bus)->StopConsuming();
  for (int i = 1; i < 4; ++i) {
    ASSERT_TRUE(harness_->Produce(topic, 0, "peer-1", absl::StrCat(i), {}).ok());
  }
  // The records are stored and readable, yet the stopped bus hands none out.
  ASSERT_TRUE(harness_->ReadAll(topic, 4, kTimeout).ok());
  EXPECT_FALSE(WaitFor([&] { return received.size() > 1; }, absl::Seconds(1)));
  // A record handed out before still gets its outcome committed.
  received.Done(0, 0);
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<int64_t> c = harness_->Committed(group, topic, 0);
        return c.ok() && *c == 1;
      },
      kTimeout));
  (*bus)->Shutdown(absl::Now() + kTimeout);
  EXPECT_EQ(received.size(), 1u);
}

}  // namespace
}  // namespace edge::testing
