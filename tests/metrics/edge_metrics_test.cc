// An Edge on the fakes reporting to PrometheusMetrics, scraped over HTTP:
// the figures of a scripted scenario, readiness and drain through the
// endpoint, and the drain rate on a real clock.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/edge_fixture.h"
#include "edge/clock.h"
#include "edge/metrics/metrics_server.h"
#include "edge/metrics/prometheus_metrics.h"
#include "support/http_client.h"

namespace edge {
namespace {

constexpr char kAdminToken[] = "edge-metrics-admin-token";

using testing::HttpRequest;
using testing::SampleValue;
using testing::WaitFor;

constexpr char kLifecycle[] = "peer-lifecycle-events";
constexpr char kHashes[] = "file-hash-responses";
constexpr char kCommands[] = "edge-commands-edge-1";
constexpr char kDeadLetters[] = "edge-commands-edge-1.deadletter";

PeerMessage Keepalive(const std::string& request_id) {
  PeerMessage m;
  m.set_request_id(request_id);
  m.mutable_catalog_announcement();
  return m;
}

PeerMessage HashResponse(const std::string& request_id) {
  PeerMessage m;
  m.set_request_id(request_id);
  auto* hash = m.mutable_file_hash_response();
  hash->set_catalog_id("c1");
  (*hash->mutable_hashes())["sha256"] = "abc";
  hash->set_success(true);
  return m;
}

// The edge on the fakes with its bus and tracker instrumented, as edged
// wires it, and the metrics endpoint in front of it.
class EdgeMetricsTest : public ::testing::Test {
 protected:
  void StartEdge(EdgeOptions options, Clock* clock) {
    auto metrics = metrics::PrometheusMetrics::Create();
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = std::move(*metrics);
    clock_ = clock;
    bus_ = std::make_unique<testing::FakeMessageBus>();
    instrumented_bus_ = InstrumentBus(bus_.get(), metrics_.get(), clock);
    instrumented_tracker_ = InstrumentTracker(&tracker_, metrics_.get(), clock);
    auto edge = Edge::Create(
        std::move(options), EdgeParts{&transport_, instrumented_bus_.get(),
                                      instrumented_tracker_.get(), clock, nullptr, metrics_.get()});
    ASSERT_TRUE(edge.ok()) << edge.status();
    edge_ = std::move(*edge);
    ASSERT_TRUE(edge_->Start().ok());

    metrics::MetricsServerOptions http;
    http.address = "127.0.0.1:0";
    http.metrics = metrics_->registry();
    http.ready = [this]() -> absl::Status {
      if (edge_->draining()) return absl::UnavailableError("draining");
      if (!edge_->Ready()) return absl::UnavailableError("event buffer full");
      return absl::OkStatus();
    };
    http.drain = [this] { edge_->Drain(); };
    http.admin_token = kAdminToken;
    auto server = metrics::MetricsServer::Create(std::move(http));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    if (edge_) edge_->Shutdown(clock_->Now() + absl::Seconds(5));
  }

  std::shared_ptr<testing::FakePeerTransport::Peer> Admit(const std::string& peer_id) {
    auto peer = transport_.Connect(peer_id);
    EXPECT_TRUE(peer->WaitForAdmission());
    EXPECT_TRUE(peer->admission().has_value() && peer->admission()->ok());
    return peer;
  }

  // With the admin token (contract §10: /drain needs it).
  testing::HttpResponse Get(absl::string_view path, absl::string_view method = "GET") {
    auto response = testing::HttpRequestWithHeaders(
        server_->port(), method, path, {{"Authorization", absl::StrCat("Bearer ", kAdminToken)}});
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : testing::HttpResponse{};
  }

  // The value of `series` in a scrape of /metrics; -1 when absent.
  double Scraped(const std::string& exposition, absl::string_view series) {
    return SampleValue(exposition, series).value_or(-1);
  }

  testing::FakeClock fake_clock_;
  std::unique_ptr<Clock> real_clock_;
  Clock* clock_ = nullptr;
  testing::FakePeerTransport transport_;
  testing::FakeTrackerCluster cluster_;
  testing::FakeTracker tracker_{&cluster_, "edge-1"};
  std::unique_ptr<metrics::PrometheusMetrics> metrics_;
  std::unique_ptr<testing::FakeMessageBus> bus_;
  std::unique_ptr<MessageBus> instrumented_bus_;
  std::unique_ptr<Tracker> instrumented_tracker_;
  std::unique_ptr<Edge> edge_;
  std::unique_ptr<metrics::MetricsServer> server_;
};

TEST_F(EdgeMetricsTest, ScrapeShowsTheFiguresOfAScenario) {
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.command_hold = absl::ZeroDuration();  // the absent peer's command is not held
  StartEdge(options, &fake_clock_);

  auto p1 = Admit("peer-1");
  auto p2 = Admit("peer-2");
  auto p3 = Admit("peer-3");
  auto duplicate = transport_.Connect("peer-1");
  ASSERT_TRUE(duplicate->WaitForAdmission());
  EXPECT_EQ(duplicate->admission()->code(), absl::StatusCode::kAlreadyExists);

  // Two keepalives, acknowledged at once; one hash response, acknowledged
  // once stored.
  p1->Send(Keepalive("k1"));
  p1->Send(Keepalive("k2"));
  p2->Send(HashResponse("h1"));
  ASSERT_TRUE(p1->WaitForReceived(2));
  ASSERT_TRUE(p2->WaitForReceived(1));

  // Two commands delivered to peer-3, one for a peer nobody holds.
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-3",
                            R"({"type":"file_hash","peer_id":"peer-3","catalog_id":"c1",)"
                            R"("hash_types":["sha256"]})")
                  .ok());
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-3",
                            R"({"type":"file_delete","peer_id":"peer-3","catalog_ids":["c2"]})")
                  .ok());
  ASSERT_TRUE(bus_->Produce(kCommands, "peer-9",
                            R"({"type":"file_delete","peer_id":"peer-9","catalog_ids":["c3"]})")
                  .ok());
  ASSERT_TRUE(p3->WaitForReceived(2));
  ASSERT_TRUE(bus_->WaitForPublished(kDeadLetters, 1, absl::Seconds(10)));

  // peer-2 goes away after 90 s.
  fake_clock_.Advance(absl::Seconds(90));
  p2->Close();
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 4, absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return bus_->PendingPublishes() == 0; }));
  ASSERT_TRUE(WaitFor([&] { return edge_->stats().peers == 2; }));
  transport_.Flush();

  auto response = Get("/metrics");
  ASSERT_EQ(response.status, 200);
  const std::string& m = response.body;
  EXPECT_EQ(Scraped(m, "edge_peer_connections"), 2) << m;
  EXPECT_EQ(Scraped(m, "edge_peer_connection_duration_seconds_count"), 1);
  EXPECT_EQ(Scraped(m, "edge_peer_connection_duration_seconds_sum"), 90);
  EXPECT_EQ(Scraped(m, R"(edge_admissions_total{result="ok"})"), 3);
  EXPECT_EQ(Scraped(m, R"(edge_admissions_total{result="already_exists"})"), 1);

  EXPECT_EQ(
      Scraped(m, R"(edge_messages_total{direction="in",message_type="catalog_announcement"})"), 2);
  EXPECT_EQ(Scraped(m, R"(edge_messages_total{direction="in",message_type="file_hash_response"})"),
            1);
  EXPECT_EQ(Scraped(m, R"(edge_messages_total{direction="out",message_type="ack"})"), 3);
  EXPECT_EQ(Scraped(m, R"(edge_messages_total{direction="out",message_type="file_hash_request"})"),
            1);
  EXPECT_EQ(
      Scraped(m, R"(edge_messages_total{direction="out",message_type="file_delete_request"})"), 1);
  EXPECT_EQ(Scraped(m, "edge_message_size_bytes_count"), 8);

  EXPECT_EQ(Scraped(m, "edge_command_delivery_latency_seconds_count"), 2);
  EXPECT_EQ(Scraped(m, R"(edge_deadletters_total{reason="peer_not_connected"})"), 1);

  // Out: 4 lifecycle events, 1 hash response, 1 dead letter; in: 3 commands.
  EXPECT_EQ(
      Scraped(m, R"(edge_kafka_messages_total{direction="out",topic="peer-lifecycle-events"})"), 4);
  EXPECT_EQ(Scraped(m, R"(edge_kafka_messages_total{direction="out",topic="file-hash-responses"})"),
            1);
  EXPECT_EQ(Scraped(m, absl::StrCat(R"(edge_kafka_messages_total{direction="out",topic=")",
                                    kDeadLetters, "\"}")),
            1);
  EXPECT_EQ(Scraped(m, absl::StrCat(R"(edge_kafka_messages_total{direction="in",topic=")",
                                    kCommands, "\"}")),
            3);
  EXPECT_EQ(Scraped(m, "edge_kafka_publish_latency_seconds_count"), 6);
  EXPECT_EQ(Scraped(m, "edge_kafka_producer_queue_depth"), 0);

  EXPECT_EQ(Scraped(m, R"(edge_tracker_requests_total{op="claim",result="ok"})"), 3);
  EXPECT_EQ(Scraped(m, R"(edge_tracker_requests_total{op="release",result="ok"})"), 1);
  EXPECT_EQ(m.find("peer-1"), std::string::npos) << "no peer_id label";
  EXPECT_EQ(bus_->Published(kHashes).size(), 1u);
}

TEST_F(EdgeMetricsTest, ReadyzTurnsUnavailableWhenTheEdgeDrains) {
  StartEdge(TestEdgeOptions(), &fake_clock_);
  EXPECT_EQ(Get("/healthz").status, 200);
  EXPECT_EQ(Get("/readyz").status, 200);
  edge_->Drain();
  auto response = Get("/readyz");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "not ready: draining\n");
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(EdgeMetricsTest, PostDrainDrainsTheEdge) {
  StartEdge(TestEdgeOptions(), &fake_clock_);
  auto peer = Admit("peer-1");
  EXPECT_EQ(Get("/drain", "POST").status, 202);
  EXPECT_TRUE(edge_->draining());
  ASSERT_TRUE(peer->WaitForEnd());
  EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kUnavailable);
  auto late = transport_.Connect("peer-2");
  ASSERT_TRUE(late->WaitForAdmission());
  EXPECT_EQ(late->admission()->code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Get("/readyz").status, 503);
  EXPECT_EQ(Get("/drain", "GET").status, 405);
}

// DRAIN_RATE_PER_SEC=100 with 200 peers: their streams end over about two
// seconds, measured from the `disconnected` events' timestamps.
TEST_F(EdgeMetricsTest, DrainEndsStreamsAtTheConfiguredRate) {
  real_clock_ = NewRealClock();
  EdgeOptions options = TestEdgeOptions();
  options.catalog_pull_on_connect = false;
  options.drain_rate_per_sec = 100;
  StartEdge(options, real_clock_.get());
  constexpr int kPeers = 200;
  std::vector<std::shared_ptr<testing::FakePeerTransport::Peer>> peers;
  for (int i = 0; i < kPeers; ++i) peers.push_back(Admit(absl::StrCat("peer-", i)));
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, kPeers, absl::Seconds(10)));

  EXPECT_EQ(Get("/drain", "POST").status, 202);
  ASSERT_TRUE(bus_->WaitForPublished(kLifecycle, 2 * kPeers, absl::Seconds(20)));
  std::vector<absl::Time> ends;
  for (const OutgoingRecord& record : bus_->Published(kLifecycle)) {
    if (Field(record.value, "event_type") != "disconnected") continue;
    EXPECT_EQ(Field(record.value, "reason"), "shutdown") << record.value;
    absl::Time at;
    std::string error;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, Field(record.value, "timestamp"), &at, &error))
        << error;
    ends.push_back(at);
  }
  ASSERT_EQ(ends.size(), static_cast<size_t>(kPeers));
  for (auto& peer : peers) {
    ASSERT_TRUE(peer->WaitForEnd());
    EXPECT_EQ(peer->final_status()->code(), absl::StatusCode::kUnavailable);
  }
  auto [first, last] = std::minmax_element(ends.begin(), ends.end());
  absl::Duration span = *last - *first;
  RecordProperty("drain_span_ms", static_cast<int>(absl::ToInt64Milliseconds(span)));
  EXPECT_GE(span, absl::Milliseconds(1500)) << span;
  EXPECT_LE(span, absl::Milliseconds(3500)) << span;
  auto response = Get("/metrics");
  EXPECT_EQ(Scraped(response.body, "edge_peer_connections"), 0);
  EXPECT_EQ(Scraped(response.body, "edge_peer_connection_duration_seconds_count"), kPeers);
}

}  // namespace
}  // namespace edge
