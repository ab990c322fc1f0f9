// edge_kafka_broker: a Kafka-protocol broker (librdkafka's mock cluster,
// EmbeddedKafka) in a process of its own, for tests and benches whose edges
// and backends must not share a process with the broker.
//
//   edge_kafka_broker [--brokers=N] [TOPIC:PARTITIONS ...]
//
// Creates the topics, prints one line "bootstrap=<host:port,...>" to stdout,
// then serves until SIGTERM or SIGINT (exit 0). Every bad argument is an
// error (exit 2) before anything is served.
#include <signal.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "edge/kafka/embedded_kafka.h"

int main(int argc, char** argv) {
  int brokers = 1;
  std::vector<std::pair<std::string, int>> topics;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (absl::StartsWith(arg, "--brokers=")) {
      if (!absl::SimpleAtoi(arg.substr(10), &brokers) || brokers < 1 || brokers > 16) {
        std::fprintf(stderr, "bad --brokers (1..16): %s\n", arg.c_str());
        return 2;
      }
      continue;
    }
    std::pair<std::string, std::string> parts = absl::StrSplit(arg, ':');
    int partitions = 0;
    if (parts.first.empty() || !absl::SimpleAtoi(parts.second, &partitions) || partitions < 1) {
      std::fprintf(stderr, "bad topic (want NAME:PARTITIONS): %s\n", arg.c_str());
      return 2;
    }
    topics.emplace_back(parts.first, partitions);
  }
  // Blocked before the cluster starts its threads, so that only sigwait
  // below takes these signals.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto kafka = edge::kafka::EmbeddedKafka::Create(brokers);
  if (!kafka.ok()) {
    std::fprintf(stderr, "broker: %s\n", kafka.status().ToString().c_str());
    return 1;
  }
  for (const auto& [name, partitions] : topics) {
    if (absl::Status s = (*kafka)->CreateTopic(name, partitions); !s.ok()) {
      std::fprintf(stderr, "topic %s: %s\n", name.c_str(), s.ToString().c_str());
      return 1;
    }
  }
  std::printf("bootstrap=%s\n", (*kafka)->bootstrap_servers().c_str());
  std::fflush(stdout);
  int signo = 0;
  sigwait(&stop, &signo);
  return 0;
}
