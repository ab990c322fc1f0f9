// KafkaMessageBus under faults, against EmbeddedKafka over loopback TCP.
#include "edge/kafka/kafka_message_bus.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/kafka/embedded_kafka.h"
#include "edge/logger.h"
#include "gtest/gtest.h"
#include "kafka/kafka_test_client.h"
#include "support/wait.h"

namespace edge::kafka {
namespace {

using edge::testing::KafkaTestClient;
using edge::testing::WaitFor;

// Deadlines, not expectations: generous, so a loaded machine (ctest -j2 under
// CI, the sanitizer build) does not turn slowness into a failure.
constexpr absl::Duration kTimeout = absl::Seconds(60);
constexpr char kChildEnv[] = "EDGE_KAFKA_CRASH_CHILD";  // "bootstrap|group|topic|fd"

KafkaMessageBusOptions TestOptions(const std::string& bootstrap, const std::string& group) {
  KafkaMessageBusOptions options;
  options.bootstrap_servers = bootstrap;
  options.group_id = group;
  options.commit_interval = absl::Milliseconds(100);
  options.properties = {{"consumer.fetch.wait.max.ms", "10"},
                        {"consumer.session.timeout.ms", "4000"},
                        {"consumer.heartbeat.interval.ms", "500"}};
  return options;
}

class Outcomes {
 public:
  PublishDone Callback() {
    return [this](absl::Status s) {
      absl::MutexLock lock(&mu_);
      (s.ok() ? ok_ : failed_)++;
      if (!s.ok()) last_error_ = s;
    };
  }
  int ok() {
    absl::MutexLock lock(&mu_);
    return ok_;
  }
  int failed() {
    absl::MutexLock lock(&mu_);
    return failed_;
  }
  int total() {
    absl::MutexLock lock(&mu_);
    return ok_ + failed_;
  }
  absl::Status last_error() {
    absl::MutexLock lock(&mu_);
    return last_error_;
  }

 private:
  absl::Mutex mu_;
  int ok_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
};

// Every value "0".."n-1" is stored at least once.
void ExpectAllStored(KafkaTestClient& client, const std::string& topic, int n) {
  auto stored = client.ReadAll(topic, n, kTimeout);
  ASSERT_TRUE(stored.ok()) << stored.status();
  std::set<std::string> values;
  for (const IncomingRecord& r : *stored) values.insert(r.value);
  for (int i = 0; i < n; ++i) EXPECT_TRUE(values.count(absl::StrCat(i))) << "lost record " << i;
}

class KafkaMessageBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto kafka = EmbeddedKafka::Create(1);
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = *std::move(kafka);
    client_ = std::make_unique<KafkaTestClient>(kafka_->bootstrap_servers());
  }
  std::unique_ptr<EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaTestClient> client_;
};

TEST_F(KafkaMessageBusTest, BrokerDownWhilePublishingDeliversEverythingOnceBack) {
  KafkaMessageBusOptions options = TestOptions(kafka_->bootstrap_servers(), "g");
  // Records time out inside librdkafka while the broker is away; the bus
  // must send them again rather than fail them.
  options.properties.push_back({"producer.message.timeout.ms", "1000"});
  auto bus = KafkaMessageBus::Create(options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE((*bus)->Start().ok());
  Outcomes outcomes;
  (*bus)->Publish({"events", "peer-0", "warmup", {}}, outcomes.Callback());
  ASSERT_TRUE(WaitFor([&] { return outcomes.ok() == 1; }, kTimeout));

  ASSERT_TRUE(kafka_->SetBrokerDown(-1).ok());
  constexpr int kRecords = 100;
  for (int i = 0; i < kRecords; ++i) {
    (*bus)->Publish({"events", absl::StrCat("peer-", i % 7), absl::StrCat(i), {}},
                    outcomes.Callback());
  }
  // Down for three seconds (three message timeouts): nothing completes.
  EXPECT_FALSE(WaitFor([&] { return outcomes.total() > 1; }, absl::Seconds(3)));
  ASSERT_TRUE(kafka_->SetBrokerUp(-1).ok());
  ASSERT_TRUE(WaitFor([&] { return outcomes.total() == kRecords + 1; }, kTimeout))
      << outcomes.total();
  EXPECT_EQ(outcomes.failed(), 0) << outcomes.last_error();
  ExpectAllStored(*client_, "events", kRecords);
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

// EVENT_BUFFER_MAX_BYTES: the buffer is bounded in bytes as well as
// records, and while it is full the consumer hands out no record (a
// command's dead letter or forward would have no room).
TEST_F(KafkaMessageBusTest, ByteBoundSaturatesAndHoldsConsumptionUntilDrained) {
  // The producer speaks to a second cluster, down: nothing it publishes is
  // stored until that one comes up. The consumer reads from the first.
  auto events_cluster = EmbeddedKafka::Create(1);
  ASSERT_TRUE(events_cluster.ok()) << events_cluster.status();
  ASSERT_TRUE(kafka_->CreateTopic("cmds", 1).ok());
  KafkaMessageBusOptions options = TestOptions(kafka_->bootstrap_servers(), "g");
  options.properties.push_back(
      {"producer.bootstrap.servers", (*events_cluster)->bootstrap_servers()});
  options.capacity_bytes = 1 << 20;
  // The bus's log, to see when the consumer applied the hold.
  FILE* log_file = std::tmpfile();
  ASSERT_NE(log_file, nullptr);
  Logger logger(LogLevel::kInfo, LogFormat::kText, fileno(log_file));
  options.logger = &logger;
  auto logged = [&](absl::string_view text) {
    std::string all(1 << 16, '\0');
    ssize_t n = pread(fileno(log_file), all.data(), all.size(), 0);
    return n > 0 && absl::StrContains(absl::string_view(all.data(), n), text);
  };
  auto bus = KafkaMessageBus::Create(options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  std::atomic<int> handed{0};
  std::atomic<int> drained{0};
  ASSERT_TRUE((*bus)
                  ->Subscribe("cmds",
                              [&](IncomingRecord, RecordDone done) {
                                ++handed;
                                done();
                              })
                  .ok());
  (*bus)->SetDrainListener([&] { ++drained; });
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(client_->Produce("cmds", 0, "k", "first").ok());
  ASSERT_TRUE(WaitFor([&] { return handed == 1; }, kTimeout));

  ASSERT_TRUE((*events_cluster)->SetBrokerDown(-1).ok());
  Outcomes outcomes;
  const std::string value(400 * 1024, 'v');
  for (int i = 0; i < 2; ++i) (*bus)->Publish({"events", "peer-1", value, {}}, outcomes.Callback());
  EXPECT_FALSE((*bus)->Saturated());  // 800 KB of 1 MiB, 3 of 10,000 records.
  (*bus)->Publish({"events", "peer-1", value, {}}, outcomes.Callback());
  EXPECT_TRUE((*bus)->Saturated());

  // Held: a command produced now is not handed out while the buffer is full.
  ASSERT_TRUE(WaitFor([&] { return logged("consumed partitions paused"); }, kTimeout));
  ASSERT_TRUE(client_->Produce("cmds", 0, "k", "second").ok());
  EXPECT_FALSE(WaitFor([&] { return handed > 1; }, absl::Seconds(2)));

  ASSERT_TRUE((*events_cluster)->SetBrokerUp(-1).ok());
  ASSERT_TRUE(WaitFor([&] { return outcomes.total() == 3; }, kTimeout));
  EXPECT_EQ(outcomes.failed(), 0) << outcomes.last_error();
  EXPECT_FALSE((*bus)->Saturated());
  EXPECT_GE(drained.load(), 1);
  ASSERT_TRUE(WaitFor([&] { return handed == 2; }, kTimeout));
  EXPECT_TRUE(logged("consumed partitions resumed"));
  (*bus)->Shutdown(absl::Now() + kTimeout);
  std::fclose(log_file);
}

TEST_F(KafkaMessageBusTest, RetriableProduceErrorsAreRetriedAndDelivered) {
  ASSERT_TRUE(kafka_->CreateTopic("events", 2).ok());
  // NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, and a
  // dropped connection.
  ASSERT_TRUE(
      kafka_->PushRequestErrors(EmbeddedKafka::kProduceRequest, {6, 7, 19, 19, -195, 6}).ok());
  auto bus = KafkaMessageBus::Create(TestOptions(kafka_->bootstrap_servers(), "g"));
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE((*bus)->Start().ok());
  Outcomes outcomes;
  constexpr int kRecords = 50;
  for (int i = 0; i < kRecords; ++i) {
    (*bus)->Publish({"events", absl::StrCat("peer-", i % 3), absl::StrCat(i), {}},
                    outcomes.Callback());
  }
  ASSERT_TRUE(WaitFor([&] { return outcomes.total() == kRecords; }, kTimeout));
  EXPECT_EQ(outcomes.failed(), 0) << outcomes.last_error();
  ExpectAllStored(*client_, "events", kRecords);
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

TEST_F(KafkaMessageBusTest, FatalIdempotenceErrorRebuildsProducerAndLosesNothing) {
  ASSERT_TRUE(kafka_->CreateTopic("events", 1).ok());
  std::string log_path = ::testing::TempDir() + "/kafka_fatal_test.log";
  int fd = ::open(log_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  Logger logger(LogLevel::kWarn, LogFormat::kText, fd);
  KafkaMessageBusOptions options = TestOptions(kafka_->bootstrap_servers(), "g");
  options.logger = &logger;
  // The cluster refuses the producer id with CLUSTER_AUTHORIZATION_FAILED
  // once: an idempotent producer cannot go on and raises a fatal error.
  ASSERT_TRUE(kafka_->PushRequestErrors(EmbeddedKafka::kInitProducerIdRequest, {31}).ok());
  auto bus = KafkaMessageBus::Create(options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  ASSERT_TRUE((*bus)->Start().ok());
  Outcomes outcomes;
  constexpr int kRecords = 30;
  for (int i = 0; i < kRecords; ++i) {
    (*bus)->Publish({"events", "peer-0", absl::StrCat(i), {}}, outcomes.Callback());
  }
  ASSERT_TRUE(WaitFor([&] { return outcomes.total() == kRecords; }, kTimeout)) << outcomes.total();
  EXPECT_EQ(outcomes.failed(), 0) << outcomes.last_error();
  ExpectAllStored(*client_, "events", kRecords);
  (*bus)->Shutdown(absl::Now() + kTimeout);
  ::close(fd);
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("failed fatally"), std::string::npos)
      << "the fatal-error path was not taken; log:\n"
      << text.str();
}

// The consumer half of the crash test, run in a child process (see below):
// consumes every record, gives offsets 0..4 of each partition an outcome,
// reports on the pipe when all were handed out, then waits to be killed.
TEST(KafkaCrashChild, ConsumeAndHoldOutcomes) {
  const char* spec = std::getenv(kChildEnv);
  if (spec == nullptr) GTEST_SKIP() << "only run as the crash test's child";
  std::vector<std::string> parts = absl::StrSplit(spec, '|');
  ASSERT_EQ(parts.size(), 4u);
  int fd = 0;
  ASSERT_TRUE(absl::SimpleAtoi(parts[3], &fd));
  auto bus = KafkaMessageBus::Create(TestOptions(parts[0], parts[1]));
  ASSERT_TRUE(bus.ok()) << bus.status();
  std::atomic<int> received{0};
  absl::Mutex mu;
  std::vector<RecordDone> held;
  ASSERT_TRUE((*bus)
                  ->Subscribe(parts[2],
                              [&](IncomingRecord r, RecordDone done) {
                                if (r.offset < 5) {
                                  done();
                                } else {
                                  absl::MutexLock lock(&mu);
                                  held.push_back(std::move(done));
                                }
                                ++received;
                              })
                  .ok());
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return received.load() == 20; }, kTimeout));
  ASSERT_EQ(::write(fd, "r", 1), 1);
  ::pause();  // killed here, outcomes for offsets 5..9 never come
}

TEST_F(KafkaMessageBusTest, KilledConsumerRecordsWithoutOutcomeAreRedelivered) {
  const std::string topic = "edge-commands-e1";
  const std::string group = "edge-e1";
  ASSERT_TRUE(kafka_->CreateTopic(topic, 2).ok());
  for (int i = 0; i < 10; ++i) {
    for (int32_t p = 0; p < 2; ++p) {
      ASSERT_TRUE(client_->Produce(topic, p, absl::StrCat("peer-", p), absl::StrCat(i)).ok());
    }
  }
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  std::string spec =
      absl::StrCat(kafka_->bootstrap_servers(), "|", group, "|", topic, "|", pipefd[1]);
  std::string self = "/proc/self/exe";
  char exe[4096];
  ssize_t len = ::readlink(self.c_str(), exe, sizeof(exe) - 1);
  ASSERT_GT(len, 0);
  exe[len] = '\0';
  std::string env = absl::StrCat(kChildEnv, "=", spec);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipefd[0]);
    char filter[] = "--gtest_filter=KafkaCrashChild.ConsumeAndHoldOutcomes";
    char* argv[] = {exe, filter, nullptr};
    char* envp[] = {env.data(), nullptr};
    ::execve(exe, argv, envp);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char byte = 0;
  ASSERT_EQ(::read(pipefd[0], &byte, 1), 1) << "child failed before consuming everything";
  ::close(pipefd[0]);
  // Wait for the child's outcomes (offsets 0..4) to be committed, then kill it.
  for (int32_t p = 0; p < 2; ++p) {
    ASSERT_TRUE(WaitFor(
        [&] {
          auto c = client_->Committed(group, topic, p);
          return c.ok() && *c == 5;
        },
        kTimeout));
  }
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto bus = KafkaMessageBus::Create(TestOptions(kafka_->bootstrap_servers(), group));
  ASSERT_TRUE(bus.ok()) << bus.status();
  absl::Mutex mu;
  std::map<int32_t, std::vector<int64_t>> redelivered;
  int count = 0;
  ASSERT_TRUE((*bus)
                  ->Subscribe(topic,
                              [&](IncomingRecord r, RecordDone done) {
                                absl::MutexLock lock(&mu);
                                redelivered[r.partition].push_back(r.offset);
                                ++count;
                                done();
                              })
                  .ok());
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(WaitFor(
      [&] {
        absl::MutexLock lock(&mu);
        return count == 10;
      },
      absl::Seconds(30)));
  (*bus)->Shutdown(absl::Now() + kTimeout);
  // 10 outcomes in the child + 10 here = the 20 records, none lost.
  absl::MutexLock lock(&mu);
  EXPECT_EQ(count, 10);
  for (int32_t p = 0; p < 2; ++p) {
    EXPECT_EQ(redelivered[p], (std::vector<int64_t>{5, 6, 7, 8, 9})) << "partition " << p;
  }
  for (int32_t p = 0; p < 2; ++p) {
    auto c = client_->Committed(group, topic, p);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(*c, 10);
  }
}

}  // namespace
}  // namespace edge::kafka

namespace edge::kafka {
namespace {

// Collects what a subscription is handed; keeps or runs each RecordDone.
class Received {
 public:
  explicit Received(bool hold) : hold_(hold) {}
  RecordHandler Handler() {
    return [this](IncomingRecord r, RecordDone done) {
      absl::MutexLock lock(&mu_);
      offsets_.push_back(r.offset);
      if (hold_) {
        held_.push_back(std::move(done));
      } else {
        done();
      }
    };
  }
  size_t count() {
    absl::MutexLock lock(&mu_);
    return offsets_.size();
  }
  std::vector<int64_t> offsets() {
    absl::MutexLock lock(&mu_);
    return offsets_;
  }
  void RunHeld() {
    std::vector<RecordDone> run;
    {
      absl::MutexLock lock(&mu_);
      run.swap(held_);
      hold_ = false;
    }
    for (RecordDone& done : run) done();
  }

 private:
  absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> offsets_ ABSL_GUARDED_BY(mu_);
  std::vector<RecordDone> held_ ABSL_GUARDED_BY(mu_);
};

TEST_F(KafkaMessageBusTest, ReadsWithoutAGroupJoinAndSaysWhenItReads) {
  const std::string topic = "edge-commands-e1";
  ASSERT_TRUE(kafka_->CreateTopic(topic, 2).ok());
  ASSERT_TRUE(client_->Produce(topic, 1, "peer-1", "before").ok());
  auto bus = KafkaMessageBus::Create(TestOptions(kafka_->bootstrap_servers(), "edge-e1"));
  ASSERT_TRUE(bus.ok()) << bus.status();
  Received received(/*hold=*/false);
  ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler()).ok());
  EXPECT_FALSE((*bus)->Reading());
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return (*bus)->Reading(); }, kTimeout));
  ASSERT_TRUE(WaitFor([&] { return received.count() == 1; }, kTimeout));
  ASSERT_TRUE(client_->Produce(topic, 0, "peer-0", "after").ok());
  ASSERT_TRUE(WaitFor([&] { return received.count() == 2; }, kTimeout));
  // Positions are committed to the group without any group membership.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c0 = client_->Committed("edge-e1", topic, 0);
        auto c1 = client_->Committed("edge-e1", topic, 1);
        return c0.ok() && *c0 == 1 && c1.ok() && *c1 == 1;
      },
      kTimeout));
  (*bus)->Shutdown(absl::Now() + kTimeout);
  EXPECT_FALSE((*bus)->Reading());
}

TEST_F(KafkaMessageBusTest, CommittedPositionGoneFromTheBrokerIsReportedWithTheSkippedCount) {
  const std::string topic = "edge-commands-e1";
  const std::string group = "edge-e1";
  ASSERT_TRUE(kafka_->CreateTopic(topic, 1).ok());
  ASSERT_TRUE(client_->Produce(topic, 0, "peer-0", "first").ok());
  {
    auto bus = KafkaMessageBus::Create(TestOptions(kafka_->bootstrap_servers(), group));
    ASSERT_TRUE(bus.ok()) << bus.status();
    Received received(/*hold=*/false);
    ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler()).ok());
    ASSERT_TRUE((*bus)->Start().ok());
    ASSERT_TRUE(WaitFor(
        [&] {
          auto c = client_->Committed(group, topic, 0);
          return c.ok() && *c == 1;
        },
        kTimeout));
    (*bus)->Shutdown(absl::Now() + kTimeout);
  }
  // While the edge is away the broker's retention drops the oldest records,
  // position 1 among them (the embedded broker keeps ~5 MiB per partition).
  const std::string big(512 * 1024, 'x');
  for (int i = 0; i < 16; ++i) {
    ASSERT_TRUE(client_->Produce(topic, 0, "peer-0", absl::StrCat(i, big)).ok());
  }
  std::string log_path = ::testing::TempDir() + "/kafka_reset_test.log";
  int fd = ::open(log_path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  Logger logger(LogLevel::kWarn, LogFormat::kText, fd);
  KafkaMessageBusOptions options = TestOptions(kafka_->bootstrap_servers(), group);
  options.logger = &logger;
  absl::Mutex mu;
  int resets = 0;
  int64_t skipped = -1;
  options.on_offset_reset = [&](const std::string& t, int32_t partition, int64_t n) {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(t, topic);
    EXPECT_EQ(partition, 0);
    ++resets;
    skipped = n;
  };
  auto bus = KafkaMessageBus::Create(options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  Received received(/*hold=*/false);
  ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler()).ok());
  ASSERT_TRUE((*bus)->Start().ok());
  // Read on from the oldest record left, up to the last one (offset 16).
  ASSERT_TRUE(WaitFor(
      [&] {
        std::vector<int64_t> offsets = received.offsets();
        return !offsets.empty() && offsets.back() == 16;
      },
      kTimeout));
  (*bus)->Shutdown(absl::Now() + kTimeout);
  ::close(fd);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(resets, 1);
  ASSERT_GT(skipped, 0);
  std::vector<int64_t> offsets = received.offsets();
  EXPECT_EQ(offsets.front(), 1 + skipped) << "skipped count does not match what was read";
  EXPECT_EQ(offsets.size(), static_cast<size_t>(16 - skipped));
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_NE(text.str().find("commands were skipped"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find(absl::StrCat("skipped=", skipped)), std::string::npos) << text.str();
}

TEST_F(KafkaMessageBusTest, FetchingPausesWhileTooManyRecordsWaitForAnOutcome) {
  const std::string topic = "edge-commands-e1";
  ASSERT_TRUE(kafka_->CreateTopic(topic, 1).ok());
  constexpr int kRecords = 40;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(client_->Produce(topic, 0, "peer-0", absl::StrCat(i)).ok());
  }
  KafkaMessageBusOptions options = TestOptions(kafka_->bootstrap_servers(), "edge-e1");
  options.max_outstanding_records = 5;
  auto bus = KafkaMessageBus::Create(options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  Received received(/*hold=*/true);
  ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler()).ok());
  ASSERT_TRUE((*bus)->Start().ok());
  ASSERT_TRUE(WaitFor([&] { return received.count() >= 6; }, kTimeout));
  // Paused past the bound: nothing more is handed out while the outcomes
  // are missing.
  EXPECT_FALSE(WaitFor([&] { return received.count() > 6; }, absl::Seconds(1))) << received.count();
  received.RunHeld();
  ASSERT_TRUE(WaitFor([&] { return received.count() == kRecords; }, kTimeout)) << received.count();
  std::vector<int64_t> offsets = received.offsets();
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(offsets[i], i);
  (*bus)->Shutdown(absl::Now() + kTimeout);
}

// Two reasons to pause fetching, the records waiting for their outcome and a
// full event buffer: the end of one does not resume fetching while the other
// still holds.
TEST_F(KafkaMessageBusTest, DrainedEventBufferDoesNotResumeFetchingWhileOutcomesAreMissing) {
  auto events_cluster = EmbeddedKafka::Create(1);
  ASSERT_TRUE(events_cluster.ok()) << events_cluster.status();
  const std::string topic = "edge-commands-e1";
  ASSERT_TRUE(kafka_->CreateTopic(topic, 1).ok());
  constexpr int kRecords = 10;
  for (int i = 0; i < kRecords; ++i) {
    ASSERT_TRUE(client_->Produce(topic, 0, "peer-0", absl::StrCat(i)).ok());
  }
  KafkaMessageBusOptions options = TestOptions(kafka_->bootstrap_servers(), "edge-e1");
  options.properties.push_back(
      {"producer.bootstrap.servers", (*events_cluster)->bootstrap_servers()});
  options.capacity_bytes = 1 << 20;
  options.max_outstanding_records = 2;
  FILE* log_file = std::tmpfile();
  ASSERT_NE(log_file, nullptr);
  Logger logger(LogLevel::kInfo, LogFormat::kText, fileno(log_file));
  options.logger = &logger;
  auto logged = [&](absl::string_view text) {
    std::string all(1 << 16, '\0');
    ssize_t n = pread(fileno(log_file), all.data(), all.size(), 0);
    return n > 0 && absl::StrContains(absl::string_view(all.data(), n), text);
  };
  auto bus = KafkaMessageBus::Create(options);
  ASSERT_TRUE(bus.ok()) << bus.status();
  Received received(/*hold=*/true);
  ASSERT_TRUE((*bus)->Subscribe(topic, received.Handler()).ok());
  ASSERT_TRUE((*bus)->Start().ok());
  // Throttled past the bound.
  ASSERT_TRUE(WaitFor([&] { return received.count() >= 3; }, kTimeout));
  ASSERT_TRUE(WaitFor([&] { return logged("too many commands wait"); }, kTimeout));

  // The event buffer fills, then drains.
  ASSERT_TRUE((*events_cluster)->SetBrokerDown(-1).ok());
  Outcomes outcomes;
  const std::string value(400 * 1024, 'v');
  for (int i = 0; i < 3; ++i) (*bus)->Publish({"events", "peer-1", value, {}}, outcomes.Callback());
  EXPECT_TRUE((*bus)->Saturated());
  ASSERT_TRUE(WaitFor([&] { return logged("consumed partitions paused"); }, kTimeout));
  ASSERT_TRUE((*events_cluster)->SetBrokerUp(-1).ok());
  ASSERT_TRUE(WaitFor([&] { return outcomes.total() == 3; }, kTimeout));
  EXPECT_EQ(outcomes.failed(), 0) << outcomes.last_error();
  ASSERT_TRUE(WaitFor([&] { return logged("consumed partitions resumed"); }, kTimeout));
  // Still throttled: nothing more is handed out.
  EXPECT_FALSE(WaitFor([&] { return received.count() > 3; }, absl::Seconds(1))) << received.count();

  received.RunHeld();
  ASSERT_TRUE(WaitFor([&] { return received.count() == kRecords; }, kTimeout)) << received.count();
  std::vector<int64_t> offsets = received.offsets();
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(offsets[i], i);
  (*bus)->Shutdown(absl::Now() + kTimeout);
  std::fclose(log_file);
}

}  // namespace
}  // namespace edge::kafka
