#include "load_run.h"

#include <arpa/inet.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "proc_stats.h"

namespace edge::loadgen {
namespace {

constexpr absl::Duration kTick = absl::Milliseconds(1);

std::string Fixed(double v, int decimals = 1) { return absl::StrFormat("%.*f", decimals, v); }

// A TCP connection from `source` (port chosen at connect) to `host`:`port`,
// both IPv4 literals; blocking connect (loopback answers at once).
absl::StatusOr<int> ConnectFrom(const std::string& source, const std::string& host, int port) {
  sockaddr_in local{};
  local.sin_family = AF_INET;
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("source \"", source, "\": not an IPv4 address"));
  }
  if (inet_pton(AF_INET, host.c_str(), &remote.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("host \"", host, "\": not an IPv4 address"));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  const int one = 1;
  // The port is picked at connect, per destination: every source address
  // has the whole ephemeral range for each server address.
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&local), sizeof(local)) != 0 ||
      connect(fd, reinterpret_cast<const sockaddr*>(&remote), sizeof(remote)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect from ", source, " to ", host, ":", port, ": ", std::strerror(error)));
  }
  return fd;
}

class Runner {
 public:
  explicit Runner(const LoadRunOptions& options) : o_(options), peer_options_(options.peer) {
    peer_options_.sending = &sending_;
  }

  absl::StatusOr<LoadReport> Run() {
    if (o_.port <= 0) return absl::InvalidArgumentError("port: required");
    if (o_.hosts.empty()) return absl::InvalidArgumentError("hosts: at least one");
    const bool commands = o_.workload == "commands" || o_.workload == "mix";
    const bool messages = o_.workload == "messages" || o_.workload == "mix";
    if (!commands && !messages && o_.workload != "ramp" && o_.workload != "idle") {
      return absl::InvalidArgumentError(absl::StrCat("workload \"", o_.workload, "\": unknown"));
    }
    if (commands && (o_.sink == nullptr || o_.command_rate <= 0)) {
      return absl::InvalidArgumentError("commands need a sink and a positive command rate");
    }
    if (o_.workload == "mix" && o_.message_rate <= 0) {
      return absl::InvalidArgumentError("mix needs a positive message rate");
    }
    Set("label", o_.label.empty() ? "-" : o_.label);
    Set("workload", o_.workload);
    Set("peers_target", o_.peers);
    Ramp();
    if (o_.workload != "ramp") Workload(messages, commands);
    Close();
    return report_;
  }

 private:
  template <typename T>
  void Set(const std::string& key, const T& value) {
    report_.fields[key] = absl::StrCat(value);
  }
  void SetLatency(const std::string& prefix, const LatencyHistogram& h) {
    Set(prefix + "_p50_ms", FormatMillis(h.Percentile(50)));
    Set(prefix + "_p90_ms", FormatMillis(h.Percentile(90)));
    Set(prefix + "_p99_ms", FormatMillis(h.Percentile(99)));
    Set(prefix + "_p999_ms", FormatMillis(h.Percentile(99.9)));
    Set(prefix + "_max_ms", FormatMillis(h.Max()));
  }

  std::optional<ProcessSample> Sample() { return SampleOf(o_.server_pid, "the server"); }
  std::optional<ProcessSample> SampleOf(pid_t pid, const char* what) {
    if (pid <= 0) return std::nullopt;
    auto sample = SampleProcess(pid);
    if (!sample.ok()) {
      std::fprintf(stderr, "loadgen: cannot sample %s: %s\n", what,
                   sample.status().ToString().c_str());
      return std::nullopt;
    }
    return *sample;
  }

  void StartPeer(int index) {
    grpc::ChannelArguments args;
    // Its own connection: no subchannel shared with any other peer.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("edge.loadgen.connection", index);
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    const std::string& host = o_.hosts[index % o_.hosts.size()];
    std::shared_ptr<grpc::Channel> channel;
    if (o_.sources.empty()) {
      channel = grpc::CreateCustomChannel(absl::StrCat("ipv4:", host, ":", o_.port),
                                          grpc::InsecureChannelCredentials(), args);
    } else {
      absl::StatusOr<int> fd = ConnectFrom(o_.sources[index % o_.sources.size()], host, o_.port);
      if (!fd.ok()) {
        if (stats_.connect_failed.fetch_add(1) == 0) {
          std::fprintf(stderr, "loadgen: %s\n", fd.status().ToString().c_str());
        }
        return;
      }
      channel =
          grpc::CreateCustomInsecureChannelFromFd(absl::StrCat(host, ":", o_.port), *fd, args);
    }
    auto peer = std::make_unique<LoadPeer>(absl::StrCat(o_.peer_prefix, "-", index),
                                           std::move(channel), &stats_, &peer_options_);
    LoadPeer* raw = peer.get();
    peers_.push_back(std::move(peer));
    {
      absl::MutexLock lock(&mu_);
      ++connecting_;
    }
    raw->Start([this](bool) {
      absl::MutexLock lock(&mu_);
      --connecting_;
    });
  }

  // Waits until no peer is connecting; false after the connect timeout.
  bool AwaitSettled() {
    absl::MutexLock lock(&mu_);
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return connecting_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&settled), o_.connect_timeout);
  }

  void Ramp() {
    std::optional<ProcessSample> before = Sample();
    std::optional<ProcessSample> previous = before;
    int64_t previous_admitted = 0;
    std::vector<int> checkpoints = o_.checkpoints;
    std::sort(checkpoints.begin(), checkpoints.end());
    size_t next_checkpoint = 0;
    absl::Duration active;
    absl::Time segment_start = absl::Now();
    absl::Time next_start = segment_start;
    bool timed_out = false;
    std::printf("ramp: %d peers over %zu address(es), concurrency %d%s\n", o_.peers,
                o_.hosts.size(), o_.ramp_concurrency,
                o_.ramp_rate > 0 ? absl::StrCat(", ", o_.ramp_rate, " peers/s").c_str() : "");
    std::fflush(stdout);
    auto checkpoint = [&](int at) {
      timed_out |= !AwaitSettled();
      const absl::Duration segment = absl::Now() - segment_start;
      active += segment;
      const int64_t settled_in_segment = stats_.admitted.load() - previous_admitted;
      absl::SleepFor(o_.settle);
      std::optional<ProcessSample> now = Sample();
      const int64_t admitted = stats_.admitted.load();
      if (now && before && admitted > 0) {
        const double total = static_cast<double>(now->rss_kib - before->rss_kib) / admitted;
        const double slope = admitted > previous_admitted
                                 ? static_cast<double>(now->rss_kib - previous->rss_kib) /
                                       (admitted - previous_admitted)
                                 : 0;
        std::printf(
            "checkpoint: peers=%lld rss=%lld KiB (%.2f KiB/peer since start, "
            "%.2f KiB/peer "
            "since last checkpoint) fds=%lld threads=%d; last %lld admitted at "
            "%.0f/s\n",
            static_cast<long long>(admitted), static_cast<long long>(now->rss_kib), total, slope,
            static_cast<long long>(now->descriptors), now->threads,
            static_cast<long long>(settled_in_segment),
            settled_in_segment / std::max(1e-9, absl::ToDoubleSeconds(segment)));
        Set(absl::StrCat("rss_kib_at_", at), now->rss_kib);
        Set(absl::StrCat("kib_per_peer_at_", at), Fixed(total, 2));
        Set(absl::StrCat("kib_per_peer_slope_to_", at), Fixed(slope, 2));
      }
      Set(absl::StrCat("peers_per_s_to_", at),
          Fixed(settled_in_segment / std::max(1e-9, absl::ToDoubleSeconds(segment)), 0));
      std::fflush(stdout);
      previous = now;
      previous_admitted = admitted;
      segment_start = absl::Now();
      next_start = segment_start;
    };
    for (int i = 0; i < o_.peers; ++i) {
      if (next_checkpoint < checkpoints.size() && i == checkpoints[next_checkpoint]) {
        checkpoint(i);
        ++next_checkpoint;
      }
      {
        absl::MutexLock lock(&mu_);
        auto room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return connecting_ < o_.ramp_concurrency;
        };
        if (!mu_.AwaitWithTimeout(absl::Condition(&room), o_.connect_timeout)) {
          timed_out = true;
          break;
        }
      }
      if (o_.ramp_rate > 0) {
        absl::Time now = absl::Now();
        if (next_start > now) absl::SleepFor(next_start - now);
        next_start += absl::Seconds(1.0 / o_.ramp_rate);
      }
      StartPeer(i);
    }
    timed_out |= !AwaitSettled();
    active += absl::Now() - segment_start;
    const int64_t admitted = stats_.admitted.load();
    const int64_t refused = stats_.refused.load();
    std::vector<std::string> codes;
    for (int c = 0; c < 17; ++c) {
      if (int64_t n = stats_.refused_by_code[c].load(); n > 0) {
        codes.push_back(
            absl::StrCat(grpc::StatusCode(c) == grpc::RESOURCE_EXHAUSTED  ? "RESOURCE_EXHAUSTED"
                         : grpc::StatusCode(c) == grpc::UNAVAILABLE       ? "UNAVAILABLE"
                         : grpc::StatusCode(c) == grpc::DEADLINE_EXCEEDED ? "DEADLINE_EXCEEDED"
                                                                          : absl::StrCat("code", c),
                         ":", n));
      }
    }
    const double rate = admitted / std::max(1e-9, absl::ToDoubleSeconds(active));
    std::printf(
        "ramp: admitted=%lld refused=%lld [%s] in %.2f s: %.0f peers/s; "
        "admission %s%s\n",
        static_cast<long long>(admitted), static_cast<long long>(refused),
        absl::StrJoin(codes, ",").c_str(), absl::ToDoubleSeconds(active), rate,
        stats_.admission.Summary().c_str(), timed_out ? " (some peers never settled)" : "");
    Set("admitted", admitted);
    Set("refused", refused);
    Set("refused_codes", codes.empty() ? "-" : absl::StrJoin(codes, ","));
    const int64_t connect_failed = stats_.connect_failed.load();
    Set("connect_failed", connect_failed);
    Set("unsettled", o_.peers - admitted - refused - connect_failed);
    Set("ramp_s", Fixed(absl::ToDoubleSeconds(active), 3));
    Set("ramp_peers_per_s", Fixed(rate, 0));
    SetLatency("admission", stats_.admission);
    absl::SleepFor(o_.settle);
    std::optional<ProcessSample> after = Sample();
    if (before && after && admitted > 0) {
      const double per_peer = static_cast<double>(after->rss_kib - before->rss_kib) / admitted;
      const double fds = static_cast<double>(after->descriptors - before->descriptors) / admitted;
      std::printf(
          "server: rss %lld -> %lld KiB: %.2f KiB per peer; fds %lld -> %lld "
          "(%.3f per "
          "peer); threads %d\n",
          static_cast<long long>(before->rss_kib), static_cast<long long>(after->rss_kib), per_peer,
          static_cast<long long>(before->descriptors), static_cast<long long>(after->descriptors),
          fds, after->threads);
      Set("rss_before_kib", before->rss_kib);
      Set("rss_after_kib", after->rss_kib);
      Set("rss_per_peer_kib", Fixed(per_peer, 2));
      Set("fds_per_peer", Fixed(fds, 3));
      Set("server_fds", after->descriptors);
      Set("server_threads", after->threads);
      Set("ramp_cpu_ms_per_peer",
          Fixed(absl::ToDoubleMilliseconds(after->cpu - before->cpu) / admitted, 3));
    }
    std::fflush(stdout);
    for (auto& peer : peers_) {
      if (peer->admitted() && !peer->done()) admitted_.push_back(peer.get());
    }
  }

  // Before a window, every path it times is used once, untimed: a message
  // to its acknowledgement, a command to its delivery and its answer to the
  // answer's acknowledgement. So the window does not count first-use costs
  // (a Kafka producer's first record to a topic waits for the topic's
  // metadata, ~0.6 s on the embedded broker). False, with the reason
  // printed, if the warm-up did not complete in --connect_timeout.
  bool WarmUp(bool messages, bool commands) {
    const absl::Time start = absl::Now();
    LoadPeer* peer = admitted_.front();
    int64_t acks = 0;
    if (messages) {
      if (!peer->SendWarmUpMessage()) {
        std::printf("workload: the warm-up message could not be sent, skipped\n");
        return false;
      }
      ++acks;
    }
    if (commands) {
      o_.sink->Send(peer->peer_id(),
                    absl::StrCat(R"({"type":"file_hash","peer_id":")", peer->peer_id(),
                                 R"(","request_id":")", MakeRequestId('w', 0),
                                 R"(","catalog_id":"catalog-1","hash_types":["sha256"]})"));
      o_.sink->Flush();
      if (o_.peer.answer_commands) ++acks;
    }
    const int64_t received = commands ? 1 : 0;
    while (stats_.warmups_received.load() < received || stats_.warmups_acked.load() < acks) {
      if (absl::Now() - start > o_.connect_timeout) {
        std::printf("workload: the warm-up did not complete within %s, skipped\n",
                    absl::FormatDuration(o_.connect_timeout).c_str());
        return false;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    std::printf("warm-up: every timed path used once, in %.1f ms\n", ms);
    Set("warmup_ms", Fixed(ms, 1));
    return true;
  }

  void Workload(bool messages, bool commands) {
    if (admitted_.empty()) {
      std::printf("workload: no admitted peer, skipped\n");
      return;
    }
    if ((messages || commands) && !WarmUp(messages, commands)) return;
    const size_t n = admitted_.size();
    const bool closed_loop = messages && o_.message_rate <= 0;
    const int64_t acked0 = stats_.messages_acked.load();
    // Distinct commands: a repeat (a redelivery) is not a delivery.
    auto distinct_received = [&] {
      return stats_.commands_received.load() - stats_.commands_repeated.load();
    };
    const int64_t received0 = distinct_received();
    std::optional<ProcessSample> s0 = Sample();
    // The load generator's own CPU, and a broker's: what the server's
    // cores were shared with.
    std::optional<ProcessSample> self0 = SampleOf(getpid(), "the load generator");
    std::optional<ProcessSample> broker0 = SampleOf(o_.broker_pid, "the broker");
    const absl::Time start = absl::Now();
    const absl::Time end = start + o_.duration;
    if (closed_loop) {
      sending_.store(true);
      for (int w = 0; w < o_.window; ++w) {
        for (LoadPeer* peer : admitted_) peer->SendMessage();
      }
    }
    int64_t messages_started = 0, commands_sent = 0, keepalives = 0;
    size_t message_rr = 0, command_rr = 0, keepalive_rr = 0;
    uint64_t command_seq = 0;
    const double keepalive_rate = n / absl::ToDoubleSeconds(o_.keepalive_interval);
    absl::Time tick = start;
    while (true) {
      absl::Time now = absl::Now();
      if (now >= end) break;
      const double elapsed = absl::ToDoubleSeconds(now - start);
      if (messages && !closed_loop) {
        for (int64_t due = static_cast<int64_t>(o_.message_rate * elapsed); messages_started < due;
             ++messages_started) {
          admitted_[message_rr++ % n]->SendMessage();
        }
      }
      if (commands) {
        for (int64_t due = static_cast<int64_t>(o_.command_rate * elapsed); commands_sent < due;
             ++commands_sent) {
          LoadPeer* peer = admitted_[command_rr++ % n];
          o_.sink->Send(peer->peer_id(),
                        absl::StrCat(R"({"type":"file_hash","peer_id":")", peer->peer_id(),
                                     R"(","request_id":")", MakeRequestId('c', command_seq++),
                                     R"(","catalog_id":"catalog-1","hash_types":["sha256"]})"));
        }
        o_.sink->Flush();
      }
      for (int64_t due = static_cast<int64_t>(keepalive_rate * elapsed); keepalives < due;
           ++keepalives) {
        admitted_[keepalive_rr++ % n]->SendKeepalive();
      }
      tick += kTick;
      now = absl::Now();
      if (tick > now) {
        absl::SleepFor(tick - now);
      } else {
        tick = now;
      }
    }
    sending_.store(false);
    const absl::Duration window = absl::Now() - start;
    const int64_t acked = stats_.messages_acked.load() - acked0;
    const int64_t received = distinct_received() - received0;
    std::optional<ProcessSample> s1 = Sample();
    std::optional<ProcessSample> self1 = SampleOf(getpid(), "the load generator");
    std::optional<ProcessSample> broker1 = SampleOf(o_.broker_pid, "the broker");
    // Wait for what is still in flight.
    const absl::Time drain_deadline = absl::Now() + o_.drain_timeout;
    auto drained = [&] {
      if (stats_.messages_acked.load() < stats_.messages_sent.load()) return false;
      if (stats_.keepalives_acked.load() < stats_.keepalives_sent.load()) return false;
      if (commands && distinct_received() < commands_sent - o_.sink->failures()) {
        return false;
      }
      return stats_.answers_acked.load() >= stats_.answers_sent.load();
    };
    while (!drained() && absl::Now() < drain_deadline) absl::SleepFor(absl::Milliseconds(5));
    const double seconds = absl::ToDoubleSeconds(window);
    std::printf("workload %s: %.2f s on %zu peers%s\n", o_.workload.c_str(), seconds, n,
                drained() ? "" : " (not everything in flight came back before the drain timeout)");
    Set("duration_s", Fixed(seconds, 3));
    Set("drained", drained() ? "yes" : "no");
    if (messages) {
      std::printf("  messages: %.0f acked/s (%lld in window); ack latency %s\n", acked / seconds,
                  static_cast<long long>(acked), stats_.ack.Summary().c_str());
      Set("msgs_per_s", Fixed(acked / seconds, 0));
      SetLatency("ack", stats_.ack);
    }
    if (commands) {
      std::printf(
          "  commands: %.0f delivered/s (%lld in window, %lld produced, %lld "
          "sink "
          "failures); delivery latency %s\n",
          received / seconds, static_cast<long long>(received),
          static_cast<long long>(commands_sent), static_cast<long long>(o_.sink->failures()),
          stats_.command.Summary().c_str());
      Set("cmds_per_s", Fixed(received / seconds, 0));
      Set("commands_produced", commands_sent);
      // Commands the sink could not hand over (the broker refused or timed
      // them out): produced, but never on their way.
      Set("command_sink_failures", o_.sink->failures());
      // Delivered within the window, of those produced within it: 100 when
      // the server keeps up (less only by what is in flight at the end).
      Set("commands_in_window", received);
      if (commands_sent > 0) Set("delivered_pct", Fixed(100.0 * received / commands_sent, 1));
      SetLatency("command", stats_.command);
    }
    if (s0 && s1) {
      const double cpu = absl::ToDoubleSeconds(s1->cpu - s0->cpu);
      const int64_t units = acked + received;
      std::printf(
          "  server: cpu %.2f s (%.0f %% of a core)%s; rss %lld KiB\n", cpu, 100 * cpu / seconds,
          units > 0 ? absl::StrFormat(", %.1f us per message", 1e6 * cpu / units).c_str() : "",
          static_cast<long long>(s1->rss_kib));
      Set("server_cpu_pct", Fixed(100 * cpu / seconds, 0));
      if (units > 0) Set("cpu_us_per_msg", Fixed(1e6 * cpu / units, 1));
      Set("rss_end_kib", s1->rss_kib);
    }
    auto cpu_pct = [seconds](const std::optional<ProcessSample>& a,
                             const std::optional<ProcessSample>& b) {
      return Fixed(100 * absl::ToDoubleSeconds(b->cpu - a->cpu) / seconds, 0);
    };
    if (self0 && self1) Set("loadgen_cpu_pct", cpu_pct(self0, self1));
    if (broker0 && broker1) {
      std::printf("  broker: cpu %s %% of a core\n", cpu_pct(broker0, broker1).c_str());
      Set("broker_cpu_pct", cpu_pct(broker0, broker1));
    }
    std::fflush(stdout);
  }

  void Close() {
    for (auto& peer : peers_) peer->Close();
    auto all_done = [&](absl::Duration timeout) {
      const absl::Time deadline = absl::Now() + timeout;
      while (absl::Now() < deadline) {
        if (std::all_of(peers_.begin(), peers_.end(), [](const auto& p) { return p->done(); })) {
          return true;
        }
        absl::SleepFor(absl::Milliseconds(10));
      }
      return false;
    };
    bool clean = all_done(absl::Seconds(15));
    if (!clean) {
      for (auto& peer : peers_) {
        if (!peer->done()) peer->Cancel();
      }
      all_done(absl::Seconds(5));
    }
    int64_t stuck = 0;
    for (auto& peer : peers_) {
      // A reactor gRPC still uses must outlive its call: leak it.
      if (!peer->done()) {
        ++stuck;
        peer.release();
      }
    }
    Set("messages_sent", stats_.messages_sent.load());
    Set("messages_acked", stats_.messages_acked.load());
    Set("keepalives_sent", stats_.keepalives_sent.load());
    Set("keepalives_acked", stats_.keepalives_acked.load());
    Set("commands_received", stats_.commands_received.load());
    Set("commands_repeated", stats_.commands_repeated.load());
    Set("answers_sent", stats_.answers_sent.load());
    Set("answers_acked", stats_.answers_acked.load());
    Set("catalog_pulls", stats_.catalog_pulls.load());
    Set("ended_not_ok", stats_.ended_not_ok.load());
    Set("unexpected_acks", stats_.unexpected_acks.load());
    Set("closed_cleanly", clean ? "yes" : "no");
    Set("stuck", stuck);
    peers_.clear();
  }

  const LoadRunOptions& o_;
  LoadPeerOptions peer_options_;
  std::atomic<bool> sending_{false};
  LoadStats stats_;
  std::vector<std::unique_ptr<LoadPeer>> peers_;
  std::vector<LoadPeer*> admitted_;
  absl::Mutex mu_;
  int connecting_ ABSL_GUARDED_BY(mu_) = 0;
  LoadReport report_;
};

}  // namespace

std::string LoadReport::Result() const {
  std::string line = "RESULT";
  for (const auto& [key, value] : fields) absl::StrAppend(&line, " ", key, "=", value);
  return line;
}

absl::StatusOr<LoadReport> RunLoad(const LoadRunOptions& options) {
  Runner runner(options);
  return runner.Run();
}

}  // namespace edge::loadgen
