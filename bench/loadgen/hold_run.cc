#include "hold_run.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace edge::loadgen {
namespace {

std::atomic<bool> stop_requested{false};

extern "C" void RequestStop(int) { stop_requested.store(true); }

constexpr absl::Duration kTick = absl::Milliseconds(5);
// A scan of every slot touches each peer (~5 ms for 17,000 on a loaded
// machine): at most this often while streams end, once a second otherwise.
constexpr absl::Duration kScanEvery = absl::Milliseconds(100);
// Peers whose stream ended are deleted this long after it: OnDone may still
// be returning when done() first reads true.
constexpr absl::Duration kGraveTime = absl::Seconds(1);

int64_t UnixMillis() { return UnixNanos() / 1000000; }

// Paces a loop at kTick: sleeps until `tick` + kTick, or starts the next
// tick now when the loop ran late.
void WaitForNextTick(absl::Time& tick) {
  tick += kTick;
  const absl::Time after = absl::Now();
  if (tick > after) {
    absl::SleepFor(tick - after);
  } else {
    tick = after;
  }
}

class Holder {
 public:
  explicit Holder(const HoldRunOptions& options)
      : o_(options), slots_(options.peers), rng_(std::random_device{}()) {}

  void Run() {
    const absl::Time start = absl::Now();
    const absl::Time end = start + o_.duration;
    std::printf("hold: %d peers over %zu edge(s), concurrency %d, unix_ms=%lld\n", o_.peers,
                o_.targets.size(), o_.ramp_concurrency, static_cast<long long>(UnixMillis()));
    std::fflush(stdout);
    // Keepalives have a thread of their own: reconnecting thousands of
    // peers (after an edge dies) keeps this loop busy for tens of seconds
    // on a loaded machine, and connected peers must not go silent meanwhile
    // (the edge ends a stream after PEER_TIMEOUT_SEC without a message).
    std::thread keepalives([this, start, end] { RunKeepalives(start, end); });
    int next_new = 0;
    int64_t seen_ended = -1;
    bool full = false;
    absl::Time next_status = start;
    absl::Time next_scan = start;
    absl::Time next_full_scan = start;
    absl::Time tick = start;
    while (!stop_requested.load() && absl::Now() < end) {
      const absl::Time now = absl::Now();
      // Ended streams: schedule their peers' reconnection.
      const int64_t ended = stats_.ended.load();
      // Once a second regardless: attempts that hang are cancelled.
      if ((ended != seen_ended && now >= next_scan) || now >= next_full_scan) {
        seen_ended = ended;
        next_scan = now + kScanEvery;
        next_full_scan = now + absl::Seconds(1);
        Scan(now);
      }
      StartDue(now);
      // The ramp: new peers, within the connection bound.
      while (next_new < o_.peers && connecting_.load() < o_.ramp_concurrency) {
        StartPeer(next_new, next_new % o_.targets.size());
        ++next_new;
      }
      // Deleting peers ended a while ago closes their connections.
      while (!graveyard_.empty() && now - graveyard_.front().second > kGraveTime) {
        graveyard_.pop_front();
      }
      const int64_t connected = Connected();
      if (connected == o_.peers && !full) {
        full = true;
        std::printf(
            "hold: full connected=%lld unix_ms=%lld after_s=%.3f "
            "reconnects=%lld\n",
            static_cast<long long>(connected), static_cast<long long>(UnixMillis()),
            absl::ToDoubleSeconds(now - start), static_cast<long long>(reconnects_));
        std::fflush(stdout);
      } else if (connected < o_.peers && full) {
        full = false;
      }
      if (now >= next_status) {
        PrintStatus(connected);
        next_status = now + o_.status_interval;
      }
      WaitForNextTick(tick);
    }
    stop_keepalives_.store(true);
    keepalives.join();
    PrintStatus(Connected());
    Stop();
  }

 private:
  struct Slot {
    std::unique_ptr<LoadPeer> peer;
    size_t target = 0;
    int failures = 0;  // attempts since it was last connected
    bool waiting = false;
    bool cancelled = false;
    // Targets tried since the peer was last connected (bit i: target i).
    uint64_t tried = 0;
    absl::Time started_at;
    absl::Time retry_at;
  };

  // Each connected peer once per interval, spread evenly; reads slots'
  // peers under peers_mu_, which the main loop holds to replace one.
  void RunKeepalives(absl::Time start, absl::Time end) {
    const double rate = o_.peers / absl::ToDoubleSeconds(o_.keepalive_interval);
    int64_t sent = 0;
    size_t next = 0;
    absl::Time tick = start;
    while (!stop_keepalives_.load() && !stop_requested.load() && absl::Now() < end) {
      const int64_t due = static_cast<int64_t>(rate * absl::ToDoubleSeconds(absl::Now() - start));
      {
        absl::MutexLock lock(&peers_mu_);
        for (; sent < due; ++sent) {
          Slot& slot = slots_[next++ % slots_.size()];
          if (slot.peer != nullptr && slot.peer->admitted() && !slot.peer->done()) {
            slot.peer->SendKeepalive();
          }
        }
      }
      WaitForNextTick(tick);
    }
  }

  // Peers connected now: admitted, stream not ended.
  // Read in this order, a race can only under-count: a refused peer counts
  // `refused` before `ended`, an admitted one `admitted` before `ended`.
  int64_t Connected() const {
    const int64_t refused = stats_.refused.load();
    const int64_t admitted = stats_.admitted.load();
    const int64_t ended = stats_.ended.load();
    return admitted - (ended - refused);
  }

  void PrintStatus(int64_t connected) {
    std::vector<std::string> codes;
    for (int c = 0; c < 17; ++c) {
      if (int64_t n = stats_.refused_by_code[c].load(); n > 0) {
        codes.push_back(absl::StrCat(c, ":", n));
      }
    }
    std::printf(
        "hold: status unix_ms=%lld connected=%lld admitted_total=%lld "
        "refused_total=%lld "
        "refused_codes=%s ended_not_ok=%lld reconnects=%lld waiting=%d "
        "connecting=%d\n",
        static_cast<long long>(UnixMillis()), static_cast<long long>(connected),
        static_cast<long long>(stats_.admitted.load()),
        static_cast<long long>(stats_.refused.load()),
        codes.empty() ? "-" : absl::StrJoin(codes, ",").c_str(),
        static_cast<long long>(stats_.ended_not_ok.load()), static_cast<long long>(reconnects_),
        static_cast<int>(waiting_slots_.size()), connecting_.load());
    std::fflush(stdout);
  }

  void StartPeer(int index, size_t target) {
    Slot& slot = slots_[index];
    slot.target = target;
    slot.waiting = false;
    slot.cancelled = false;
    slot.tried |= uint64_t{1} << target;
    slot.started_at = absl::Now();
    grpc::ChannelArguments args;
    // Its own connection: no subchannel shared with any other peer.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("edge.loadgen.connection", index);
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto channel = grpc::CreateCustomChannel(absl::StrCat("ipv4:", o_.targets[target]),
                                             grpc::InsecureChannelCredentials(), args);
    auto peer = std::make_unique<LoadPeer>(absl::StrCat(o_.peer_prefix, "-", index),
                                           std::move(channel), &stats_, &o_.peer);
    LoadPeer* started = peer.get();
    {
      absl::MutexLock lock(&peers_mu_);
      slot.peer = std::move(peer);
    }
    connecting_.fetch_add(1);
    started->Start([this](bool) { connecting_.fetch_sub(1); });
  }

  // Moves ended peers to the graveyard with a reconnection time (into
  // waiting_slots_), and cancels attempts not settled within
  // `connect_timeout` (they then end and are retried).
  void Scan(absl::Time now) {
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& slot = slots_[i];
      if (slot.peer != nullptr && !slot.cancelled && !slot.peer->admitted() && !slot.peer->done() &&
          now - slot.started_at > o_.connect_timeout) {
        slot.cancelled = true;
        slot.peer->Cancel();
      }
      if (slot.peer != nullptr && slot.peer->done()) {
        if (slot.peer->admitted()) {
          slot.failures = 0;
          slot.tried = uint64_t{1} << slot.target;
        }
        absl::Duration bound = o_.backoff_initial;
        for (int f = 0; f < slot.failures && bound < o_.backoff_max; ++f) bound *= 2;
        bound = std::min(bound, o_.backoff_max);
        // A peer that was connected spreads its first attempt over the whole
        // bound (a dead edge's peers do not all come back at once); later
        // attempts wait between half the bound and the bound.
        const double low = slot.failures == 0 ? 0.0 : 0.5;
        slot.retry_at = now + bound * std::uniform_real_distribution<double>(low, 1.0)(rng_);
        ++slot.failures;
        slot.waiting = true;
        waiting_slots_.push_back(static_cast<int>(i));
        absl::MutexLock lock(&peers_mu_);
        graveyard_.emplace_back(std::move(slot.peer), now);
      }
    }
  }

  // Starts the reconnections that are due, within the connection bound.
  void StartDue(absl::Time now) {
    for (size_t w = 0; w < waiting_slots_.size() && connecting_.load() < o_.ramp_concurrency;) {
      const int index = waiting_slots_[w];
      Slot& slot = slots_[index];
      if (slot.retry_at > now) {
        ++w;
        continue;
      }
      waiting_slots_[w] = waiting_slots_.back();
      waiting_slots_.pop_back();
      ++reconnects_;
      StartPeer(index, NextTarget(slot));
    }
  }

  // A target at random among those this peer has not tried since it was
  // last connected (a peer with a list of edges tries each before coming
  // back to one, so a dead edge is not retried early); when it has tried
  // them all, any but the last one.
  size_t NextTarget(Slot& slot) {
    const size_t n = o_.targets.size();
    if (n == 1) return 0;
    const uint64_t all = n == 64 ? ~uint64_t{0} : (uint64_t{1} << n) - 1;
    if ((slot.tried & all) == all) slot.tried = uint64_t{1} << slot.target;
    std::vector<size_t> candidates;
    for (size_t t = 0; t < n; ++t) {
      if ((slot.tried & (uint64_t{1} << t)) == 0) candidates.push_back(t);
    }
    return candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng_)];
  }

  // Cancels every stream and waits, bounded, for them to end. A peer gRPC
  // still uses when the wait runs out is leaked, not deleted.
  void Stop() {
    for (Slot& slot : slots_) {
      if (slot.peer != nullptr) slot.peer->Cancel();
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    auto all_done = [&] {
      return std::all_of(slots_.begin(), slots_.end(),
                         [](const Slot& s) { return s.peer == nullptr || s.peer->done(); });
    };
    while (!all_done() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
    absl::SleepFor(absl::Milliseconds(100));  // the last OnDone returns
    int64_t stuck = 0;
    for (Slot& slot : slots_) {
      if (slot.peer != nullptr && !slot.peer->done()) {
        ++stuck;
        slot.peer.release();
      }
    }
    std::printf("hold: stopped, %lld stream(s) did not end in time\n",
                static_cast<long long>(stuck));
    std::fflush(stdout);
  }

  const HoldRunOptions& o_;
  LoadStats stats_;
  // Written by the main loop only; slot.peer is replaced under peers_mu_,
  // which the keepalive thread holds to read it.
  std::vector<Slot> slots_;
  absl::Mutex peers_mu_;
  std::atomic<bool> stop_keepalives_{false};
  std::deque<std::pair<std::unique_ptr<LoadPeer>, absl::Time>> graveyard_;
  std::atomic<int> connecting_{0};
  // Slots waiting to reconnect (slot.waiting), in no order.
  std::vector<int> waiting_slots_;
  int64_t reconnects_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace

absl::Status RunHold(const HoldRunOptions& options) {
  if (options.targets.empty() || options.targets.size() > 64) {
    return absl::InvalidArgumentError("targets: 1 to 64");
  }
  if (options.peers <= 0) return absl::InvalidArgumentError("peers: at least one");
  if (options.ramp_concurrency <= 0) {
    return absl::InvalidArgumentError("ramp_concurrency: at least one");
  }
  if (options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial) {
    return absl::InvalidArgumentError(
        "reconnect backoff: initial must be positive and at most the maximum");
  }
  if (options.keepalive_interval <= absl::ZeroDuration() ||
      options.status_interval <= absl::ZeroDuration() ||
      options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "keepalive and status intervals and the connect timeout must be "
        "positive");
  }
  for (const std::string& target : options.targets) {
    if (target.rfind(':') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("target \"", target, "\": not host:port"));
    }
  }
  std::signal(SIGTERM, RequestStop);
  std::signal(SIGINT, RequestStop);
  Holder holder(options);
  holder.Run();
  return absl::OkStatus();
}

}  // namespace edge::loadgen
