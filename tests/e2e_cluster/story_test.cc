// The whole cluster story over processes (issue 12 item 5; contract §4, §5,
// §9): three edged processes (TRACKER=etcd) sharing a real etcd and a
// Kafka-protocol broker in its own process, a few hundred peers that
// reconnect like real ones, and a steady stream of commands to all of them,
// through a rolling restart (SIGTERM each edge in turn), a SIGKILL and an
// etcd restart. At the end:
//  - every command has exactly one outcome: seen by its peer, or
//    dead-lettered with a reason; a second outcome only for commands in the
//    SIGKILLed edge's topic before the kill (their offsets may not have been
//    committed: redelivery is allowed there);
//  - every peer's lifecycle events fold by the §5 rule (FoldLifecycle:
//    connected/disconnected alternate per claim with strictly increasing
//    epochs, so no two edges held a peer at once);
//  - every peer is connected at the end, on the edge its last `connected`
//    names.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "support/edged_process.h"
#include "support/etcd_process.h"
#include "support/http_client.h"
#include "support/kafka_broker_process.h"
#include "support/kafka_client.h"
#include "support/lifecycle_fold.h"
#include "support/reconnecting_peers.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

constexpr int kEdges = 3;
constexpr int kPeers = 240;
constexpr int kCommandsPerSecond = 150;
constexpr char kLifecycle[] = "peer-lifecycle-events";
constexpr char kRequestPrefix[] = "story-";
// Bounds for each step; the whole test takes about a minute and a half.
constexpr absl::Duration kStepTimeout = absl::Seconds(60);

std::string EdgeId(int i) { return absl::StrCat("edge-", i); }
std::string CommandsTopic(int i) { return "edge-commands-" + EdgeId(i); }
std::string DeadletterTopic(int i) { return CommandsTopic(i) + ".deadletter"; }

// The commands produced, and what became of them.
class Tally {
 public:
  void Produced(const std::string& id, int edge) {
    absl::MutexLock lock(&mu_);
    produced_.push_back(id);
    produced_to_[id] = {edge, absl::Now()};
  }
  // Where and when `id` was produced, for failure messages.
  std::string Where(const std::string& id, absl::Time origin) {
    absl::MutexLock lock(&mu_);
    auto it = produced_to_.find(id);
    if (it == produced_to_.end()) return "never produced";
    return absl::StrCat("to ", EdgeId(it->second.first), " at +",
                        absl::FormatDuration(it->second.second - origin));
  }
  void Delivered(const std::string& id) {
    absl::MutexLock lock(&mu_);
    ++delivered_[id];
  }
  int64_t delivered_count() {
    absl::MutexLock lock(&mu_);
    return static_cast<int64_t>(delivered_.size());
  }
  std::vector<std::string> produced() {
    absl::MutexLock lock(&mu_);
    return produced_;
  }
  std::map<std::string, int> delivered() {
    absl::MutexLock lock(&mu_);
    return delivered_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> produced_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::pair<int, absl::Time>> produced_to_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> delivered_ ABSL_GUARDED_BY(mu_);
};

class ClusterStoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGE_SKIP_WITHOUT_ETCD();
    auto etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    std::vector<std::pair<std::string, int>> topics = {{kLifecycle, 4},
                                                       {"peer-catalog-updates", 4},
                                                       {"file-delete-responses", 4},
                                                       {"file-hash-responses", 4},
                                                       {"peer-file-offers", 4},
                                                       {"webrtc-signaling", 4}};
    for (int i = 0; i < kEdges; ++i) {
      topics.emplace_back(CommandsTopic(i), 4);
      topics.emplace_back(DeadletterTopic(i), 1);
    }
    auto broker = KafkaBrokerProcess::Start(topics);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
    dir_ = (std::filesystem::temp_directory_path() / absl::StrCat("cluster-story-", getpid()))
               .string();
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ + "/kafka.properties") << "consumer.fetch.wait.max.ms=10\n";
    for (int i = 0; i < kEdges; ++i) {
      auto metrics_port = PickFreeLoopbackPort();
      ASSERT_TRUE(metrics_port.ok()) << metrics_port.status();
      metrics_ports_.push_back(*metrics_port);
      EdgedProcess::Options options;
      options.env = {{"EDGE_ID", EdgeId(i)},
                     {"TRACKER", "etcd"},
                     {"ETCD_ENDPOINTS", etcd_->endpoint()},
                     {"TRACKER_LEASE_TTL_SEC", "3"},
                     {"KAFKA_BOOTSTRAP_SERVERS", broker_->bootstrap_servers()},
                     {"KAFKA_CONFIG_FILE", dir_ + "/kafka.properties"},
                     {"METRICS_ADDRESS", absl::StrCat("127.0.0.1:", *metrics_port)},
                     // The catalog request on admission is how a peer
                     // learns it was admitted.
                     {"CATALOG_PULL_ON_CONNECT", "true"}};
      auto edge = EdgedProcess::Start(std::move(options));
      ASSERT_TRUE(edge.ok()) << edge.status();
      edges_.push_back(*std::move(edge));
      addresses_.push_back(edges_.back()->grpc_address());
    }
    for (int i = 0; i < kEdges; ++i) ASSERT_TRUE(WaitReady(i)) << Logs();
    auto producer = KafkaClient::Create(broker_->bootstrap_servers());
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }

  void TearDown() override {
    StopProducing();
    peers_.reset();
    for (auto& edge : edges_) {
      if (edge->running()) (void)edge->Signal(SIGTERM);
    }
    for (auto& edge : edges_) {
      if (edge->running()) (void)edge->WaitForExit(absl::Seconds(30));
    }
    edges_.clear();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  bool WaitReady(int edge) {
    return WaitFor(
        [&] {
          auto response = HttpRequest(metrics_ports_[edge], "GET", "/readyz", absl::Seconds(2));
          return response.ok() && response->status == 200;
        },
        kStepTimeout);
  }

  bool WaitAllAdmitted(const std::vector<int>& on) {
    return WaitFor([&] { return peers_->AdmittedOn(on) == kPeers; }, kStepTimeout);
  }

  std::string NotAdmitted() {
    std::string out;
    for (const std::string& line : peers_->NotAdmitted()) absl::StrAppend(&out, line, "\n");
    return out;
  }

  std::string Logs() {
    std::string out;
    for (int i = 0; i < static_cast<int>(edges_.size()); ++i) {
      std::string log = edges_[i]->ReadLog();
      if (log.size() > 6000) log = log.substr(log.size() - 6000);
      absl::StrAppend(&out, "--- ", EdgeId(i), " (tail) ---\n", log);
    }
    return out;
  }

  // A steady stream of file_hash commands to every peer in turn, each to the
  // topic of the edge the peer is admitted on (any edge when it is between
  // connections: the edges forward or hold it).
  void StartProducing() {
    producer_thread_ = std::thread([this] {
      const absl::Time start = absl::Now();
      int64_t sent = 0;
      while (producing_.load()) {
        const int64_t due =
            static_cast<int64_t>(kCommandsPerSecond * absl::ToDoubleSeconds(absl::Now() - start));
        std::map<int, std::vector<std::pair<std::string, std::string>>> batches;
        for (; sent < due; ++sent) {
          const int peer = static_cast<int>(sent % kPeers);
          int edge = peers_->AdmittedEdge(peer);
          if (edge < 0) edge = peer % kEdges;
          const std::string id = absl::StrCat(kRequestPrefix, sent);
          batches[edge].emplace_back(
              peers_->PeerId(peer),
              absl::StrCat(R"({"type":"file_hash","peer_id":")", peers_->PeerId(peer),
                           R"(","request_id":")", id,
                           R"(","catalog_id":"catalog-1","hash_types":["sha256"]})"));
          tally_.Produced(id, edge);
        }
        for (const auto& [edge, records] : batches) {
          if (!producer_->ProduceAll(CommandsTopic(edge), records).ok()) {
            produce_failures_.fetch_add(1);
          }
        }
        absl::SleepFor(absl::Milliseconds(20));  // pacing, not synchronisation
      }
    });
  }

  void StopProducing() {
    producing_.store(false);
    if (producer_thread_.joinable()) producer_thread_.join();
  }

  // The request ids of `topic`'s records read so far.
  static std::set<std::string> RequestIds(TopicReader& reader) {
    std::set<std::string> ids;
    for (const IncomingRecord& record : reader.records()) {
      auto value = ParseJsonObject(record.value);
      if (value.ok()) ids.insert(JsonString(*value, "request_id"));
    }
    return ids;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<KafkaBrokerProcess> broker_;
  std::string dir_;
  std::vector<int> metrics_ports_;
  std::vector<std::unique_ptr<EdgedProcess>> edges_;
  std::vector<std::string> addresses_;
  std::unique_ptr<KafkaClient> producer_;
  Tally tally_;
  std::unique_ptr<ReconnectingPeers> peers_;
  std::atomic<bool> producing_{true};
  std::atomic<int> produce_failures_{0};
  std::thread producer_thread_;
};

TEST_F(ClusterStoryTest, RollingRestartKillAndEtcdRestartKeepEveryPromise) {
  ReconnectingPeers::Options options;
  options.count = kPeers;
  options.addresses = addresses_;
  options.id_prefix = "story-peer-";
  options.first_backoff = absl::Milliseconds(200);
  options.max_backoff = absl::Seconds(2);
  options.on_message = [this](int, int, const giggityflix_grpc_peer::EdgeMessage& m) {
    if (absl::StartsWith(m.request_id(), kRequestPrefix)) tally_.Delivered(m.request_id());
  };
  peers_ = std::make_unique<ReconnectingPeers>(options);
  for (int i = 0; i < kPeers; ++i) peers_->Connect(i, i % kEdges);
  ASSERT_TRUE(WaitAllAdmitted({0, 1, 2})) << NotAdmitted() << Logs();

  const absl::Time origin = absl::Now();
  std::string timeline;
  auto mark = [&](const std::string& step) {
    absl::StrAppend(&timeline, " ", step, "@+", absl::FormatDuration(absl::Now() - origin));
  };
  StartProducing();
  ASSERT_TRUE(WaitFor([&] { return tally_.delivered_count() >= kPeers; }, kStepTimeout));

  // A rolling restart: each edge in turn drains on SIGTERM, exits cleanly,
  // starts again and is ready; its peers find another edge meanwhile.
  for (int i = 0; i < kEdges; ++i) {
    mark(absl::StrCat("sigterm-", EdgeId(i)));
    ASSERT_TRUE(edges_[i]->Signal(SIGTERM).ok());
    EXPECT_EQ(edges_[i]->WaitForExit(absl::Seconds(30)).value_or(-1), 0) << Logs();
    ASSERT_TRUE(edges_[i]->Restart().ok()) << Logs();
    ASSERT_TRUE(WaitReady(i)) << Logs();
    ASSERT_TRUE(WaitAllAdmitted({0, 1, 2})) << NotAdmitted() << Logs();
  }

  // One SIGKILL, of the edge holding the most peers (after the roll the
  // peers are spread unevenly): the dead edge's claims are ended as
  // `edge_lost` by the survivors, its peers admitted elsewhere; then it
  // comes back.
  int killed = 0;
  for (int i = 1; i < kEdges; ++i) {
    if (peers_->AdmittedOn({i}) > peers_->AdmittedOn({killed})) killed = i;
  }
  const int held_at_kill = peers_->AdmittedOn({killed});
  ASSERT_GT(held_at_kill, 0);
  mark(absl::StrCat("sigkill-", EdgeId(killed)));
  ASSERT_TRUE(edges_[killed]->Signal(SIGKILL).ok());
  ASSERT_TRUE(edges_[killed]->WaitForExit(absl::Seconds(10)).ok());
  // What the killed edge may have read without committing: everything in
  // its topic now (it reads nothing more until it is back).
  std::set<std::string> may_repeat;
  {
    auto reader = TopicReader::Create(broker_->bootstrap_servers(), CommandsTopic(killed));
    ASSERT_TRUE(reader.ok()) << reader.status();
    ASSERT_TRUE((*reader)->CatchUp(absl::Seconds(30)).ok());
    may_repeat = RequestIds(**reader);
  }
  std::vector<int> survivors;
  for (int i = 0; i < kEdges; ++i) {
    if (i != killed) survivors.push_back(i);
  }
  peers_->SetLiveEdges(survivors);
  ASSERT_TRUE(WaitAllAdmitted(survivors)) << NotAdmitted() << Logs();
  mark(absl::StrCat("restart-", EdgeId(killed)));
  ASSERT_TRUE(edges_[killed]->Restart().ok()) << Logs();
  ASSERT_TRUE(WaitReady(killed)) << Logs();
  peers_->SetLiveEdges({0, 1, 2});

  // etcd goes away and comes back with its data.
  mark("etcd-stop");
  ASSERT_TRUE(etcd_->Stop().ok());
  ASSERT_TRUE(etcd_->Restart().ok()) << etcd_->ReadLog();
  for (int i = 0; i < kEdges; ++i) ASSERT_TRUE(WaitReady(i)) << Logs();
  ASSERT_TRUE(WaitAllAdmitted({0, 1, 2})) << NotAdmitted() << Logs();

  mark("stop-producing");
  StopProducing();
  EXPECT_EQ(produce_failures_.load(), 0);

  // Settle: every command gets its outcome.
  const std::vector<std::string> produced = tally_.produced();
  std::vector<std::unique_ptr<TopicReader>> deadletters;
  for (int i = 0; i < kEdges; ++i) {
    auto reader = TopicReader::Create(broker_->bootstrap_servers(), DeadletterTopic(i));
    ASSERT_TRUE(reader.ok()) << reader.status();
    deadletters.push_back(*std::move(reader));
  }
  // Dead letters by request id (each record once: by partition and offset),
  // and those without a reason.
  std::map<std::string, int> lettered;
  std::vector<std::string> without_reason;
  std::map<std::string, int> reasons;
  std::vector<std::string> letter_samples;  // the first few, for the log
  auto read_letters = [&] {
    lettered.clear();
    without_reason.clear();
    reasons.clear();
    letter_samples.clear();
    for (auto& reader : deadletters) {
      (void)reader->CatchUp(absl::Seconds(5));
      std::set<std::pair<int32_t, int64_t>> seen;
      for (const IncomingRecord& record : reader->records()) {
        if (!seen.insert({record.partition, record.offset}).second) continue;
        auto value = ParseJsonObject(record.value);
        if (!value.ok()) {
          without_reason.push_back(record.value);
          continue;
        }
        const std::string reason = JsonString(*value, "reason");
        if (reason.empty()) without_reason.push_back(record.value);
        ++reasons[reason];
        if (letter_samples.size() < 3) {
          letter_samples.push_back(
              absl::StrCat(reason, ": ", JsonString(*value, "detail"), " (", reader->topic(), ")"));
        }
        auto original = ParseJsonObject(JsonString(*value, "original_message"));
        if (original.ok()) ++lettered[JsonString(*original, "request_id")];
      }
    }
  };
  std::vector<std::string> missing;
  const bool settled = WaitFor(
      [&] {
        read_letters();
        const std::map<std::string, int> delivered = tally_.delivered();
        missing.clear();
        for (const std::string& id : produced) {
          if (!delivered.count(id) && !lettered.count(id)) missing.push_back(id);
        }
        return missing.empty();
      },
      kStepTimeout);
  if (!settled) {
    std::string which;
    for (size_t i = 0; i < missing.size() && i < 20; ++i) {
      absl::StrAppend(&which, "  ", missing[i], " produced ", tally_.Where(missing[i], origin),
                      may_repeat.count(missing[i]) ? ", in the killed edge's topic" : "", "\n");
    }
    // Where the first missing commands are in the command topics (a
    // forwarded copy carries edge-forwarded-from), and what the consumers
    // said.
    for (int e = 0; e < kEdges; ++e) {
      auto reader = TopicReader::Create(broker_->bootstrap_servers(), CommandsTopic(e));
      if (!reader.ok()) continue;
      (void)(*reader)->CatchUp(absl::Seconds(10));
      for (const IncomingRecord& record : (*reader)->records()) {
        for (size_t i = 0; i < missing.size() && i < 5; ++i) {
          if (!absl::StrContains(record.value, absl::StrCat("\"", missing[i], "\""))) continue;
          absl::StrAppend(&which, "  ", missing[i], " in ", CommandsTopic(e), " [",
                          record.partition, "@", record.offset, "]");
          for (const auto& header : record.headers) {
            absl::StrAppend(&which, " ", header.key, "=", header.value);
          }
          absl::StrAppend(&which, "\n");
        }
      }
    }
    for (int e = 0; e < kEdges; ++e) {
      for (absl::string_view line : absl::StrSplit(edges_[e]->ReadLog(), '\n')) {
        if (absl::StrContains(line, "Kafka") || absl::StrContains(line, "edged")) {
          absl::StrAppend(&which, EdgeId(e), ": ", line, "\n");
        }
      }
    }
    ADD_FAILURE() << missing.size() << " of " << produced.size()
                  << " commands without an outcome; timeline:" << timeline << "\n"
                  << which << Logs();
  }
  EXPECT_TRUE(without_reason.empty()) << without_reason.front();

  const std::map<std::string, int> delivered = tally_.delivered();
  int repeated = 0;
  std::string first_repeated;
  for (const std::string& id : produced) {
    auto d = delivered.find(id);
    auto l = lettered.find(id);
    const int outcomes =
        (d == delivered.end() ? 0 : d->second) + (l == lettered.end() ? 0 : l->second);
    if (outcomes > 1 && !may_repeat.count(id)) {
      if (repeated++ == 0) {
        first_repeated = absl::StrCat(id, ": delivered ", d == delivered.end() ? 0 : d->second,
                                      ", dead-lettered ", l == lettered.end() ? 0 : l->second);
      }
    }
  }
  EXPECT_EQ(repeated, 0) << "first: " << first_repeated;

  // Every peer's lifecycle folds by §5 and ends connected where the peer is.
  auto lifecycle = TopicReader::Create(broker_->bootstrap_servers(), kLifecycle);
  ASSERT_TRUE(lifecycle.ok()) << lifecycle.status();
  std::string problem;
  const bool folded = WaitFor(
      [&] {
        (void)(*lifecycle)->CatchUp(absl::Seconds(5));
        absl::flat_hash_map<std::string, std::vector<LifecycleEvent>> by_peer;
        std::set<std::pair<int32_t, int64_t>> seen;
        for (const IncomingRecord& record : (*lifecycle)->records()) {
          if (!seen.insert({record.partition, record.offset}).second) continue;
          auto value = ParseJsonObject(record.value);
          if (!value.ok()) {
            problem = absl::StrCat("not JSON: ", record.value);
            return false;
          }
          LifecycleEvent event;
          event.event_type = JsonString(*value, "event_type");
          const auto& fields = value->fields();
          if (auto it = fields.find("epoch"); it != fields.end()) {
            event.epoch = static_cast<int64_t>(it->second.number_value());
          }
          event.edge_id = JsonString(*value, "edge_id");
          event.reason = JsonString(*value, "reason");
          by_peer[record.key].push_back(std::move(event));
        }
        for (int i = 0; i < kPeers; ++i) {
          const std::string peer = peers_->PeerId(i);
          auto fold = FoldLifecycle(by_peer[peer]);
          if (!fold.ok()) {
            problem = absl::StrCat(peer, ": ", fold.status().ToString());
            return false;
          }
          const int edge = peers_->AdmittedEdge(i);
          if (!fold->open_epoch.has_value() || edge < 0 || fold->open_edge != EdgeId(edge)) {
            problem = absl::StrCat(
                peer, " is admitted on ", edge < 0 ? "none" : EdgeId(edge), ", its lifecycle ends ",
                fold->open_epoch.has_value() ? "connected to " : "disconnected", fold->open_edge);
            return false;
          }
        }
        return true;
      },
      kStepTimeout);
  EXPECT_TRUE(folded) << problem << "\n" << Logs();
  // The story did happen: peers moved (several claims each), and the killed
  // edge's claims were ended as `edge_lost` by the survivors (§5).
  std::map<std::string, int> events;
  {
    std::set<std::pair<int32_t, int64_t>> seen;
    for (const IncomingRecord& record : (*lifecycle)->records()) {
      if (!seen.insert({record.partition, record.offset}).second) continue;
      auto value = ParseJsonObject(record.value);
      if (!value.ok()) continue;
      ++events[absl::StrCat(JsonString(*value, "event_type"), "/", JsonString(*value, "reason"),
                            "/", JsonString(*value, "edge_id"))];
    }
  }
  EXPECT_GT(events[absl::StrCat("disconnected/edge_lost/", EdgeId(killed))], 0);
  int connected = 0;
  for (int i = 0; i < kEdges; ++i) connected += events[absl::StrCat("connected//", EdgeId(i))];
  EXPECT_GT(connected, 2 * kPeers);
  EXPECT_EQ(peers_->AdmittedOn({0, 1, 2}), kPeers) << NotAdmitted();
  EXPECT_EQ(peers_->EndedOk(), 0);
  std::string summary;
  for (const auto& [reason, n] : reasons) absl::StrAppend(&summary, " ", reason, "=", n);
  for (const auto& [event, n] : events) absl::StrAppend(&summary, " ", event, "=", n);
  std::printf(
      "%zu commands, %zu delivered, %zu may repeat; %s killed holding %d peers; dead letters "
      "and events:%s\n",
      produced.size(), delivered.size(), may_repeat.size(), EdgeId(killed).c_str(), held_at_kill,
      summary.c_str());
  for (const std::string& sample : letter_samples)
    std::printf("  dead letter: %s\n", sample.c_str());
}

}  // namespace
}  // namespace edge::testing
