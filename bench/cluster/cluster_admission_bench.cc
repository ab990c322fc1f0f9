// edge_cluster_admission_bench: how fast one edge admits peers that all
// connect at once, with the etcd tracker (one claim transaction per peer)
// against the local tracker.
//
// Each run builds an edge in this process (GrpcPeerTransport on a loopback
// port, an in-memory bus that stores every event at once, and the tracker
// under test), starts --peers load peers at the same moment, each on its own
// gRPC channel (callback API), and waits until each was admitted or refused
// (bounded by --timeout_sec). A peer is admitted when the edge's first
// message reaches it. Without --etcd_endpoints an etcd server is started on
// free loopback ports in a temporary directory.
//
//   edge_cluster_admission_bench --peers=1000 --runs=3
//
// prints one table row per tracker: the median run's admission rate
// (admitted peers / time until the last was admitted) and admission latency
// percentiles over every run. The runs alternate between the trackers, the
// order rotating each round, after an untimed warm-up run.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "edge/descriptors.h"
#include "edge/edge.h"
#include "edge/etcd/etcd_tracker.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_message_bus.h"
#include "load_peer.h"
#include "support/etcd_process.h"

ABSL_FLAG(int, peers, 1000, "peers connecting at once in each run");
ABSL_FLAG(int, runs, 3, "runs per tracker, the trackers alternating");
ABSL_FLAG(int, warmup_runs, 1, "untimed runs first, with the first tracker");
ABSL_FLAG(std::string, trackers, "local,etcd", "trackers to measure: local, etcd");
ABSL_FLAG(std::string, etcd_endpoints, "",
          "ETCD_ENDPOINTS of a running etcd; empty: start one here");
ABSL_FLAG(int, lease_ttl_sec, 10, "TRACKER_LEASE_TTL_SEC");
ABSL_FLAG(int, timeout_sec, 60, "how long one run may take");
ABSL_FLAG(bool, trace, false,
          "log each run's rate and the etcd tracker's debug lines (one per group-committed "
          "batch: kind, size, ms, ops queued) to stderr");

namespace edge {
namespace {

struct RunResult {
  int64_t admitted = 0;
  int64_t refused = 0;
  int64_t unsettled = 0;
  absl::Duration until_last = absl::ZeroDuration();
  double rate() const {
    double seconds = absl::ToDoubleSeconds(until_last);
    return seconds > 0 ? admitted / seconds : 0;
  }
};

// Every run's peers settle into one histogram per tracker.
class Runner {
 public:
  Runner(std::vector<std::string> etcd_endpoints, Clock* clock)
      : etcd_endpoints_(std::move(etcd_endpoints)), clock_(clock) {}

  absl::StatusOr<RunResult> Run(const std::string& tracker_kind, int run,
                                loadgen::LoadStats* stats) {
    const std::string edge_id = "bench";
    std::unique_ptr<Tracker> tracker;
    if (tracker_kind == "local") {
      tracker = std::make_unique<LocalTracker>(edge_id);
    } else {
      etcd::EtcdTrackerOptions etcd;
      etcd.edge_id = edge_id;
      etcd.advertised_address = "127.0.0.1:1";
      etcd.endpoints = etcd_endpoints_;
      etcd.lease_ttl = absl::Seconds(absl::GetFlag(FLAGS_lease_ttl_sec));
      etcd.key_prefix = absl::StrCat("/bench-", UnixNanosNow(), "-", run, "/");
      etcd.clock = clock_;
      if (absl::GetFlag(FLAGS_trace)) etcd.logger = &trace_logger_;
      auto created = etcd::EtcdTracker::Create(std::move(etcd));
      if (!created.ok()) return created.status();
      tracker = *std::move(created);
    }
    EdgeOptions options;
    options.edge_id = edge_id;
    options.topics.commands = "edge-commands-bench";
    options.topics.deadletter = "edge-commands-bench.deadletter";
    options.max_peers = 20000;
    testing::FakeMessageBusOptions bus_options;
    bus_options.capacity = 1 << 20;
    testing::FakeMessageBus bus(bus_options);
    if (absl::Status s = bus.log()->CreateTopic(options.topics.commands, 1); !s.ok()) {
      return s;
    }
    grpc_transport::GrpcPeerTransportOptions grpc;
    grpc.address = "127.0.0.1:0";
    grpc.clock = clock_;
    grpc.logger = &logger_;
    auto transport = grpc_transport::GrpcPeerTransport::Create(grpc);
    if (!transport.ok()) return transport.status();
    auto edge = Edge::Create(options, {transport->get(), &bus, tracker.get(), clock_, &logger_});
    if (!edge.ok()) return edge.status();
    if (absl::Status s = (*edge)->Start(); !s.ok()) return s;
    if (tracker_kind == "etcd" && !static_cast<etcd::EtcdTracker*>(tracker.get())->HasLease()) {
      (*edge)->Shutdown(clock_->Now() + absl::Seconds(5));
      return absl::UnavailableError("the etcd tracker got no lease");
    }

    const int peers = absl::GetFlag(FLAGS_peers);
    const std::string target = absl::StrCat("ipv4:127.0.0.1:", (*transport)->port());
    loadgen::LoadPeerOptions peer_options;
    peer_options.answer_commands = true;
    std::vector<std::unique_ptr<loadgen::LoadPeer>> load;
    load.reserve(peers);
    for (int i = 0; i < peers; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt("edge.bench.connection", i);
      args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
      load.push_back(std::make_unique<loadgen::LoadPeer>(
          absl::StrCat("peer-", run, "-", i),
          grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args), stats,
          &peer_options));
    }

    struct Settled {
      absl::Mutex mu;
      int count ABSL_GUARDED_BY(mu) = 0;
      int64_t admitted ABSL_GUARDED_BY(mu) = 0;
      absl::Time last_admitted ABSL_GUARDED_BY(mu);
    } settled;
    const absl::Time start = absl::Now();
    {
      absl::MutexLock lock(&settled.mu);
      settled.last_admitted = start;
    }
    for (auto& peer : load) {
      peer->Start([&settled](bool admitted) {
        absl::MutexLock lock(&settled.mu);
        ++settled.count;
        if (admitted) {
          ++settled.admitted;
          settled.last_admitted = absl::Now();
        }
      });
    }
    RunResult result;
    {
      absl::MutexLock lock(&settled.mu);
      auto all = [&settled, peers]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(settled.mu) { return settled.count == peers; };
      settled.mu.AwaitWithTimeout(absl::Condition(&all),
                                  absl::Seconds(absl::GetFlag(FLAGS_timeout_sec)));
      result.admitted = settled.admitted;
      result.refused = settled.count - settled.admitted;
      result.unsettled = peers - settled.count;
      result.until_last = settled.last_admitted - start;
    }
    if (absl::GetFlag(FLAGS_trace)) {
      trace_logger_.Info("run admitted", {{"tracker", tracker_kind},
                                          {"run", absl::StrCat(run)},
                                          {"admitted", absl::StrCat(result.admitted)},
                                          {"peers_per_s", absl::StrCat(result.rate())}});
    }

    // Peers leave; the edge releases their claims, then shuts down.
    for (auto& peer : load) peer->Close();
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline &&
           !std::all_of(load.begin(), load.end(), [](const auto& p) { return p->done(); })) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    for (auto& peer : load) {
      if (!peer->done()) peer->Cancel();
    }
    (*edge)->Shutdown(clock_->Now() + absl::Seconds(15));
    for (auto& peer : load) {
      // A reactor gRPC still uses must outlive its call.
      if (!peer->done()) peer.release();
    }
    return result;
  }

 private:
  static int64_t UnixNanosNow() { return absl::ToUnixNanos(absl::Now()); }

  const std::vector<std::string> etcd_endpoints_;
  Clock* const clock_;
  Logger logger_{LogLevel::kError};
  Logger trace_logger_{LogLevel::kDebug};
};

int Main() {
  std::signal(SIGPIPE, SIG_IGN);
  if (auto limit = DescriptorBudget::RaiseLimit(); !limit.ok()) {
    std::fprintf(stderr, "%s\n", limit.status().ToString().c_str());
    return 1;
  }
  std::vector<std::string> trackers =
      absl::StrSplit(absl::GetFlag(FLAGS_trackers), ',', absl::SkipEmpty());
  std::unique_ptr<testing::EtcdProcess> etcd;
  std::vector<std::string> endpoints;
  if (std::find(trackers.begin(), trackers.end(), "etcd") != trackers.end()) {
    if (!absl::GetFlag(FLAGS_etcd_endpoints).empty()) {
      auto parsed = etcd::ParseEtcdEndpoints(absl::GetFlag(FLAGS_etcd_endpoints));
      if (!parsed.ok()) {
        std::fprintf(stderr, "--etcd_endpoints: %s\n", parsed.status().ToString().c_str());
        return 2;
      }
      endpoints = *parsed;
    } else {
      auto started = testing::EtcdProcess::Start();
      if (!started.ok()) {
        std::fprintf(stderr, "cannot start etcd (%s): %s\n",
                     testing::EtcdProcess::BinaryPath().c_str(),
                     started.status().ToString().c_str());
        return 1;
      }
      etcd = *std::move(started);
      endpoints = {etcd->endpoint()};
    }
  }
  std::unique_ptr<Clock> clock = NewRealClock();
  Runner runner(endpoints, clock.get());
  const int peers = absl::GetFlag(FLAGS_peers);
  const int runs = std::max(1, absl::GetFlag(FLAGS_runs));

  for (const std::string& kind : trackers) {
    if (kind != "local" && kind != "etcd") {
      std::fprintf(stderr, "unknown tracker %s\n", kind.c_str());
      return 2;
    }
  }
  if (trackers.empty()) {
    std::fprintf(stderr, "--trackers: none given\n");
    return 2;
  }
  // The process's first run pays for what later runs find ready (gRPC's
  // threads, the heap grown to its size): left untimed, or the tracker
  // measured first would lose by it.
  for (int run = 0; run < absl::GetFlag(FLAGS_warmup_runs); ++run) {
    loadgen::LoadStats discard;
    absl::StatusOr<RunResult> result = runner.Run(trackers.front(), -1 - run, &discard);
    if (!result.ok()) {
      std::fprintf(stderr, "warm-up run: %s\n", result.status().ToString().c_str());
      return 1;
    }
  }
  struct PerTracker {
    loadgen::LoadStats stats;
    std::vector<RunResult> results;
    bool failed = false;
  };
  std::map<std::string, PerTracker> measured;
  bool failed = false;
  // Runs alternate between the trackers, the order rotating each round,
  // so that neither gains from going first or from the host's drift.
  for (int run = 0; run < runs; ++run) {
    for (size_t i = 0; i < trackers.size(); ++i) {
      const std::string& kind = trackers[(i + run) % trackers.size()];
      PerTracker& mine = measured[kind];
      if (mine.failed) continue;
      absl::StatusOr<RunResult> result = runner.Run(kind, run, &mine.stats);
      if (!result.ok()) {
        std::fprintf(stderr, "%s run %d: %s\n", kind.c_str(), run,
                     result.status().ToString().c_str());
        mine.failed = failed = true;
        continue;
      }
      mine.results.push_back(*result);
    }
  }

  std::printf("%-7s %6s %5s %9s %8s %11s %9s %9s %9s\n", "tracker", "peers", "runs", "admitted",
              "refused", "peers/s", "p50 ms", "p99 ms", "max ms");
  for (const std::string& kind : trackers) {
    PerTracker& mine = measured[kind];
    std::vector<RunResult>& results = mine.results;
    if (results.empty()) continue;
    int64_t admitted = 0, refused = 0;
    for (const RunResult& r : results) {
      admitted += r.admitted;
      refused += r.refused + r.unsettled;
    }
    std::sort(results.begin(), results.end(),
              [](const RunResult& x, const RunResult& y) { return x.rate() < y.rate(); });
    const RunResult& median = results[results.size() / 2];
    auto ms = [](absl::Duration d) { return absl::ToDoubleMilliseconds(d); };
    std::printf("%-7s %6d %5zu %9lld %8lld %11.0f %9.1f %9.1f %9.1f\n", kind.c_str(), peers,
                results.size(), static_cast<long long>(admitted), static_cast<long long>(refused),
                median.rate(), ms(mine.stats.admission.Percentile(50)),
                ms(mine.stats.admission.Percentile(99)), ms(mine.stats.admission.Max()));
    std::fflush(stdout);
    if (refused > 0) failed = true;
  }
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace edge

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  return edge::Main();
}
