// edge_bench_edge: the edge with an in-memory bus, for measuring the edge
// without a broker. It wires the core exactly as edged does, with
// GrpcPeerTransport and LocalTracker, but with FakeMessageBus (every publish
// is stored at once) instead of KafkaMessageBus. Backend commands come in on
// a TCP "feed" port, one "<peer_id>\t<json>\n" line each, and are produced
// into the in-memory command topic (see command_sink.h, command_feed.h).
//
//   edge_bench_edge --port=0 --feed_port=0 --max_seconds=600
// prints "edge_bench_edge listening port=<grpc> feed=<feed> pid=<pid>", then
// serves until SIGTERM/SIGINT or --max_seconds, and shuts down as edged does.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "command_feed.h"
#include "edge/descriptors.h"
#include "edge/edge.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_message_bus.h"

ABSL_FLAG(std::string, address, "0.0.0.0", "gRPC address to listen on");
ABSL_FLAG(int, port, 0, "gRPC port (0: any free port)");
ABSL_FLAG(int, feed_port, 0, "command feed port on 127.0.0.1 (0: any free port)");
ABSL_FLAG(std::string, edge_id, "bench", "EDGE_ID");
ABSL_FLAG(int, max_peers, 20000, "MAX_PEERS");
ABSL_FLAG(int, peer_send_queue_max, 1024, "PEER_SEND_QUEUE_MAX");
ABSL_FLAG(double, peer_max_messages_per_sec, 1000, "PEER_MAX_MESSAGES_PER_SEC");
ABSL_FLAG(bool, catalog_pull_on_connect, true, "CATALOG_PULL_ON_CONNECT");
ABSL_FLAG(int, bus_capacity, 10000, "records the in-memory bus holds before it is saturated");
ABSL_FLAG(int, max_seconds, 600, "exit after this long at most");

namespace {

int Main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<int64_t> limit = edge::DescriptorBudget::RaiseLimit();
  if (!limit.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", limit.status().ToString().c_str());
    return 1;
  }
  // Descriptors kept free, as edged keeps them.
  edge::DescriptorBudget descriptors(*limit, edge::DescriptorBudget::kDefaultHeadroom);
  std::unique_ptr<edge::Clock> clock = edge::NewRealClock();
  edge::Logger logger(edge::LogLevel::kWarn);

  const std::string edge_id = absl::GetFlag(FLAGS_edge_id);
  edge::EdgeOptions options;
  options.edge_id = edge_id;
  options.topics.commands = absl::StrCat("edge-commands-", edge_id);
  options.topics.deadletter = absl::StrCat("edge-commands-", edge_id, ".deadletter");
  options.max_peers = absl::GetFlag(FLAGS_max_peers);
  options.peer_send_queue_max = absl::GetFlag(FLAGS_peer_send_queue_max);
  options.peer_max_messages_per_sec = absl::GetFlag(FLAGS_peer_max_messages_per_sec);
  options.catalog_pull_on_connect = absl::GetFlag(FLAGS_catalog_pull_on_connect);
  options.has_descriptor_headroom = [&descriptors] { return descriptors.HasHeadroom(); };

  edge::testing::FakeMessageBusOptions bus_options;
  bus_options.capacity = static_cast<size_t>(absl::GetFlag(FLAGS_bus_capacity));
  edge::testing::FakeMessageBus bus(bus_options);
  if (absl::Status created = bus.log()->CreateTopic(options.topics.commands, 1); !created.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", created.ToString().c_str());
    return 1;
  }
  edge::LocalTracker tracker(edge_id);
  edge::grpc_transport::GrpcPeerTransportOptions grpc;
  grpc.address = absl::StrCat(absl::GetFlag(FLAGS_address), ":", absl::GetFlag(FLAGS_port));
  grpc.clock = clock.get();
  grpc.logger = &logger;
  auto transport = edge::grpc_transport::GrpcPeerTransport::Create(grpc);
  if (!transport.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", transport.status().ToString().c_str());
    return 1;
  }
  auto edge = edge::Edge::Create(options, {transport->get(), &bus, &tracker, clock.get(), &logger});
  if (!edge.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", edge.status().ToString().c_str());
    return 1;
  }
  if (absl::Status started = (*edge)->Start(); !started.ok()) {
    std::fprintf(stderr, "edge_bench_edge: %s\n", started.ToString().c_str());
    return 1;
  }
  const std::string& command_topic = options.topics.commands;
  edge::loadgen::CommandFeed feed(
      [&bus, &command_topic](absl::string_view peer_id, absl::string_view json) {
        // Fails only for a negative partition; this is partition 0.
        (void)bus.Produce(command_topic, std::string(peer_id), std::string(json));
      });
  const int feed_port = feed.Start(absl::GetFlag(FLAGS_feed_port));
  if (feed_port < 0) {
    std::fprintf(stderr, "edge_bench_edge: cannot listen for the command feed\n");
    (*edge)->Shutdown(clock->Now() + absl::Seconds(5));
    return 1;
  }
  std::printf("edge_bench_edge listening port=%d feed=%d pid=%d\n", (*transport)->port(), feed_port,
              static_cast<int>(getpid()));
  std::fflush(stdout);

  struct timespec timeout = {absl::GetFlag(FLAGS_max_seconds), 0};
  sigtimedwait(&signals, nullptr, &timeout);
  (*edge)->Shutdown(clock->Now() + absl::Seconds(15));
  edge::EdgeStats s = (*edge)->stats();
  std::printf(
      "edge_bench_edge stats admitted=%lld rejected=%lld messages_in=%lld "
      "events_published=%lld commands_delivered=%lld "
      "commands_deadlettered=%lld "
      "keepalives=%lld\n",
      static_cast<long long>(s.admitted), static_cast<long long>(s.rejected),
      static_cast<long long>(s.messages_in), static_cast<long long>(s.events_published),
      static_cast<long long>(s.commands_delivered), static_cast<long long>(s.commands_deadlettered),
      static_cast<long long>(s.keepalives));
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
