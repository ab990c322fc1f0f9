// edge_absent_peer_flood_bench: what a flood of commands for a peer that no
// edge holds costs one edged process (issue 13 item 13).
//
// Starts edged on the embedded broker of this process (local tracker),
// produces --commands file_hash commands for one absent peer as fast as the
// broker takes them, and samples edged's resident memory until every
// command has an outcome: PEER_SEND_QUEUE_MAX of them are held for the peer,
// the rest dead-lettered at once ("the hold is full"); the held ones are
// dead-lettered when --hold_ms passes. Prints the memory before, at its
// peak and after, the dead letters, and how many dead-letter lines the log
// holds (they are rate-limited).
//
//   edge_absent_peer_flood_bench --commands=45000
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "edge/kafka/embedded_kafka.h"
#include "proc_stats.h"
#include "support/edged_process.h"
#include "support/kafka_client.h"

ABSL_FLAG(int, commands, 45000, "commands for the absent peer");
ABSL_FLAG(int, hold_ms, 10000, "COMMAND_HOLD_MS");

namespace edge {
namespace {

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
  return 1;
}

int Run() {
  const int n = absl::GetFlag(FLAGS_commands);
  auto kafka = kafka::EmbeddedKafka::Create(1);
  if (!kafka.ok()) return Fail("kafka", kafka.status());
  const std::string topic = "edge-commands-flood";
  for (const std::string& t :
       {topic, topic + ".deadletter", std::string("peer-lifecycle-events")}) {
    if (auto s = (*kafka)->CreateTopic(t, 1); !s.ok()) return Fail("topic", s);
  }
  testing::EdgedProcess::Options options;
  options.env = {{"EDGE_ID", "flood"},
                 {"KAFKA_BOOTSTRAP_SERVERS", (*kafka)->bootstrap_servers()},
                 {"COMMAND_HOLD_MS", absl::StrCat(absl::GetFlag(FLAGS_hold_ms))}};
  auto edged = testing::EdgedProcess::Start(options);
  if (!edged.ok()) return Fail("edged", edged.status());
  auto client = testing::KafkaClient::Create((*kafka)->bootstrap_servers());
  if (!client.ok()) return Fail("client", client.status());
  auto letters = testing::TopicReader::Create((*kafka)->bootstrap_servers(), topic + ".deadletter");
  if (!letters.ok()) return Fail("reader", letters.status());

  absl::SleepFor(absl::Seconds(1));
  auto before = loadgen::SampleProcess((*edged)->pid());
  if (!before.ok()) return Fail("sample", before.status());
  int64_t peak = before->rss_kib;
  const absl::Time start = absl::Now();
  std::vector<std::pair<std::string, std::string>> batch;
  for (int i = 0; i < n; ++i) {
    batch.emplace_back(
        "ghost", absl::StrCat(R"({"type":"file_hash","peer_id":"ghost",)",
                              R"("request_id":"flood-)", i, R"(","catalog_id":"catalog-1"})"));
    if (batch.size() == 1000 || i == n - 1) {
      if (auto s = (*client)->ProduceAll(topic, batch); !s.ok()) return Fail("produce", s);
      batch.clear();
      if (auto sample = loadgen::SampleProcess((*edged)->pid()); sample.ok()) {
        peak = std::max(peak, sample->rss_kib);
      }
    }
  }
  const absl::Duration produced_in = absl::Now() - start;
  size_t seen = 0;
  absl::Duration all_lettered;
  while (seen < static_cast<size_t>(n) && absl::Now() - start < absl::Seconds(300)) {
    (*letters)->WaitForCount(seen + 1, absl::Milliseconds(200));
    seen = (*letters)->records().size();
    if (auto sample = loadgen::SampleProcess((*edged)->pid()); sample.ok()) {
      peak = std::max(peak, sample->rss_kib);
    }
  }
  all_lettered = absl::Now() - start;
  auto after = loadgen::SampleProcess((*edged)->pid());
  if (!after.ok()) return Fail("sample", after.status());
  std::printf("commands produced: %d in %.1f s\n", n, absl::ToDoubleSeconds(produced_in));
  std::printf("dead letters: %zu, the last %.1f s after the first command\n", seen,
              absl::ToDoubleSeconds(all_lettered));
  std::printf("edged RSS MiB: before %.1f  peak %.1f  after %.1f\n", before->rss_kib / 1024.0,
              peak / 1024.0, after->rss_kib / 1024.0);
  std::printf("log lines 'command dead-lettered': %d\n",
              (*edged)->CountLogLines("command dead-lettered"));
  return seen == static_cast<size_t>(n) ? 0 : 1;
}

}  // namespace
}  // namespace edge

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  return edge::Run();
}
