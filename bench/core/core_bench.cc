// Microbenchmarks of the core (edge::core) with the in-process fakes.
//
//   core_bench --benchmark_filter=Route
//
// The synchronous ones drive EdgeImpl directly with a stream whose writes
// complete at once and a FakeMessageBus in manual mode, so they count the
// core's own work on one thread; the *_Fakes ones go through
// FakePeerTransport's and FakeMessageBus's threads, as the tests do.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/command_decoder.h"
#include "core/edge_impl.h"
#include "core/events.h"
#include "edge/edge.h"
#include "edge/ids.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_peer_transport.h"

namespace edge {
namespace {

using giggityflix_grpc_peer::CatalogAnnouncementResponse;
using giggityflix_grpc_peer::FileHashResponse;

constexpr char kFileHashCommand[] =
    R"({"type":"file_hash","peer_id":"peer-000123","request_id":"c1700000000000000000.42",)"
    R"("catalog_id":"catalog-1","hash_types":["sha256","md5"]})";
constexpr char kWebRtcCommand[] =
    R"({"type":"webrtc","peer_id":"peer-000123","request_id":"r-1","webrtc":{"requestId":"r-1",)"
    R"("iceCandidate":{"sessionId":"s-1","candidate":"candidate:1 1 UDP 2122252543 192.168.1.2 )"
    R"(49203 typ host","sdpMid":"0","sdpMLineIndex":0}}})";

EdgeOptions BenchOptions() {
  EdgeOptions o;
  o.edge_id = "bench";
  o.topics.commands = "edge-commands-bench";
  o.topics.deadletter = "edge-commands-bench.deadletter";
  o.max_peers = 1000000;
  o.peer_max_messages_per_sec = 0;
  return o;
}

// --- decoding and encoding ---

void BM_DecodeCommand_FileHash(benchmark::State& state) {
  for (auto _ : state) {
    DecodeResult r = DecodeCommand(kFileHashCommand, 4 << 20);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeCommand_FileHash);

void BM_DecodeCommand_WebRtc(benchmark::State& state) {
  for (auto _ : state) {
    DecodeResult r = DecodeCommand(kWebRtcCommand, 4 << 20);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeCommand_WebRtc);

// A hostile value: arg bytes of `[` then `]` inside an ignored field of a
// valid command. Refused (invalid_json) by the nesting check; the figure is
// bytes/s, to compare with the legitimate command of the same size below.
void BM_DecodeCommand_DeeplyNested(benchmark::State& state) {
  const size_t levels = static_cast<size_t>(state.range(0)) / 2;
  std::string value = R"({"type":"catalog_announcement","peer_id":"p","extra":)";
  value.append(levels, '[');
  value.append(levels, ']');
  value += "}";
  for (auto _ : state) {
    DecodeResult r = DecodeCommand(value, 4 << 20);
    if (r.ok()) state.SkipWithError("a deeply nested value was accepted");
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}
BENCHMARK(BM_DecodeCommand_DeeplyNested)->Arg(80 << 10)->Arg(1 << 20);

// A legitimate file_delete of about arg bytes (catalog ids of 32 bytes).
void BM_DecodeCommand_LargeFileDelete(benchmark::State& state) {
  std::string value = R"({"type":"file_delete","peer_id":"p","catalog_ids":[)";
  while (value.size() < static_cast<size_t>(state.range(0))) {
    absl::StrAppend(&value, value.back() == '[' ? "" : ",", "\"", std::string(30, 'c'), "\"");
  }
  value += "]}";
  for (auto _ : state) {
    DecodeResult r = DecodeCommand(value, 4 << 20);
    if (!r.ok()) state.SkipWithError(r.error->detail.c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * value.size()));
}
BENCHMARK(BM_DecodeCommand_LargeFileDelete)->Arg(80 << 10)->Arg(1 << 20);

void BM_Event_FileHash(benchmark::State& state) {
  FileHashResponse m;
  m.set_catalog_id("catalog-1");
  (*m.mutable_hashes())["sha256"] =
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  m.set_success(true);
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    std::string json = FileHashEvent({"peer-000123", "bench", now}, "m1700000000000000000.7", m);
    benchmark::DoNotOptimize(json);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Event_FileHash);

void BM_Event_Connected(benchmark::State& state) {
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    std::string json = ConnectedEvent({"peer-000123", "bench", now}, now, std::nullopt);
    benchmark::DoNotOptimize(json);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Event_Connected);

void BM_Event_CatalogUpdate(benchmark::State& state) {
  CatalogAnnouncementResponse m;
  for (int i = 0; i < state.range(0); ++i) m.add_catalog_ids(absl::StrCat("movie-", i));
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    std::string json = CatalogUpdateEvent({"peer-000123", "bench", now}, "r-1", m);
    benchmark::DoNotOptimize(json);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Event_CatalogUpdate)->Arg(3)->Arg(100);

void BM_NewRequestId(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(NewRequestId());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NewRequestId);

// --- the core driven synchronously ---

// A transport that accepts nothing by itself: the benchmark opens streams.
class NullTransport final : public PeerTransport {
 public:
  absl::Status Start(PeerStreamHandler* handler) override { return absl::OkStatus(); }
  void Shutdown() override {}
};

// A stream whose writes complete at once, on the writing thread.
class InstantStream final : public PeerStream {
 public:
  explicit InstantStream(std::string peer_id) {
    info_.has_peer_id = true;
    info_.peer_id = std::move(peer_id);
  }
  const PeerCallInfo& info() const override { return info_; }
  bool ended() const override { return false; }
  void Write(EdgeMessage message, absl::AnyInvocable<void(bool ok)> done) override {
    ++writes;
    done(true);
  }
  void Finish(absl::Status status) override {}
  void ResumeReading() override {}
  int64_t writes = 0;

 private:
  PeerCallInfo info_;
};

// An EdgeImpl on fakes, with `peers` admitted streams.
class SyncEdge {
 public:
  explicit SyncEdge(int peers, bool catalog_pull = false) {
    testing::FakeMessageBusOptions bus_options;
    bus_options.mode = testing::DeliveryMode::kManual;
    bus_options.capacity = 1 << 30;
    bus_ = std::make_unique<testing::FakeMessageBus>(bus_options);
    EdgeOptions options = BenchOptions();
    options.catalog_pull_on_connect = catalog_pull;
    auto edge = Edge::Create(options, {&transport_, bus_.get(), &tracker_, clock_.get(), nullptr});
    edge_ = *std::move(edge);
    impl_ = static_cast<EdgeImpl*>(edge_.get());
    (void)edge_->Start();
    for (int i = 0; i < peers; ++i) Admit(absl::StrCat("peer-", i));
    bus_->DeliverPending();
  }
  ~SyncEdge() { edge_->Shutdown(absl::Now() + absl::Seconds(5)); }

  std::shared_ptr<PeerStreamObserver> Admit(std::string peer_id) {
    auto stream = std::make_shared<InstantStream>(std::move(peer_id));
    std::shared_ptr<PeerStreamObserver> observer;
    impl_->OnStreamStart(stream, [&observer](auto decision) {
      if (decision.ok()) observer = *std::move(decision);
    });
    streams_.push_back(stream);
    return observer;
  }

  EdgeImpl* impl() { return impl_; }
  testing::FakeMessageBus* bus() { return bus_.get(); }

 private:
  std::unique_ptr<Clock> clock_ = NewRealClock();
  NullTransport transport_;
  LocalTracker tracker_{"bench"};
  std::unique_ptr<testing::FakeMessageBus> bus_;
  std::unique_ptr<Edge> edge_;
  EdgeImpl* impl_ = nullptr;
  std::vector<std::shared_ptr<InstantStream>> streams_;
};

// Admission (checks, registry insert, tracker claim, `connected`, catalog
// pull) and the end of the stream (`disconnected`, release, registry erase),
// with `range(0)` other peers registered.
void BM_AdmitAndEnd(benchmark::State& state) {
  SyncEdge edge(static_cast<int>(state.range(0)), /*catalog_pull=*/true);
  int64_t i = 0;
  for (auto _ : state) {
    auto observer = edge.Admit(absl::StrCat("new-", i++));
    observer->OnEnd(absl::OkStatus());
    if (i % 1024 == 0) edge.bus()->DeliverPending();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdmitAndEnd)->Arg(0)->Arg(10000);

// A decoded command handed to a peer: registry lookup, send queue, write,
// outcome.
void BM_SendToPeer(benchmark::State& state) {
  const int peers = static_cast<int>(state.range(0));
  SyncEdge edge(peers);
  std::vector<std::string> ids;
  for (int i = 0; i < peers; ++i) ids.push_back(absl::StrCat("peer-", i));
  EdgeMessage message;
  message.set_request_id("c1700000000000000000.42");
  message.set_edge_id("bench");
  message.mutable_file_hash_request()->set_catalog_id("catalog-1");
  int64_t delivered = 0, n = 0;
  for (auto _ : state) {
    edge.impl()->SendToPeer(ids[n++ % peers], message, IncomingRecord{},
                            [&delivered] { ++delivered; });
  }
  if (delivered != n) state.SkipWithError("a command was not delivered");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SendToPeer)->Arg(1000)->Arg(20000);

// A peer message turned into its event, published, and acknowledged.
void BM_PeerMessageToAck(benchmark::State& state) {
  SyncEdge edge(0);
  auto observer = edge.Admit("peer-1");
  PeerMessage message;
  message.set_request_id("m1700000000000000000.7");
  auto* response = message.mutable_file_hash_response();
  response->set_catalog_id("catalog-1");
  (*response->mutable_hashes())["sha256"] =
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  response->set_success(true);
  int64_t i = 0;
  for (auto _ : state) {
    observer->OnMessage(message);
    if (++i % 64 == 0) edge.bus()->DeliverPending();  // Stores; the acks go out.
  }
  edge.bus()->DeliverPending();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PeerMessageToAck);

// --- through the fakes' threads ---

// Commands produced to the bus, routed by the core to `range(0)` peers of a
// FakePeerTransport, 1000 per iteration; each iteration waits for all of
// them to be written.
void BM_RouteCommands_Fakes(benchmark::State& state) {
  const int peers = static_cast<int>(state.range(0));
  std::unique_ptr<Clock> clock = NewRealClock();
  testing::FakePeerTransport transport;
  testing::FakeMessageBusOptions bus_options;
  bus_options.capacity = 1 << 30;
  testing::FakeMessageBus bus(bus_options);
  LocalTracker tracker("bench");
  EdgeOptions options = BenchOptions();
  options.catalog_pull_on_connect = false;
  auto edge = *Edge::Create(options, {&transport, &bus, &tracker, clock.get(), nullptr});
  (void)edge->Start();
  std::vector<std::shared_ptr<testing::FakePeerTransport::Peer>> connected;
  std::vector<std::string> values;
  for (int i = 0; i < peers; ++i) {
    connected.push_back(transport.Connect(absl::StrCat("peer-", i)));
    values.push_back(
        absl::StrCat(R"({"type":"file_hash","peer_id":"peer-)", i,
                     R"(","request_id":"r-1","catalog_id":"c","hash_types":["sha256"]})"));
  }
  for (auto& peer : connected) peer->WaitForAdmission();
  constexpr int kBatch = 1000;
  int64_t target = 0, n = 0;
  for (auto _ : state) {
    for (int k = 0; k < kBatch; ++k, ++n) {
      const int p = static_cast<int>(n % peers);
      (void)bus.Produce(options.topics.commands, absl::StrCat("peer-", p), values[p]);
    }
    target += kBatch;
    while (edge->stats().commands_delivered < target) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  edge->Shutdown(absl::Now() + absl::Seconds(5));
}
BENCHMARK(BM_RouteCommands_Fakes)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);

// Peer messages sent by `range(0)` FakePeerTransport peers, published and
// acknowledged, 1000 per iteration.
void BM_RouteMessages_Fakes(benchmark::State& state) {
  const int peers = static_cast<int>(state.range(0));
  std::unique_ptr<Clock> clock = NewRealClock();
  testing::FakePeerTransport transport;
  testing::FakeMessageBusOptions bus_options;
  bus_options.capacity = 1 << 30;
  testing::FakeMessageBus bus(bus_options);
  LocalTracker tracker("bench");
  EdgeOptions options = BenchOptions();
  options.catalog_pull_on_connect = false;
  auto edge = *Edge::Create(options, {&transport, &bus, &tracker, clock.get(), nullptr});
  (void)edge->Start();
  std::vector<std::shared_ptr<testing::FakePeerTransport::Peer>> connected;
  for (int i = 0; i < peers; ++i) connected.push_back(transport.Connect(absl::StrCat("peer-", i)));
  for (auto& peer : connected) peer->WaitForAdmission();
  PeerMessage message;
  message.set_request_id("m-1");
  message.mutable_file_hash_response()->set_catalog_id("catalog-1");
  constexpr int kBatch = 1000;
  int64_t target = 0, n = 0;
  for (auto _ : state) {
    for (int k = 0; k < kBatch; ++k) connected[n++ % peers]->Send(message);
    target += kBatch;
    while (edge->stats().events_published < target) std::this_thread::yield();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  edge->Shutdown(absl::Now() + absl::Seconds(5));
}
BENCHMARK(BM_RouteMessages_Fakes)->Arg(1000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace edge

int main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
