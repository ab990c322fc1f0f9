// edge_echo_server: the raw limit beside the edge. A bare gRPC callback
// server of the same PeerEdgeService: it admits every AsyncOperations stream,
// acknowledges every PeerMessage that has a request_id with
// EdgeMessage{request_id}, and does nothing else (WebRTCOperations is
// UNIMPLEMENTED). Its connection, keepalive and message-size settings are
// GrpcPeerTransport's, so the edge's figures divided by its figures show what
// the edge itself costs.
//
// With --ack_from_thread each acknowledgement is started from a thread of
// the server's own once the read's reaction has returned, as the edge starts
// its acknowledgements once their publish is confirmed: what that hand-off
// costs a bare server (docs/performance.md). At exit it prints how many it
// started, and how many found their stream ended.
//
// With --push it is also the bare equivalent of the edge's command path: it
// reads the load generator's command feed (the one edge_bench_edge reads,
// command_feed.h) and writes each command, on the feed's thread, to the
// stream of the peer it names (the `peer_id` metadata) as the EdgeMessage the
// edge would push: the same request_id, edge_id and payload. One write in
// flight per stream, the rest queued (at most --push_queue_max per stream, as
// the edge's PEER_SEND_QUEUE_MAX). It does not validate the command: it finds
// "request_id", "type", "catalog_id" and "hash_types" by plain string search
// (strings without escapes) and pushes only file_hash, the load generator's
// command; anything else is counted as unsupported.
//
//   edge_echo_server --port=0 --max_seconds=600 [--push --feed_port=0]
// prints "edge_echo_server listening port=<port> [feed=<feed> ]pid=<pid>",
// then serves until SIGTERM/SIGINT or --max_seconds, and prints a stats line.
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "command_feed.h"
#include "edge/descriptors.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "proc_stats.h"

ABSL_FLAG(std::string, address, "0.0.0.0", "address to listen on");
ABSL_FLAG(int, port, 0, "port to listen on (0: any free port)");
ABSL_FLAG(std::string, edge_id, "echo", "edge_id of the acknowledgements");
ABSL_FLAG(int, max_seconds, 600, "exit after this long at most");
ABSL_FLAG(int, tcp_read_chunk, 0, "GRPC_ARG_TCP_READ_CHUNK_SIZE (0: gRPC's default)");
ABSL_FLAG(int, tcp_min_read_chunk, 0, "GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE (0: gRPC's default)");
ABSL_FLAG(int, bdp_probe, -1, "GRPC_ARG_HTTP2_BDP_PROBE (-1: gRPC's default)");
ABSL_FLAG(int64_t, resource_quota_mib, 0, "a gRPC resource quota of this size (0: none)");
ABSL_FLAG(bool, push, false, "push the commands of a feed (command_feed.h) to the peers' streams");
ABSL_FLAG(int, feed_port, 0, "with --push: command feed port on 127.0.0.1 (0: any free port)");
ABSL_FLAG(bool, ack_from_thread, false,
          "start each acknowledgement from a thread of this server's own instead of inside "
          "the read's reaction");
ABSL_FLAG(int, push_queue_max, 1024, "with --push: commands queued per stream, at most");

namespace {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::PeerMessage;

class PushRegistry;

// What the push mode did, printed at exit.
struct PushStats {
  std::atomic<int64_t> pushed{0};        // written or queued on a stream
  std::atomic<int64_t> unknown_peer{0};  // no stream with that peer_id
  std::atomic<int64_t> queue_full{0};    // the stream had push_queue_max queued
  std::atomic<int64_t> ended{0};         // the stream was ending
  std::atomic<int64_t> unsupported{0};   // not a file_hash with a request_id
};

class AckThread;

class EchoReactor final : public grpc::ServerBidiReactor<PeerMessage, EdgeMessage> {
 public:
  // `registry` is null without --push; otherwise the stream is listed
  // under `peer_id` (if not empty) until it is done. `acks` is null unless
  // --ack_from_thread.
  EchoReactor(const std::string* edge_id, PushRegistry* registry, AckThread* acks,
              std::string peer_id);

  // Starts writing `message`, or queues it behind the write in flight (at
  // most `queue_max` queued). Called from the feed's thread; what it does is
  // counted in `stats`.
  void Push(EdgeMessage message, size_t queue_max, PushStats* stats);

  // gRPC holds one reference until OnDone, PushRegistry::Find hands out
  // others: the reactor is deleted when the last one is dropped.
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        reading_done_ = true;
        finish = !writing_;
        finished_ |= finish;
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    bool write = false;
    if (!in_.request_id().empty()) {
      EdgeMessage ack;
      ack.set_request_id(in_.request_id());
      ack.set_edge_id(*edge_id_);
      if (acks_ != nullptr) {
        HandOff(std::move(ack));
      } else {
        absl::MutexLock lock(&mu_);
        if (writing_) {
          queue_.push_back(std::move(ack));
        } else {
          writing_ = true;
          out_ = std::move(ack);
          write = true;
        }
      }
    }
    if (write) StartWrite(&out_);
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool write = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        // The call is over: nothing more can be written.
        broken_ = true;
        queue_.clear();
      }
      if (ok && !queue_.empty()) {
        out_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        write = true;
      } else if (reading_done_ && !finished_) {
        finished_ = finish = true;
      }
    }
    if (write) StartWrite(&out_);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override;

 private:
  ~EchoReactor() override = default;

  // --ack_from_thread: `ack` to the AckThread.
  void HandOff(EdgeMessage ack);

  const std::string* const edge_id_;
  PushRegistry* const registry_;
  AckThread* const acks_;
  const std::string peer_id_;
  std::atomic<int> refs_{1};  // gRPC's, until OnDone
  PeerMessage in_;
  EdgeMessage out_;
  absl::Mutex mu_;
  std::deque<EdgeMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

// Push mode: the open streams by peer_id (the last stream opened for an id
// wins, as nothing here refuses a duplicate).
class PushRegistry {
 public:
  void Add(const std::string& peer_id, EchoReactor* stream) {
    absl::MutexLock lock(&mu_);
    streams_[peer_id] = stream;
  }
  void Remove(const std::string& peer_id, EchoReactor* stream) {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(peer_id);
    if (it != streams_.end() && it->second == stream) streams_.erase(it);
  }
  // The stream of `peer_id` with a reference the caller drops (Unref), or
  // null.
  EchoReactor* Find(absl::string_view peer_id) {
    absl::MutexLock lock(&mu_);
    auto it = streams_.find(peer_id);
    if (it == streams_.end()) return nullptr;
    it->second->Ref();
    return it->second;
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, EchoReactor*> streams_ ABSL_GUARDED_BY(mu_);
};

// --ack_from_thread: acknowledgements started from this thread, each after
// the reaction that read its message has returned.
class AckThread {
 public:
  AckThread() : thread_([this] { Loop(); }) {}
  AckThread(const AckThread&) = delete;
  AckThread& operator=(const AckThread&) = delete;
  // Starts or queues what was added before.
  ~AckThread() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Holds a reference to `stream` until the ack is started or queued.
  void Add(EchoReactor* stream, EdgeMessage ack) {
    stream->Ref();
    absl::MutexLock lock(&mu_);
    pending_.emplace_back(stream, std::move(ack));
  }

  // Once what was added before is started or queued: what Push did.
  const PushStats& Drain() {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_.empty() && !busy_; };
    mu_.Await(absl::Condition(&idle));
    return stats_;
  }

 private:
  void Loop() {
    std::vector<std::pair<EchoReactor*, EdgeMessage>> batch;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !pending_.empty(); };
        mu_.Await(absl::Condition(&ready));
        if (pending_.empty()) return;  // stopping, nothing left
        batch.swap(pending_);
        busy_ = true;
      }
      for (auto& [stream, ack] : batch) {
        stream->Push(std::move(ack), std::numeric_limits<size_t>::max(), &stats_);
        stream->Unref();
      }
      batch.clear();
      absl::MutexLock lock(&mu_);
      busy_ = false;
    }
  }

  absl::Mutex mu_;
  std::vector<std::pair<EchoReactor*, EdgeMessage>> pending_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a batch taken, not yet all pushed
  PushStats stats_;                         // what Push did
  std::thread thread_;                      // last: it starts once the rest is built
};

EchoReactor::EchoReactor(const std::string* edge_id, PushRegistry* registry, AckThread* acks,
                         std::string peer_id)
    : edge_id_(edge_id), registry_(registry), acks_(acks), peer_id_(std::move(peer_id)) {
  if (registry_ != nullptr && !peer_id_.empty()) registry_->Add(peer_id_, this);
  StartRead(&in_);
}

void EchoReactor::HandOff(EdgeMessage ack) { acks_->Add(this, std::move(ack)); }

void EchoReactor::Push(EdgeMessage message, size_t queue_max, PushStats* stats) {
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || broken_) {
      stats->ended.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (writing_) {
      if (queue_.size() >= queue_max) {
        stats->queue_full.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.push_back(std::move(message));
      stats->pushed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    writing_ = true;
    out_ = std::move(message);
  }
  stats->pushed.fetch_add(1, std::memory_order_relaxed);
  StartWrite(&out_);
}

void EchoReactor::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    broken_ = true;  // A Push holding a reference writes nothing now.
  }
  if (registry_ != nullptr && !peer_id_.empty()) registry_->Remove(peer_id_, this);
  Unref();
}

// The value of the string member `key` of `json`, found by plain search: no
// validation, no escapes (a bare server's decoding). Empty if absent.
absl::string_view StringMember(absl::string_view json, absl::string_view key) {
  const std::string quoted = absl::StrCat("\"", key, "\"");
  size_t at = json.find(quoted);
  if (at == absl::string_view::npos) return {};
  at = json.find_first_not_of(" \t\r\n:", at + quoted.size());
  if (at == absl::string_view::npos || json[at] != '"') return {};
  const size_t end = json.find('"', at + 1);
  if (end == absl::string_view::npos) return {};
  return json.substr(at + 1, end - at - 1);
}

// The strings of the array member `key`, found the same way.
void StringArrayMember(absl::string_view json, absl::string_view key,
                       google::protobuf::RepeatedPtrField<std::string>* out) {
  const std::string quoted = absl::StrCat("\"", key, "\"");
  size_t at = json.find(quoted);
  if (at == absl::string_view::npos) return;
  at = json.find_first_not_of(" \t\r\n:", at + quoted.size());
  if (at == absl::string_view::npos || json[at] != '[') return;
  const size_t end = json.find(']', at);
  if (end == absl::string_view::npos) return;
  for (size_t open; (open = json.find('"', at)) < end;) {
    const size_t close = json.find('"', open + 1);
    if (close == absl::string_view::npos || close > end) return;
    out->Add(std::string(json.substr(open + 1, close - open - 1)));
    at = close + 1;
  }
}

// Says once per kind what was not pushed (the stats line counts them all).
void ReportFirst(std::atomic<bool>* reported, const std::string& what) {
  if (reported->exchange(true, std::memory_order_relaxed)) return;
  std::fprintf(stderr, "edge_echo_server: push: %s (reported once; counted in the stats line)\n",
               what.c_str());
}

// The feed's callback in push mode.
class Pusher {
 public:
  Pusher(const std::string* edge_id, PushRegistry* registry, size_t queue_max)
      : edge_id_(edge_id), registry_(registry), queue_max_(queue_max) {}

  void OnCommand(absl::string_view peer_id, absl::string_view json) {
    const absl::string_view request_id = StringMember(json, "request_id");
    if (request_id.empty() || StringMember(json, "type") != "file_hash") {
      stats_.unsupported.fetch_add(1, std::memory_order_relaxed);
      ReportFirst(
          &reported_unsupported_,
          absl::StrCat("not a file_hash with a request_id, not pushed: ", json.substr(0, 200)));
      return;
    }
    EdgeMessage message;
    message.set_request_id(std::string(request_id));
    message.set_edge_id(*edge_id_);
    auto* request = message.mutable_file_hash_request();
    request->set_catalog_id(std::string(StringMember(json, "catalog_id")));
    StringArrayMember(json, "hash_types", request->mutable_hash_types());
    EchoReactor* stream = registry_->Find(peer_id);
    if (stream == nullptr) {
      stats_.unknown_peer.fetch_add(1, std::memory_order_relaxed);
      ReportFirst(&reported_unknown_peer_,
                  absl::StrCat("no stream for peer \"", peer_id.substr(0, 200), "\""));
      return;
    }
    stream->Push(std::move(message), queue_max_, &stats_);
    stream->Unref();
  }

  const PushStats& stats() const { return stats_; }

 private:
  const std::string* const edge_id_;
  PushRegistry* const registry_;
  const size_t queue_max_;
  PushStats stats_;
  std::atomic<bool> reported_unsupported_{false};
  std::atomic<bool> reported_unknown_peer_{false};
};

class EchoService final : public giggityflix_grpc_peer::PeerEdgeService::CallbackService {
 public:
  // `registry`: null unless pushing; `acks`: null unless --ack_from_thread.
  EchoService(std::string edge_id, PushRegistry* registry, AckThread* acks)
      : edge_id_(std::move(edge_id)), registry_(registry), acks_(acks) {}
  grpc::ServerBidiReactor<PeerMessage, EdgeMessage>* AsyncOperations(
      grpc::CallbackServerContext* context) override {
    std::string peer_id;
    if (registry_ != nullptr) {
      auto it = context->client_metadata().find("peer_id");
      if (it != context->client_metadata().end()) {
        peer_id.assign(it->second.data(), it->second.size());
      }
    }
    return new EchoReactor(&edge_id_, registry_, acks_, std::move(peer_id));
  }
  const std::string& edge_id() const { return edge_id_; }

 private:
  const std::string edge_id_;
  PushRegistry* const registry_;
  AckThread* const acks_;
};

int Main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  if (absl::StatusOr<int64_t> limit = edge::DescriptorBudget::RaiseLimit(); !limit.ok()) {
    std::fprintf(stderr, "edge_echo_server: %s\n", limit.status().ToString().c_str());
    return 1;
  }

  const bool push = absl::GetFlag(FLAGS_push);
  const int push_queue_max = absl::GetFlag(FLAGS_push_queue_max);
  if (push && push_queue_max < 1) {
    std::fprintf(stderr, "edge_echo_server: --push_queue_max must be at least 1\n");
    return 2;
  }
  PushRegistry registry;
  // Before the server: it outlives every stream's reactions.
  std::unique_ptr<AckThread> acks;
  if (absl::GetFlag(FLAGS_ack_from_thread)) acks = std::make_unique<AckThread>();
  EchoService service(absl::GetFlag(FLAGS_edge_id), push ? &registry : nullptr, acks.get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(
      absl::StrCat(absl::GetFlag(FLAGS_address), ":", absl::GetFlag(FLAGS_port)),
      grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  // GrpcPeerTransport's settings (edged's defaults).
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  builder.SetMaxSendMessageSize(4 * 1024 * 1024);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // Experiments with gRPC's buffer settings (docs/performance.md).
  if (int v = absl::GetFlag(FLAGS_tcp_read_chunk); v > 0) {
    builder.AddChannelArgument(GRPC_ARG_TCP_READ_CHUNK_SIZE, v);
  }
  if (int v = absl::GetFlag(FLAGS_tcp_min_read_chunk); v > 0) {
    builder.AddChannelArgument(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, v);
  }
  if (int v = absl::GetFlag(FLAGS_bdp_probe); v >= 0) {
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, v);
  }
  grpc::ResourceQuota quota("edge_echo_server");
  if (int64_t mib = absl::GetFlag(FLAGS_resource_quota_mib); mib > 0) {
    quota.Resize(static_cast<size_t>(mib) << 20);
    builder.SetResourceQuota(quota);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "edge_echo_server: cannot listen\n");
    return 1;
  }
  // Declared after the server: it stops (joining its threads) first.
  Pusher pusher(&service.edge_id(), &registry, static_cast<size_t>(push_queue_max));
  std::unique_ptr<edge::loadgen::CommandFeed> feed;
  std::string feed_field;
  if (push) {
    feed = std::make_unique<edge::loadgen::CommandFeed>(
        [&pusher](absl::string_view peer_id, absl::string_view json) {
          pusher.OnCommand(peer_id, json);
        });
    const int feed_port = feed->Start(absl::GetFlag(FLAGS_feed_port));
    if (feed_port < 0) {
      std::fprintf(stderr, "edge_echo_server: cannot listen for the command feed\n");
      feed.reset();
      server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
      return 1;
    }
    feed_field = absl::StrCat("feed=", feed_port, " ");
  }
  std::printf("edge_echo_server listening port=%d %spid=%d\n", port, feed_field.c_str(),
              static_cast<int>(getpid()));
  std::fflush(stdout);
  struct timespec timeout = {absl::GetFlag(FLAGS_max_seconds), 0};
  sigtimedwait(&signals, nullptr, &timeout);
  if (feed != nullptr) feed->Stop();  // No push after this.
  const int64_t malformed = feed != nullptr ? feed->malformed() : 0;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (push) {
    const PushStats& s = pusher.stats();
    std::printf(
        "edge_echo_server stats pushed=%lld unknown_peer=%lld queue_full=%lld ended=%lld "
        "unsupported=%lld malformed=%lld\n",
        static_cast<long long>(s.pushed.load()), static_cast<long long>(s.unknown_peer.load()),
        static_cast<long long>(s.queue_full.load()), static_cast<long long>(s.ended.load()),
        static_cast<long long>(s.unsupported.load()), static_cast<long long>(malformed));
    std::fflush(stdout);
  }
  if (acks != nullptr) {
    // Every stream has ended: what the ack thread still holds goes nowhere.
    const PushStats& s = acks->Drain();
    std::printf("edge_echo_server ack_thread started=%lld ended=%lld\n",
                static_cast<long long>(s.pushed.load()), static_cast<long long>(s.ended.load()));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
