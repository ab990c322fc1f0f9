// KafkaMessageBus publish throughput and latency, over loopback TCP to
// EmbeddedKafka. The mock broker is single-threaded and keeps data in
// memory, so these figures bound the bus's own overhead, not a real cluster.
//
//   kafka_bus_bench --benchmark_filter=Throughput
#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "edge/kafka/embedded_kafka.h"
#include "edge/kafka/kafka_message_bus.h"
#include "edge/message_bus.h"

namespace edge::kafka {
namespace {

struct Fixture {
  std::unique_ptr<EmbeddedKafka> kafka;
  std::unique_ptr<KafkaMessageBus> bus;
};

Fixture MakeFixture(size_t capacity) {
  Fixture f;
  auto kafka = EmbeddedKafka::Create(1);
  if (!kafka.ok()) return f;
  f.kafka = *std::move(kafka);
  (void)f.kafka->CreateTopic("bench-events", 4);
  KafkaMessageBusOptions options;
  options.bootstrap_servers = f.kafka->bootstrap_servers();
  options.group_id = "bench";
  options.capacity = capacity;
  auto bus = KafkaMessageBus::Create(std::move(options));
  if (!bus.ok() || !(*bus)->Start().ok()) return f;
  f.bus = *std::move(bus);
  return f;
}

// Records per second with `state.range(0)` records in flight at most; the
// value is a 200-byte JSON-like event keyed by one of 1000 peers.
void BM_PublishThroughput(benchmark::State& state) {
  const int window = static_cast<int>(state.range(0));
  Fixture f = MakeFixture(static_cast<size_t>(window) * 2);
  if (!f.bus) {
    state.SkipWithError("could not start EmbeddedKafka or the bus");
    return;
  }
  const std::string value(200, 'x');
  absl::Mutex mu;
  int in_flight = 0;
  int64_t failed = 0;
  int64_t n = 0;
  for (auto _ : state) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight < window; };
      mu.Await(absl::Condition(&room));
      ++in_flight;
    }
    f.bus->Publish({"bench-events", absl::StrCat("peer-", n++ % 1000), value, {}},
                   [&](absl::Status s) {
                     absl::MutexLock lock(&mu);
                     --in_flight;
                     if (!s.ok()) ++failed;
                   });
  }
  absl::MutexLock lock(&mu);
  auto drained = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight == 0; };
  mu.Await(absl::Condition(&drained));
  state.SetItemsProcessed(state.iterations());
  state.counters["failed"] = static_cast<double>(failed);
}
BENCHMARK(BM_PublishThroughput)->Arg(100)->Arg(1000)->Arg(10000)->UseRealTime();

// One publish at a time: Publish until its delivery report (acks=all).
void BM_PublishLatency(benchmark::State& state) {
  Fixture f = MakeFixture(1000);
  if (!f.bus) {
    state.SkipWithError("could not start EmbeddedKafka or the bus");
    return;
  }
  for (auto _ : state) {
    absl::Notification done;
    f.bus->Publish({"bench-events", "peer-1", "{}", {}}, [&](absl::Status) { done.Notify(); });
    done.WaitForNotification();
  }
}
BENCHMARK(BM_PublishLatency)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A (re)started edge: from Start() of a bus subscribed to a command topic
// that holds one record (no committed position for the group) until the
// handler has it. Each iteration is a new consumer with a new group.
void BM_ConsumerStartToFirstRecord(benchmark::State& state) {
  auto kafka = EmbeddedKafka::Create(1);
  if (!kafka.ok() || !(*kafka)->CreateTopic("bench-commands", 4).ok()) {
    state.SkipWithError("could not start EmbeddedKafka");
    return;
  }
  {
    KafkaMessageBusOptions options;
    options.bootstrap_servers = (*kafka)->bootstrap_servers();
    auto producer = KafkaMessageBus::Create(options);
    if (!producer.ok() || !(*producer)->Start().ok()) {
      state.SkipWithError("could not start a producer");
      return;
    }
    absl::Notification stored;
    (*producer)->Publish({"bench-commands", "peer-1", "{}", {}},
                         [&](absl::Status) { stored.Notify(); });
    stored.WaitForNotification();
    (*producer)->Shutdown(absl::Now() + absl::Seconds(10));
  }
  int64_t n = 0;
  for (auto _ : state) {
    KafkaMessageBusOptions options;
    options.bootstrap_servers = (*kafka)->bootstrap_servers();
    options.group_id = absl::StrCat("bench-start-", n++);
    auto bus = KafkaMessageBus::Create(options);
    if (!bus.ok()) {
      state.SkipWithError("could not create the bus");
      return;
    }
    absl::Notification got;
    (void)(*bus)->Subscribe("bench-commands", [&](IncomingRecord, RecordDone done) {
      done();
      if (!got.HasBeenNotified()) got.Notify();
    });
    absl::Time start = absl::Now();
    if (!(*bus)->Start().ok()) {
      state.SkipWithError("could not start the bus");
      return;
    }
    got.WaitForNotification();
    state.SetIterationTime(absl::ToDoubleSeconds(absl::Now() - start));
    (*bus)->Shutdown(absl::Now() + absl::Seconds(10));
  }
}
BENCHMARK(BM_ConsumerStartToFirstRecord)
    ->UseManualTime()
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond);

// The first event to a topic, 100 ms after the bus started (an edge
// admitting its first peer): with the topic's metadata fetched at start
// (range(0) == 1) or not.
void BM_FirstPublishAfterStart(benchmark::State& state) {
  auto kafka = EmbeddedKafka::Create(1);
  if (!kafka.ok() || !(*kafka)->CreateTopic("bench-first", 1).ok()) {
    state.SkipWithError("could not start EmbeddedKafka");
    return;
  }
  for (auto _ : state) {
    KafkaMessageBusOptions options;
    options.bootstrap_servers = (*kafka)->bootstrap_servers();
    if (state.range(0) == 1) options.warm_topics = {"bench-first"};
    auto bus = KafkaMessageBus::Create(options);
    if (!bus.ok() || !(*bus)->Start().ok()) {
      state.SkipWithError("could not start the bus");
      return;
    }
    absl::SleepFor(absl::Milliseconds(100));
    absl::Notification stored;
    absl::Time start = absl::Now();
    (*bus)->Publish({"bench-first", "peer-1", "{}", {}}, [&](absl::Status) { stored.Notify(); });
    stored.WaitForNotification();
    state.SetIterationTime(absl::ToDoubleSeconds(absl::Now() - start));
    (*bus)->Shutdown(absl::Now() + absl::Seconds(10));
  }
}
BENCHMARK(BM_FirstPublishAfterStart)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(10)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace edge::kafka

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
