// Memory bounds in bytes, measured: the edge core on KafkaMessageBus, peers
// on FakePeerTransport, resident memory of this process from
// /proc/self/status (VmRSS; peak sampled every 5 ms). The broker
// (EmbeddedKafka) and the backend producing commands run in a child
// process, so that their memory is not counted.
//
//   edge_memory_bounds event-buffer [announcements] [event_buffer_max_bytes]
//     The broker stops answering; one peer sends catalog announcements of
//     ~0.9 MB, each once the edge read the previous one, until the edge
//     stops reading it (saturated) or all are sent.
//   edge_memory_bounds send-queue [commands] [peer_send_queue_max_bytes]
//     A peer that stops reading; the backend produces commands of ~0.9 MB
//     for it; the peer is ended as slow once its queue passes the bound, and
//     every command is dead-lettered. Reports RSS at the peak, and after
//     every command has its outcome and glibc was asked to trim.
//
// What the peer has not sent yet is not counted (a real peer keeps it in its
// own process).
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/kafka/embedded_kafka.h"
#include "edge/kafka/kafka_message_bus.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_peer_transport.h"

namespace edge {
namespace {

constexpr size_t kMessageBytes = 900 * 1000;
constexpr char kCommands[] = "edge-commands-mem";
constexpr char kDeadLetters[] = "edge-commands-mem.deadletter";
constexpr int kCommandPartitions = 1024;

int64_t RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = 0;
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)), &kib);
      return kib;
    }
  }
  return -1;
}

// Samples VmRSS until stopped; keeps the peak.
class PeakRss {
 public:
  PeakRss() : thread_([this] { Run(); }) {}
  ~PeakRss() {
    stop_ = true;
    thread_.join();
  }
  int64_t peak() const { return peak_.load(); }

 private:
  void Run() {
    while (!stop_) {
      int64_t now = RssKib();
      if (now > peak_) peak_ = now;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_{0};
  std::thread thread_;
};

// The child: broker and backend, driven over a pipe by one-letter orders
// ('D' broker down, 'U' up, 'C' produce the commands), each answered 'k'.
struct Child {
  pid_t pid = -1;
  int to = -1;    // orders
  int from = -1;  // answers, after the bootstrap address line
  std::string bootstrap;

  bool Order(char c) {
    char answer = 0;
    return write(to, &c, 1) == 1 && read(from, &answer, 1) == 1 && answer == 'k';
  }
  ~Child() {
    if (pid <= 0) return;
    close(to);  // EOF: the child exits
    waitpid(pid, nullptr, 0);
  }
};

void RunChild(int in, int out, int commands) {
  auto kafka = kafka::EmbeddedKafka::Create(1);
  if (!kafka.ok()) _exit(1);
  // Commands spread over partitions by key, so that the broker's ~5 MiB
  // per partition keeps every one until the edge read it.
  (void)(*kafka)->CreateTopic(kCommands, kCommandPartitions);
  for (const char* topic : {kDeadLetters, "peer-lifecycle-events", "peer-catalog-updates"}) {
    (void)(*kafka)->CreateTopic(topic, 1);
  }
  std::string line = (*kafka)->bootstrap_servers() + "\n";
  if (write(out, line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(1);
  char order;
  while (read(in, &order, 1) == 1) {
    if (order == 'D') (void)(*kafka)->SetBrokerDown(-1);
    if (order == 'U') (void)(*kafka)->SetBrokerUp(-1);
    if (order == 'C') {
      kafka::KafkaMessageBusOptions options;
      options.bootstrap_servers = (*kafka)->bootstrap_servers();
      options.capacity = 16;  // paced: a few records in flight at a time
      auto backend = kafka::KafkaMessageBus::Create(std::move(options));
      if (!backend.ok() || !(*backend)->Start().ok()) _exit(1);
      std::string value = absl::StrCat(R"({"type":"file_hash","peer_id":"p","catalog_id":")",
                                       std::string(kMessageBytes, 'c'), R"("})");
      for (int i = 0; i < commands; ++i) {
        // Keys differ only to spread the records; the command names its peer.
        (*backend)->Publish({kCommands, absl::StrCat("k", i), value, {}}, nullptr);
        while ((*backend)->Saturated()) absl::SleepFor(absl::Milliseconds(1));
      }
      (*backend)->Shutdown(absl::Now() + absl::Seconds(60));
    }
    if (write(out, "k", 1) != 1) _exit(1);
  }
  _exit(0);
}

// Forks the child before this process starts any thread.
std::unique_ptr<Child> StartChild(int commands) {
  int orders[2], answers[2];
  if (pipe(orders) != 0 || pipe(answers) != 0) return nullptr;
  pid_t pid = fork();
  if (pid < 0) return nullptr;
  if (pid == 0) {
    close(orders[1]);
    close(answers[0]);
    RunChild(orders[0], answers[1], commands);
  }
  close(orders[0]);
  close(answers[1]);
  auto child = std::make_unique<Child>();
  child->pid = pid;
  child->to = orders[1];
  child->from = answers[0];
  char c;
  while (read(child->from, &c, 1) == 1 && c != '\n') child->bootstrap += c;
  if (child->bootstrap.empty()) return nullptr;
  return child;
}

struct Setup {
  std::unique_ptr<kafka::KafkaMessageBus> bus;
  std::unique_ptr<Clock> clock;
  std::unique_ptr<LocalTracker> tracker;
  Logger logger{LogLevel::kError};  // stderr
  testing::FakePeerTransport transport;
  std::unique_ptr<Edge> edge;
};

bool Wait(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

std::unique_ptr<Setup> Start(const std::string& bootstrap, size_t event_buffer_bytes,
                             size_t send_queue_bytes) {
  auto s = std::make_unique<Setup>();
  kafka::KafkaMessageBusOptions bus;
  bus.bootstrap_servers = bootstrap;
  bus.group_id = "edge-mem";
  bus.capacity_bytes = event_buffer_bytes;
  bus.properties = {{"consumer.fetch.wait.max.ms", "10"}};
  bus.logger = &s->logger;
  auto created = kafka::KafkaMessageBus::Create(std::move(bus));
  if (!created.ok()) return nullptr;
  s->bus = *std::move(created);
  s->clock = NewRealClock();
  s->tracker = std::make_unique<LocalTracker>("mem");
  EdgeOptions options;
  options.edge_id = "mem";
  options.topics.commands = kCommands;
  options.topics.deadletter = kDeadLetters;
  options.catalog_pull_on_connect = false;
  options.peer_max_messages_per_sec = 0;
  options.peer_send_queue_max_bytes = send_queue_bytes;
  auto edge = Edge::Create(options, EdgeParts{&s->transport, s->bus.get(), s->tracker.get(),
                                              s->clock.get(), &s->logger});
  if (!edge.ok() || !(*edge)->Start().ok()) return nullptr;
  s->edge = *std::move(edge);
  return s;
}

int EventBuffer(Child& child, int announcements, size_t bound) {
  auto s = Start(child.bootstrap, bound, size_t{16} << 20);
  if (s == nullptr) return 1;
  auto peer = s->transport.Connect("p");
  if (!peer->WaitForAdmission()) return 1;
  // Connected, and the broker known, before it stops answering.
  if (!Wait([&] { return !s->bus->Saturated() && s->edge->stats().events_published >= 1; },
            absl::Seconds(30))) {
    return 1;
  }
  if (!child.Order('D')) return 1;
  const int64_t before = RssKib();
  PeakRss peak;
  int sent = 0;
  for (; sent < announcements; ++sent) {
    PeerMessage m;
    m.set_request_id(absl::StrCat("a", sent));
    auto* ids = m.mutable_catalog_announcement()->mutable_catalog_ids();
    for (size_t bytes = 0; bytes < kMessageBytes; bytes += 100) ids->Add(std::string(98, 'i'));
    peer->Send(std::move(m));
    // Read by the edge, or held back: the edge stopped reading this peer.
    if (!Wait([&] { return peer->unread() == 0; }, absl::Seconds(2))) break;
  }
  const int64_t after = RssKib();
  std::printf(
      "event-buffer: EVENT_BUFFER_MAX_BYTES=%zu: %d of %d announcements of ~%zu bytes read "
      "with the broker down; ready=%s; RSS %lld KiB -> %lld KiB (+%.1f MiB, peak +%.1f MiB)\n",
      bound, sent, announcements, kMessageBytes, s->edge->Ready() ? "true" : "false",
      static_cast<long long>(before), static_cast<long long>(after), (after - before) / 1024.0,
      (peak.peak() - before) / 1024.0);
  if (!child.Order('U')) return 1;
  s->edge->Shutdown(absl::Now() + absl::Seconds(30));
  return 0;
}

int SendQueue(Child& child, int commands, size_t bound) {
  auto s = Start(child.bootstrap, size_t{256} << 20, bound);
  if (s == nullptr) return 1;
  auto peer = s->transport.Connect("p");
  if (!peer->WaitForAdmission()) return 1;
  peer->StopReading();
  const int64_t before = RssKib();
  PeakRss peak;
  const absl::Time start = absl::Now();
  if (!child.Order('C')) return 1;
  // Ended as slow once its queue passed the bound: every command but the one
  // stuck in flight is dead-lettered. That one fails when the connection
  // goes, as a real transport's write timeout makes it.
  auto letters = [&] { return s->edge->stats().commands_deadlettered; };
  auto outcomes = [&] {
    EdgeStats stats = s->edge->stats();
    return stats.commands_deadlettered + stats.commands_delivered;
  };
  bool all_but_one = Wait([&] { return outcomes() >= commands - 1; }, absl::Seconds(120));
  const absl::Duration took = absl::Now() - start;
  peer->Close();
  Wait([&] { return outcomes() >= commands; }, absl::Seconds(60));
  absl::SleepFor(absl::Seconds(1));  // the last delivery reports
  const int64_t settled = RssKib();
  malloc_trim(0);
  const int64_t trimmed = RssKib();
  std::printf(
      "send-queue: PEER_SEND_QUEUE_MAX_BYTES=%zu: %d commands of ~%zu bytes for a peer that "
      "stopped reading; %lld delivered, %lld dead-lettered (%s in %.1f s); RSS %lld KiB, "
      "peak +%.1f MiB, "
      "+%.1f MiB once every command had its outcome, +%.1f MiB after malloc_trim\n",
      bound, commands, kMessageBytes, static_cast<long long>(s->edge->stats().commands_delivered),
      static_cast<long long>(letters()), all_but_one ? "all but the one in flight" : "NOT all",
      absl::ToDoubleSeconds(took), static_cast<long long>(before), (peak.peak() - before) / 1024.0,
      (settled - before) / 1024.0, (trimmed - before) / 1024.0);
  s->edge->Shutdown(absl::Now() + absl::Seconds(30));
  return 0;
}

}  // namespace
}  // namespace edge

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  int count = argc > 2 ? std::atoi(argv[2]) : 0;
  size_t bound = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0;
  if (mode != "event-buffer" && mode != "send-queue") {
    std::fprintf(stderr,
                 "usage: %s event-buffer [announcements] [bytes] | send-queue [commands] "
                 "[bytes]\n",
                 argv[0]);
    return 2;
  }
  if (mode == "send-queue" && count <= 0) count = 296;
  if (mode == "event-buffer" && count <= 0) count = 1000;
  // Before any thread starts in this process.
  std::unique_ptr<edge::Child> child = edge::StartChild(count);
  // As edged does: large buffers go back to the system when freed.
  if (std::getenv("EDGE_BENCH_GLIBC_DEFAULT_MMAP") == nullptr) {
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  }
  if (child == nullptr) return 1;
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (mode == "event-buffer") {
    return edge::EventBuffer(*child, count, bound > 0 ? bound : size_t{256} << 20);
  }
  return edge::SendQueue(*child, count, bound > 0 ? bound : size_t{16} << 20);
}
