// edge_lost_bench: an edge holding many peers is SIGKILLed; how long until
// every peer is admitted again on the other edges, and until every one of
// the dead edge's claims has its `edge_lost` on the lifecycle topic
// (contract §5: within TRACKER_LEASE_TTL_SEC + 5 s).
//
// Three edged processes (TRACKER=etcd) share an etcd started here and a
// Kafka-protocol broker in this process. --peers peers, each on its own
// HTTP/2 connection (gRPC callback API, no thread per peer), connect to
// edge-a; edge-a is SIGKILLed; each peer then reconnects like a real one on
// its non-OK end, to edge-b or edge-c, with gRPC's reconnect backoff while
// it is refused (the dead edge's claims last until its lease expires):
// tests/support/reconnecting_peers.h.
//
//   edge_lost_bench --peers=5000 --lease_ttl_sec=10
//
// prints the seconds from the kill until all peers are re-admitted and until
// all edge_lost events are out, and checks each peer's lifecycle events
// with the §5 fold (tests/support/lifecycle_fold.h).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/kafka/embedded_kafka.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "support/edged_process.h"
#include "support/etcd_process.h"
#include "support/kafka_client.h"
#include "support/lifecycle_fold.h"
#include "support/reconnecting_peers.h"

ABSL_FLAG(int, peers, 5000, "peers held by the edge that is killed");
ABSL_FLAG(int, lease_ttl_sec, 10, "TRACKER_LEASE_TTL_SEC");
ABSL_FLAG(int, timeout_sec, 120, "how long each phase may take");

namespace edge {
namespace {

constexpr char kLifecycle[] = "peer-lifecycle-events";

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

int Run() {
  const int count = absl::GetFlag(FLAGS_peers);
  const absl::Duration timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_sec));
  auto etcd = testing::EtcdProcess::Start();
  if (!etcd.ok()) {
    std::fprintf(stderr, "etcd: %s\n", etcd.status().ToString().c_str());
    return 1;
  }
  auto kafka = kafka::EmbeddedKafka::Create(1);
  if (!kafka.ok()) {
    std::fprintf(stderr, "kafka: %s\n", kafka.status().ToString().c_str());
    return 1;
  }
  (*kafka)->CreateTopic(kLifecycle, 4).IgnoreError();
  char dir[] = "/tmp/edge-lost-bench-XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string kafka_config = absl::StrCat(dir, "/kafka.properties");
  std::ofstream(kafka_config) << "consumer.fetch.wait.max.ms=10\n";

  const std::vector<std::string> ids = {"edge-a", "edge-b", "edge-c"};
  std::vector<std::unique_ptr<testing::EdgedProcess>> edges;
  std::vector<std::string> addresses;
  for (const std::string& id : ids) {
    (*kafka)->CreateTopic("edge-commands-" + id, 1).IgnoreError();
    (*kafka)->CreateTopic("edge-commands-" + id + ".deadletter", 1).IgnoreError();
    testing::EdgedProcess::Options options;
    options.env = {{"EDGE_ID", id},
                   {"KAFKA_BOOTSTRAP_SERVERS", (*kafka)->bootstrap_servers()},
                   {"KAFKA_CONFIG_FILE", kafka_config},
                   {"TRACKER", "etcd"},
                   {"ETCD_ENDPOINTS", (*etcd)->endpoint()},
                   {"TRACKER_LEASE_TTL_SEC", absl::StrCat(absl::GetFlag(FLAGS_lease_ttl_sec))},
                   {"CATALOG_PULL_ON_CONNECT", "true"}};
    auto edge = testing::EdgedProcess::Start(std::move(options));
    if (!edge.ok()) {
      std::fprintf(stderr, "%s: %s\n", id.c_str(), edge.status().ToString().c_str());
      return 1;
    }
    addresses.push_back((*edge)->grpc_address());
    edges.push_back(*std::move(edge));
  }

  testing::ReconnectingPeers::Options peer_options;
  peer_options.count = count;
  peer_options.addresses = addresses;
  peer_options.id_prefix = "bench-peer-";
  testing::ReconnectingPeers peers(std::move(peer_options));
  for (int i = 0; i < count; ++i) peers.Connect(i, 0);
  if (!WaitUntil([&] { return peers.AdmittedOn({0}) == count; }, timeout)) {
    std::fprintf(stderr, "only %d of %d peers admitted on edge-a\n", peers.AdmittedOn({0}), count);
    return 1;
  }
  std::printf("%d peers held by edge-a\n", count);

  auto lifecycle = testing::TopicReader::Create((*kafka)->bootstrap_servers(), kLifecycle);
  if (!lifecycle.ok()) return 1;
  peers.SetLiveEdges({1, 2});
  const absl::Time killed = absl::Now();
  if (!edges[0]->Signal(SIGKILL).ok()) return 1;

  absl::Duration readmitted = absl::InfiniteDuration();
  absl::Duration all_lost = absl::InfiniteDuration();
  absl::flat_hash_set<std::string> lost_peers;
  absl::flat_hash_set<std::pair<int32_t, int64_t>> lost_offsets;
  absl::flat_hash_map<std::string, std::string> first_lost;  // peer -> value
  size_t scanned = 0;
  int edge_lost_events = 0;
  const absl::Time deadline = killed + timeout;
  while ((readmitted == absl::InfiniteDuration() || all_lost == absl::InfiniteDuration()) &&
         absl::Now() < deadline) {
    (*lifecycle)->WaitUntil([](const auto&) { return false; }, absl::Milliseconds(50));
    const auto& records = (*lifecycle)->records();
    for (; scanned < records.size(); ++scanned) {
      google::protobuf::Struct value;
      if (!google::protobuf::util::JsonStringToMessage(records[scanned].value, &value).ok()) {
        continue;
      }
      const auto& f = value.fields();
      if (f.at("event_type").string_value() == "disconnected" &&
          f.at("reason").string_value() == "edge_lost" &&
          f.at("edge_id").string_value() == "edge-a") {
        if (!lost_offsets.insert({records[scanned].partition, records[scanned].offset}).second) {
          continue;  // the reader saw this record twice
        }
        ++edge_lost_events;
        if (!lost_peers.insert(records[scanned].key).second) {
          std::fprintf(stderr, "second edge_lost of %s:\n  %s\n  %s\n",
                       records[scanned].key.c_str(), first_lost[records[scanned].key].c_str(),
                       records[scanned].value.c_str());
        } else {
          first_lost[records[scanned].key] = records[scanned].value;
        }
      }
    }
    if (all_lost == absl::InfiniteDuration() && lost_peers.size() == static_cast<size_t>(count)) {
      all_lost = absl::Now() - killed;
    }
    if (readmitted == absl::InfiniteDuration() && peers.AdmittedOn({1, 2}) == count) {
      readmitted = absl::Now() - killed;
    }
  }

  // Every peer's events must fold (§5).
  (*lifecycle)->CatchUp().IgnoreError();
  absl::flat_hash_map<std::string, std::vector<testing::LifecycleEvent>> by_peer;
  for (const IncomingRecord& record : (*lifecycle)->records()) {
    google::protobuf::Struct value;
    if (!google::protobuf::util::JsonStringToMessage(record.value, &value).ok()) continue;
    const auto& f = value.fields();
    testing::LifecycleEvent event;
    event.event_type = f.at("event_type").string_value();
    if (f.contains("epoch")) event.epoch = static_cast<int64_t>(f.at("epoch").number_value());
    event.edge_id = f.at("edge_id").string_value();
    if (f.contains("reason")) event.reason = f.at("reason").string_value();
    by_peer[record.key].push_back(std::move(event));
  }
  int broken = 0;
  for (const auto& [peer, events] : by_peer) {
    auto fold = testing::FoldLifecycle(events);
    if (!fold.ok() && ++broken <= 5) {
      std::fprintf(stderr, "%s: %s\n", peer.c_str(), fold.status().ToString().c_str());
    }
  }

  std::printf("lease TTL %d s, %d peers on the killed edge\n", absl::GetFlag(FLAGS_lease_ttl_sec),
              count);
  std::printf("all re-admitted on edge-b/edge-c: %.1f s after the kill (%d of %d)\n",
              absl::ToDoubleSeconds(readmitted), peers.AdmittedOn({1, 2}), count);
  std::printf("all edge_lost out:                %.1f s after the kill (%zu peers, %d events)\n",
              absl::ToDoubleSeconds(all_lost), lost_peers.size(), edge_lost_events);
  std::printf("peers whose lifecycle does not fold: %d of %zu\n", broken, by_peer.size());
  if (readmitted == absl::InfiniteDuration() || all_lost == absl::InfiniteDuration()) {
    for (const std::string& peer : peers.NotAdmitted()) {
      std::fprintf(stderr, "not admitted: %s\n", peer.c_str());
    }
    // What the surviving edges complained about, by message.
    for (size_t e = 1; e < edges.size(); ++e) {
      std::map<std::string, int> messages;
      for (absl::string_view line : absl::StrSplit(edges[e]->ReadLog(), '\n')) {
        if (!absl::StrContains(line, "\"level\":\"warn\"") &&
            !absl::StrContains(line, "\"level\":\"error\"")) {
          continue;
        }
        size_t at = line.find("\"msg\":");
        if (at == absl::string_view::npos) continue;
        ++messages[std::string(line.substr(at, std::min<size_t>(120, line.size() - at)))];
      }
      for (const auto& [message, n] : messages) {
        std::fprintf(stderr, "%s: %d x %s\n", ids[e].c_str(), n, message.c_str());
      }
    }
  }
  for (auto& edge : edges) {
    if (edge->running()) edge->Signal(SIGTERM).IgnoreError();
  }
  for (auto& edge : edges) {
    if (edge->running()) edge->WaitForExit(absl::Seconds(30)).IgnoreError();
  }
  std::filesystem::remove_all(dir);
  return readmitted != absl::InfiniteDuration() && all_lost != absl::InfiniteDuration() &&
                 broken == 0
             ? 0
             : 1;
}

}  // namespace
}  // namespace edge

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::signal(SIGPIPE, SIG_IGN);
  return edge::Run();
}
