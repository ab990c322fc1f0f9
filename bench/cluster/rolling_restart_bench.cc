// edge_rolling_restart_bench: command delivery while a cluster of edged
// processes is restarted one edge at a time.
//
// Starts etcd, a Kafka-protocol broker (EmbeddedKafka, in this process) and
// --edges edged processes (TRACKER=etcd), connects --peers load peers spread
// over the edges, and produces --rate file_hash commands per second, each to
// the command topic of the edge its peer last connected to (as a backend
// that learns a peer's edge from the lifecycle topic would, a little late).
// A peer whose stream ends with a non-OK status reconnects at once to the
// next edge, like the existing peers. After --steady_sec it restarts each
// edge in turn (SIGTERM, wait for its exit, start it again), runs
// --steady_sec more, stops producing and waits --settle_sec for the last
// commands. It prints command latency (produce -> received by the peer)
// over the whole run and for the commands produced during the roll, the
// dead letters by reason, and a tally by request id: commands with no
// outcome at all (lost) and deliveries beyond the first (redeliveries).
//
//   edge_rolling_restart_bench --peers=3000 --rate=1000
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/descriptors.h"
#include "edge/kafka/embedded_kafka.h"
#include "load_peer.h"
#include "support/edged_process.h"
#include "support/etcd_process.h"
#include "support/kafka_client.h"
#include "support/wait.h"

ABSL_FLAG(int, peers, 3000, "load peers");
ABSL_FLAG(int, edges, 3, "edged processes");
ABSL_FLAG(int, rate, 1000, "commands per second");
ABSL_FLAG(int, steady_sec, 10, "seconds of steady load before and after the roll");
ABSL_FLAG(int, settle_sec, 40, "seconds to wait for the last commands' outcomes");

namespace edge {
namespace {

using loadgen::LoadPeer;

constexpr char kKafkaConfig[] = "consumer.fetch.wait.max.ms=10\n";

std::string EdgeId(int i) { return absl::StrCat("edge-", i); }
std::string CommandsTopic(int i) { return absl::StrCat("edge-commands-", EdgeId(i)); }

// One peer id, reconnecting to the next edge whenever its stream ends.
struct Slot {
  std::string peer_id;
  int edge = 0;
  LoadPeer* current = nullptr;
  std::vector<std::unique_ptr<LoadPeer>> streams;  // kept until the end
};

class Bench {
 public:
  int Run() {
    if (auto limit = DescriptorBudget::RaiseLimit(); !limit.ok()) {
      std::fprintf(stderr, "descriptors: %s\n", limit.status().ToString().c_str());
      return 1;
    }
    if (!testing::EtcdProcess::Available()) {
      std::fprintf(stderr, "etcd is not installed\n");
      return 1;
    }
    auto etcd = testing::EtcdProcess::Start();
    if (!etcd.ok()) return Fail("etcd", etcd.status());
    etcd_ = std::move(*etcd);
    auto kafka = kafka::EmbeddedKafka::Create(1);
    if (!kafka.ok()) return Fail("kafka", kafka.status());
    kafka_ = std::move(*kafka);
    n_edges_ = absl::GetFlag(FLAGS_edges);
    for (const char* topic :
         {"peer-lifecycle-events", "peer-catalog-updates", "file-delete-responses",
          "file-hash-responses", "peer-file-offers", "webrtc-signaling"}) {
      if (auto s = kafka_->CreateTopic(topic, 4); !s.ok()) return Fail(topic, s);
    }
    config_file_ = absl::StrCat(::testing::TempDir(), "/rolling_restart_kafka.properties");
    if (std::FILE* f = std::fopen(config_file_.c_str(), "w")) {
      std::fputs(kKafkaConfig, f);
      std::fclose(f);
    }
    for (int i = 0; i < n_edges_; ++i) {
      if (auto s = kafka_->CreateTopic(CommandsTopic(i), 4); !s.ok()) return Fail("topic", s);
      if (auto s = kafka_->CreateTopic(CommandsTopic(i) + ".deadletter", 1); !s.ok()) {
        return Fail("topic", s);
      }
      testing::EdgedProcess::Options options;
      options.env = {{"EDGE_ID", EdgeId(i)},
                     {"TRACKER", "etcd"},
                     {"ETCD_ENDPOINTS", etcd_->endpoint()},
                     {"KAFKA_BOOTSTRAP_SERVERS", kafka_->bootstrap_servers()},
                     {"KAFKA_CONFIG_FILE", config_file_},
                     {"CATALOG_PULL_ON_CONNECT", "false"}};
      auto edged = testing::EdgedProcess::Start(options);
      if (!edged.ok()) return Fail("edged", edged.status());
      edges_.push_back(std::move(*edged));
    }
    auto producer = testing::KafkaClient::Create(kafka_->bootstrap_servers());
    if (!producer.ok()) return Fail("producer", producer.status());
    producer_ = std::move(*producer);

    peer_options_.answer_commands = false;
    peer_options_.on_command = [this](const std::string& id) {
      const int64_t sent = loadgen::RequestIdNanos(id);
      const int64_t from = roll_from_ns_.load(), to = roll_to_ns_.load();
      if (sent >= from && sent <= to) roll_latency_.RecordNanos(loadgen::UnixNanos() - sent);
      absl::MutexLock lock(&tally_mu_);
      ++received_ids_[id];
    };
    const int peers = absl::GetFlag(FLAGS_peers);
    slots_.resize(peers);
    for (int i = 0; i < peers; ++i) {
      slots_[i].peer_id = absl::StrCat("peer-", i);
      slots_[i].edge = i % n_edges_;
      Connect(slots_[i]);
    }
    if (!testing::WaitFor([&] { return stats_.admitted.load() >= peers; }, absl::Seconds(120))) {
      std::fprintf(stderr, "only %lld of %d peers admitted\n",
                   static_cast<long long>(stats_.admitted.load()), peers);
      return 1;
    }
    std::printf("%d peers admitted on %d edges\n", peers, n_edges_);
    std::thread supervisor([this] { Supervise(); });
    std::thread pacer([this] { Produce(); });

    const absl::Duration steady = absl::Seconds(absl::GetFlag(FLAGS_steady_sec));
    absl::SleepFor(steady);
    const int64_t reconnects_before = reconnects_.load();
    absl::Time roll_start = absl::Now();
    roll_from_ns_.store(absl::ToUnixNanos(roll_start));
    for (int i = 0; i < n_edges_; ++i) {
      absl::Time t = absl::Now();
      if (auto s = edges_[i]->Signal(SIGTERM); !s.ok()) return Fail("SIGTERM", s);
      auto code = edges_[i]->WaitForExit(absl::Seconds(30));
      if (!code.ok() || *code != 0) {
        std::fprintf(stderr, "%s did not exit cleanly\n", EdgeId(i).c_str());
      }
      if (auto s = edges_[i]->Restart(); !s.ok()) return Fail("restart", s);
      std::printf("%s restarted in %.1f s\n", EdgeId(i).c_str(),
                  absl::ToDoubleSeconds(absl::Now() - t));
    }
    absl::Duration roll = absl::Now() - roll_start;
    roll_to_ns_.store(absl::ToUnixNanos(absl::Now()));
    absl::SleepFor(steady);
    producing_.store(false);
    pacer.join();
    absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_settle_sec)));
    stopping_.store(true);
    supervisor.join();

    std::map<std::string, int> reasons;
    std::set<std::string> lettered_ids;
    int64_t letters = 0;
    for (int i = 0; i < n_edges_; ++i) {
      auto reader = testing::TopicReader::Create(kafka_->bootstrap_servers(),
                                                 CommandsTopic(i) + ".deadletter");
      if (!reader.ok()) return Fail("dead letters", reader.status());
      (void)(*reader)->CatchUp(absl::Seconds(20));
      for (const IncomingRecord& r : (*reader)->records()) {
        ++letters;
        auto value = testing::ParseJsonObject(r.value);
        ++reasons[value.ok() ? testing::JsonString(*value, "reason") : "unreadable"];
        if (!value.ok()) continue;
        auto original = testing::ParseJsonObject(testing::JsonString(*value, "original_message"));
        if (original.ok()) lettered_ids.insert(testing::JsonString(*original, "request_id"));
      }
    }
    std::printf("roll: %.1f s for %d edges; %lld reconnects during and after it\n",
                absl::ToDoubleSeconds(roll), n_edges_,
                static_cast<long long>(reconnects_.load() - reconnects_before));
    std::printf("commands produced: %lld (failed to produce: %lld)\n",
                static_cast<long long>(produced_.load()),
                static_cast<long long>(produce_failures_.load()));
    std::printf("commands received by peers: %lld (duplicates count)\n",
                static_cast<long long>(stats_.commands_received.load()));
    std::printf("command latency ms: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                absl::ToDoubleMilliseconds(stats_.command.Percentile(50)),
                absl::ToDoubleMilliseconds(stats_.command.Percentile(99)),
                absl::ToDoubleMilliseconds(stats_.command.Percentile(99.9)),
                absl::ToDoubleMilliseconds(stats_.command.Max()));
    std::printf(
        "command latency ms, produced during the roll (%lld): p50 %.1f  p99 %.1f  max %.1f\n",
        static_cast<long long>(roll_latency_.count()),
        absl::ToDoubleMilliseconds(roll_latency_.Percentile(50)),
        absl::ToDoubleMilliseconds(roll_latency_.Percentile(99)),
        absl::ToDoubleMilliseconds(roll_latency_.Max()));
    int64_t lost = 0, duplicated = 0;
    {
      absl::MutexLock lock(&tally_mu_);
      for (const std::string& id : produced_ids_) {
        auto it = received_ids_.find(id);
        if (it == received_ids_.end()) {
          if (!lettered_ids.count(id)) ++lost;
        } else if (it->second > 1) {
          duplicated += it->second - 1;
        }
      }
    }
    std::printf("by request id: %lld without any outcome (lost), %lld extra deliveries\n",
                static_cast<long long>(lost), static_cast<long long>(duplicated));
    std::printf("dead letters: %lld\n", static_cast<long long>(letters));
    for (const auto& [reason, n] : reasons) std::printf("  %s: %d\n", reason.c_str(), n);
    for (Slot& slot : slots_) {
      absl::MutexLock lock(&mu_);
      if (slot.current != nullptr && !slot.current->done()) slot.current->Cancel();
    }
    (void)testing::WaitFor(
        [&] {
          absl::MutexLock lock(&mu_);
          for (Slot& slot : slots_) {
            if (slot.current != nullptr && !slot.current->done()) return false;
          }
          return true;
        },
        absl::Seconds(30));
    edges_.clear();
    return 0;
  }

 private:
  int Fail(const char* what, const absl::Status& status) {
    std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
    return 1;
  }

  void Connect(Slot& slot) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto peer = std::make_unique<LoadPeer>(
        slot.peer_id,
        grpc::CreateCustomChannel(edges_[slot.edge]->grpc_address(),
                                  grpc::InsecureChannelCredentials(), args),
        &stats_, &peer_options_);
    slot.current = peer.get();
    slot.streams.push_back(std::move(peer));
    slot.current->Start([](bool) {});
  }

  // Existing peers reconnect when their stream ends with a non-OK status:
  // here, to the next edge, at once.
  void Supervise() {
    while (!stopping_.load()) {
      {
        absl::MutexLock lock(&mu_);
        for (Slot& slot : slots_) {
          if (slot.current == nullptr || !slot.current->done()) continue;
          slot.edge = (slot.edge + 1) % n_edges_;
          reconnects_.fetch_add(1);
          Connect(slot);
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // --rate commands per second, in batches every 10 ms.
  void Produce() {
    const int rate = absl::GetFlag(FLAGS_rate);
    const absl::Time start = absl::Now();
    int64_t sent = 0;
    uint64_t seq = 0;
    size_t next = 0;
    while (producing_.load()) {
      int64_t due = static_cast<int64_t>(rate * absl::ToDoubleSeconds(absl::Now() - start));
      std::map<int, std::vector<std::pair<std::string, std::string>>> batches;
      {
        absl::MutexLock lock(&mu_);
        for (; sent < due; ++sent) {
          Slot& slot = slots_[next++ % slots_.size()];
          batches[slot.edge].emplace_back(
              slot.peer_id, absl::StrCat(R"({"type":"file_hash","peer_id":")", slot.peer_id,
                                         R"(","request_id":")", loadgen::MakeRequestId('c', seq++),
                                         R"(","catalog_id":"catalog-1","hash_types":["sha256"]})"));
        }
      }
      {
        absl::MutexLock lock(&tally_mu_);
        for (const auto& [edge, records] : batches) {
          for (const auto& [key, value] : records) {
            auto object = testing::ParseJsonObject(value);
            if (object.ok()) produced_ids_.push_back(testing::JsonString(*object, "request_id"));
          }
        }
      }
      for (auto& [edge, records] : batches) {
        absl::Status s = producer_->ProduceAll(CommandsTopic(edge), records);
        (s.ok() ? produced_ : produce_failures_).fetch_add(static_cast<int64_t>(records.size()));
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  std::unique_ptr<kafka::EmbeddedKafka> kafka_;
  std::unique_ptr<testing::KafkaClient> producer_;
  std::vector<std::unique_ptr<testing::EdgedProcess>> edges_;
  std::string config_file_;
  int n_edges_ = 3;
  loadgen::LoadStats stats_;
  loadgen::LoadPeerOptions peer_options_;
  absl::Mutex mu_;
  std::vector<Slot> slots_;  // the vector itself is sized once, before threads
  std::atomic<bool> producing_{true};
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> reconnects_{0};
  std::atomic<int64_t> produced_{0};
  std::atomic<int64_t> produce_failures_{0};
  // Produce-time bounds (unix ns) of the roll, for its own histogram.
  std::atomic<int64_t> roll_from_ns_{INT64_MAX};
  std::atomic<int64_t> roll_to_ns_{INT64_MAX};
  loadgen::LatencyHistogram roll_latency_;
  absl::Mutex tally_mu_;
  std::vector<std::string> produced_ids_ ABSL_GUARDED_BY(tally_mu_);
  std::map<std::string, int> received_ids_ ABSL_GUARDED_BY(tally_mu_);
};

}  // namespace
}  // namespace edge

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  return edge::Bench().Run();
}
