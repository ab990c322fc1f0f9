// edge_loadgen: drives an edge (edged, bench_edge) or the echo server with
// simulated peers, each on its own HTTP/2 connection, and reports what it
// measured. See load_run.h for the workloads, docs/performance.md for runs.
//
//   edge_loadgen --port=50051 --hosts=127.0.0.1,127.0.0.2 --peers=1000
//                --workload=messages --duration=10s --server_pid=<edged's pid>
#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "command_sink.h"
#include "edge/descriptors.h"
#include "hold_run.h"
#include "load_run.h"
#include "proc_stats.h"

ABSL_FLAG(std::string, hosts, "127.0.0.1",
          "comma-separated server addresses, used in turn (several 127.0.0.x "
          "spread the "
          "connections over several ephemeral port ranges)");
ABSL_FLAG(std::string, sources, "",
          "comma-separated local IPv4 addresses to connect from, in turn (empty: the kernel "
          "picks); distinct sources give each peer a distinct remote address, as home peers have");
ABSL_FLAG(int, port, 0, "the server's port");
ABSL_FLAG(int, peers, 100, "peers to open, each on its own connection");
ABSL_FLAG(std::string, peer_prefix, "lg", "peer ids are <prefix>-<index>");
ABSL_FLAG(int, ramp_concurrency, 256, "peers connecting at once, at most");
ABSL_FLAG(double, ramp_rate, 0, "peers started per second, at most (0: unlimited)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(30), "how long the ramp waits for a peer");
ABSL_FLAG(std::string, checkpoints, "", "comma-separated peer counts at which to sample memory");
ABSL_FLAG(absl::Duration, settle, absl::Seconds(2), "pause before each memory sample");
ABSL_FLAG(std::string, workload, "ramp", "ramp, idle, messages, commands, mix or hold");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "length of the workload after the ramp");
ABSL_FLAG(double, message_rate, 0, "peer messages per second in all (0: closed loop)");
ABSL_FLAG(int, window, 1, "closed loop: messages in flight per peer");
ABSL_FLAG(double, command_rate, 1000, "commands per second in all");
ABSL_FLAG(std::string, kafka, "", "bootstrap servers to produce commands to");
ABSL_FLAG(std::string, command_topic, "", "the edge's command topic (with --kafka)");
ABSL_FLAG(std::string, feed, "", "bench_edge's command feed host:port (instead of --kafka)");
ABSL_FLAG(absl::Duration, keepalive_interval, absl::Seconds(30), "each peer's keepalive period");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "how long to wait for what is in flight after the workload");
ABSL_FLAG(bool, answer_commands, true, "answer commands like a real peer");
ABSL_FLAG(int, server_pid, 0, "the server's pid, for memory, descriptor and CPU samples");
ABSL_FLAG(int, broker_pid, 0, "a broker's pid, for its CPU over the workload window");
ABSL_FLAG(std::string, label, "", "a name for the run, echoed in the RESULT line");
ABSL_FLAG(std::string, targets, "",
          "hold: comma-separated edges, host:port each (instead of --hosts "
          "and --port)");
ABSL_FLAG(absl::Duration, reconnect_backoff_initial, absl::Milliseconds(500),
          "hold: a disconnected peer's first reconnection within this");
ABSL_FLAG(absl::Duration, reconnect_backoff_max, absl::Seconds(4),
          "hold: the longest wait between reconnection attempts");
ABSL_FLAG(absl::Duration, status_interval, absl::Seconds(1),
          "hold: how often to print the status line");

namespace {

int Main(int argc, char** argv) {
  // Debian's abseil checks every mutex for deadlock cycles unless told not to.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::signal(SIGPIPE, SIG_IGN);
  absl::SetProgramUsageMessage("Load generator for the edge; see docs/performance.md");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<int64_t> raised = edge::DescriptorBudget::RaiseLimit();
  if (!raised.ok()) {
    std::fprintf(stderr, "edge_loadgen: %s\n", raised.status().ToString().c_str());
    return 1;
  }
  const int64_t limit = *raised;

  edge::loadgen::LoadRunOptions options;
  options.hosts = absl::StrSplit(absl::GetFlag(FLAGS_hosts), ',', absl::SkipEmpty());
  options.sources = absl::StrSplit(absl::GetFlag(FLAGS_sources), ',', absl::SkipEmpty());
  options.port = absl::GetFlag(FLAGS_port);
  options.peers = absl::GetFlag(FLAGS_peers);
  options.peer_prefix = absl::GetFlag(FLAGS_peer_prefix);
  options.ramp_concurrency = absl::GetFlag(FLAGS_ramp_concurrency);
  options.ramp_rate = absl::GetFlag(FLAGS_ramp_rate);
  options.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  for (absl::string_view c :
       absl::StrSplit(absl::GetFlag(FLAGS_checkpoints), ',', absl::SkipEmpty())) {
    int at;
    if (!absl::SimpleAtoi(c, &at)) {
      std::fprintf(stderr, "edge_loadgen: --checkpoints: \"%s\" is not a number\n",
                   std::string(c).c_str());
      return 2;
    }
    options.checkpoints.push_back(at);
  }
  options.settle = absl::GetFlag(FLAGS_settle);
  options.workload = absl::GetFlag(FLAGS_workload);
  options.duration = absl::GetFlag(FLAGS_duration);
  options.message_rate = absl::GetFlag(FLAGS_message_rate);
  options.window = absl::GetFlag(FLAGS_window);
  options.command_rate = absl::GetFlag(FLAGS_command_rate);
  options.keepalive_interval = absl::GetFlag(FLAGS_keepalive_interval);
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.server_pid = absl::GetFlag(FLAGS_server_pid);
  options.broker_pid = absl::GetFlag(FLAGS_broker_pid);
  options.label = absl::GetFlag(FLAGS_label);
  options.peer.answer_commands = absl::GetFlag(FLAGS_answer_commands);
  if (options.peers + 64 > limit) {
    std::fprintf(stderr, "edge_loadgen: %d peers need more descriptors than the limit of %lld\n",
                 options.peers, static_cast<long long>(limit));
    return 2;
  }

  if (absl::GetFlag(FLAGS_workload) == "hold") {
    // Peers on several edges, reconnecting when their stream ends; runs for
    // --duration or until SIGTERM. See hold_run.h.
    edge::loadgen::HoldRunOptions hold;
    hold.targets = absl::StrSplit(absl::GetFlag(FLAGS_targets), ',', absl::SkipEmpty());
    hold.peers = options.peers;
    hold.peer_prefix = options.peer_prefix;
    hold.ramp_concurrency = options.ramp_concurrency;
    hold.connect_timeout = options.connect_timeout;
    hold.duration = options.duration;
    hold.keepalive_interval = options.keepalive_interval;
    hold.backoff_initial = absl::GetFlag(FLAGS_reconnect_backoff_initial);
    hold.backoff_max = absl::GetFlag(FLAGS_reconnect_backoff_max);
    hold.status_interval = absl::GetFlag(FLAGS_status_interval);
    hold.peer = options.peer;
    if (absl::Status held = edge::loadgen::RunHold(hold); !held.ok()) {
      std::fprintf(stderr, "edge_loadgen: %s\n", held.ToString().c_str());
      return 2;
    }
    return 0;
  }

  std::unique_ptr<edge::loadgen::CommandSink> sink;
  if (options.workload == "commands" || options.workload == "mix") {
    absl::StatusOr<std::unique_ptr<edge::loadgen::CommandSink>> made;
    if (!absl::GetFlag(FLAGS_feed).empty()) {
      made = edge::loadgen::NewFeedCommandSink(absl::GetFlag(FLAGS_feed));
    } else if (!absl::GetFlag(FLAGS_kafka).empty() && !absl::GetFlag(FLAGS_command_topic).empty()) {
      made = edge::loadgen::NewKafkaCommandSink(absl::GetFlag(FLAGS_kafka),
                                                absl::GetFlag(FLAGS_command_topic));
    } else {
      std::fprintf(stderr, "edge_loadgen: %s needs --feed, or --kafka and --command_topic\n",
                   options.workload.c_str());
      return 2;
    }
    if (!made.ok()) {
      std::fprintf(stderr, "edge_loadgen: command sink: %s\n", made.status().ToString().c_str());
      return 1;
    }
    sink = *std::move(made);
    options.sink = sink.get();
  }

  absl::StatusOr<edge::loadgen::LoadReport> report = edge::loadgen::RunLoad(options);
  if (!report.ok()) {
    std::fprintf(stderr, "edge_loadgen: %s\n", report.status().ToString().c_str());
    return 2;
  }
  std::printf("%s\n", report->Result().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
