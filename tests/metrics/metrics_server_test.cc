// MetricsServer over real HTTP on loopback, and PrometheusMetrics' families.
#include "edge/metrics/metrics_server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "edge/metrics/prometheus_metrics.h"
#include "gtest/gtest.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "support/http_client.h"

namespace edge {
namespace {

using testing::HttpRequest;
using testing::SampleValue;

constexpr char kToken[] = "t0ken-with-enough-entropy";

class MetricsServerTest : public ::testing::Test {
 protected:
  void StartServer(std::string admin_token = kToken) {
    auto metrics = metrics::PrometheusMetrics::Create();
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = std::move(*metrics);
    metrics::MetricsServerOptions options;
    options.address = "127.0.0.1:0";
    options.metrics = metrics_->registry();
    options.ready = [this]() -> absl::Status {
      if (ready_.load()) return absl::OkStatus();
      return absl::UnavailableError("edge is draining");
    };
    options.healthy = [this]() -> absl::Status {
      if (healthy_.load()) return absl::OkStatus();
      return absl::UnavailableError("peer listener is gone");
    };
    options.drain = [this] { drains_.fetch_add(1); };
    options.admin_token = std::move(admin_token);
    options.find_peer = [this](const std::string& id) -> absl::StatusOr<metrics::AdminPeer> {
      if (id == "far-peer") {
        metrics::AdminPeer peer{id,           "edge-2", std::nullopt,
                                std::nullopt, 7,        "edge-2.internal:50051"};
        return peer;
      }
      if (peers_.count(id) == 0) return absl::NotFoundError("peer " + id + " is not held");
      return peers_.at(id);
    };
    options.list_peers = [this](const std::string& after, size_t limit) {
      std::vector<metrics::AdminPeer> page;
      for (auto it = peers_.upper_bound(after); it != peers_.end() && page.size() < limit; ++it) {
        page.push_back(it->second);
      }
      return page;
    };
    options.kick_peer = [this](const std::string& id) -> absl::Status {
      if (peers_.erase(id) == 0) return absl::NotFoundError("peer " + id + " is not held");
      kicked_.push_back(id);
      return absl::OkStatus();
    };
    auto server = metrics::MetricsServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  // An admin request: with `token` as bearer token unless empty, and the
  // extra `headers`.
  testing::HttpResponse Admin(absl::string_view path, absl::string_view method = "GET",
                              absl::string_view token = kToken,
                              std::vector<std::pair<std::string, std::string>> headers = {}) {
    if (!token.empty()) headers.emplace_back("Authorization", absl::StrCat("Bearer ", token));
    auto response = testing::HttpRequestWithHeaders(server_->port(), method, path, headers);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : testing::HttpResponse{};
  }

  void AddPeer(const std::string& id) {
    metrics::AdminPeer peer;
    peer.peer_id = id;
    peer.edge_id = "edge-1";
    peer.connected_at = absl::FromUnixMillis(1700000000123);
    peer.last_activity = absl::FromUnixMillis(1700000005000);
    peer.epoch = 42;
    peers_[id] = peer;
  }

  testing::HttpResponse Get(absl::string_view path, absl::string_view method = "GET") {
    auto response = HttpRequest(server_->port(), method, path);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : testing::HttpResponse{};
  }

  std::unique_ptr<metrics::PrometheusMetrics> metrics_;
  std::unique_ptr<metrics::MetricsServer> server_;
  std::atomic<bool> ready_{true};
  std::atomic<bool> healthy_{true};
  // Set before StartServer(); read by the admin callbacks only.
  std::map<std::string, metrics::AdminPeer> peers_;
  std::vector<std::string> kicked_;
  std::atomic<int> drains_{0};
};

TEST_F(MetricsServerTest, ServesMetricsInTextFormat) {
  StartServer();
  metrics_->PeerConnected();
  metrics_->Admission(absl::StatusCode::kOk);
  metrics_->Admission(absl::StatusCode::kAlreadyExists);
  metrics_->Admission(absl::StatusCode::kAlreadyExists);
  auto response = Get("/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_NE(response.headers.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_EQ(SampleValue(response.body, "edge_peer_connections"), 1);
  EXPECT_EQ(SampleValue(response.body, R"(edge_admissions_total{result="ok"})"), 1);
  EXPECT_EQ(SampleValue(response.body, R"(edge_admissions_total{result="already_exists"})"), 2);
  EXPECT_NE(response.body.find("# TYPE edge_peer_connection_duration_seconds histogram"),
            std::string::npos);
}

TEST_F(MetricsServerTest, HealthzIsOkWhileRunning) {
  StartServer();
  auto response = Get("/healthz");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "ok\n");
}

TEST_F(MetricsServerTest, HealthzFollowsTheHealthyCallback) {
  StartServer();
  healthy_ = false;
  auto response = Get("/healthz");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "unhealthy: peer listener is gone\n");
  healthy_ = true;
  EXPECT_EQ(Get("/healthz").status, 200);
}

TEST_F(MetricsServerTest, ReadyzFollowsTheReadyCallback) {
  StartServer();
  EXPECT_EQ(Get("/readyz").status, 200);
  ready_ = false;
  auto response = Get("/readyz");
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.body, "not ready: edge is draining\n");
}

TEST_F(MetricsServerTest, PostDrainCallsTheDrainCallback) {
  StartServer();
  auto response = Admin("/drain", "POST");
  EXPECT_EQ(response.status, 202);
  EXPECT_EQ(response.body, "{\"draining\":true}\n");
  EXPECT_EQ(drains_.load(), 1);
}

TEST_F(MetricsServerTest, OtherMethodsOnDrainAreRefused) {
  StartServer();
  for (absl::string_view method : {"GET", "PUT", "DELETE"}) {
    auto response = Get("/drain", method);
    EXPECT_EQ(response.status, 405) << method;
    EXPECT_NE(response.headers.find("Allow: POST"), std::string::npos) << method;
  }
  EXPECT_EQ(drains_.load(), 0);
}

TEST_F(MetricsServerTest, AdminEndpointsAreForbiddenWithoutAConfiguredToken) {
  AddPeer("peer-1");
  StartServer(/*admin_token=*/"");
  for (auto [method, path] :
       std::vector<std::pair<const char*, const char*>>{{"POST", "/drain"},
                                                        {"GET", "/peers"},
                                                        {"GET", "/peers/peer-1"},
                                                        {"POST", "/peers/peer-1/disconnect"}}) {
    for (absl::string_view token : {"", "anything"}) {
      auto response = Admin(path, method, token);
      EXPECT_EQ(response.status, 403) << method << " " << path;
      EXPECT_NE(response.body.find("ADMIN_TOKEN_FILE"), std::string::npos) << response.body;
    }
  }
  EXPECT_EQ(drains_.load(), 0);
  EXPECT_TRUE(kicked_.empty());
}

TEST_F(MetricsServerTest, AWrongOrMissingTokenIsUnauthorized) {
  AddPeer("peer-1");
  StartServer();
  const std::string wrong[] = {"", "t0ken", "t0ken-with-enough-entropy-and-more",
                               "T0KEN-WITH-ENOUGH-ENTROPY", "t0ken-with-enough-entropx"};
  for (const std::string& token : wrong) {
    auto response = Admin("/drain", "POST", token);
    EXPECT_EQ(response.status, 401) << token;
    EXPECT_NE(response.headers.find("WWW-Authenticate: Bearer"), std::string::npos);
    EXPECT_EQ(Admin("/peers/peer-1/disconnect", "POST", token).status, 401) << token;
  }
  // Another scheme, or the token without its scheme.
  EXPECT_EQ(Admin("/peers", "GET", "", {{"Authorization", absl::StrCat("Basic ", kToken)}}).status,
            401);
  EXPECT_EQ(Admin("/peers", "GET", "", {{"Authorization", kToken}}).status, 401);
  EXPECT_EQ(drains_.load(), 0);
  EXPECT_TRUE(kicked_.empty());
}

TEST_F(MetricsServerTest, AnOriginHeaderIsRefusedEvenWithTheToken) {
  AddPeer("peer-1");
  StartServer();
  for (absl::string_view origin : {"https://evil.example", "null", ""}) {
    auto response = Admin("/drain", "POST", kToken, {{"Origin", std::string(origin)}});
    EXPECT_EQ(response.status, 403) << origin;
    EXPECT_EQ(Admin("/peers/peer-1", "GET", kToken, {{"Origin", std::string(origin)}}).status, 403);
  }
  EXPECT_EQ(drains_.load(), 0);
  // Health and metrics stay open to any client.
  auto health = testing::HttpRequestWithHeaders(server_->port(), "GET", "/healthz",
                                                {{"Origin", "https://evil.example"}});
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
}

TEST_F(MetricsServerTest, GetPeerAnswersHereElsewhereOrNotFound) {
  AddPeer("peer-1");
  StartServer();
  auto here = Admin("/peers/peer-1");
  EXPECT_EQ(here.status, 200);
  EXPECT_NE(here.headers.find("application/json"), std::string::npos);
  EXPECT_EQ(here.body,
            "{\"peer_id\":\"peer-1\",\"edge_id\":\"edge-1\","
            "\"connected_at\":\"2023-11-14T22:13:20.123Z\","
            "\"last_activity\":\"2023-11-14T22:13:25.000Z\",\"epoch\":42}\n");
  auto far = Admin("/peers/far-peer");
  EXPECT_EQ(far.status, 200);
  EXPECT_EQ(far.body,
            "{\"peer_id\":\"far-peer\",\"edge_id\":\"edge-2\",\"epoch\":7,"
            "\"address\":\"edge-2.internal:50051\"}\n");
  auto missing = Admin("/peers/nobody");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "{\"error\":\"peer nobody is not held\"}\n");
  EXPECT_EQ(Admin("/peers/peer-1", "POST").status, 405);
  EXPECT_EQ(Admin("/peers/peer-1/other").status, 404);
  auto invalid = Admin("/peers/peer%20one");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_NE(invalid.body.find("not a peer_id"), std::string::npos) << invalid.body;
  EXPECT_EQ(Admin(absl::StrCat("/peers/", std::string(129, 'p'))).status, 400);
  EXPECT_EQ(Admin("/peers/peer%20one/disconnect", "POST").status, 400);
}

TEST_F(MetricsServerTest, ListPeersPagesInPeerIdOrder) {
  for (int i = 0; i < 250; ++i) AddPeer(absl::StrFormat("peer-%03d", i));
  StartServer();
  // Default page: 100, then follow `next`.
  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 4; ++page) {
    auto response = Admin(after.empty() ? "/peers" : "/peers?after=" + after);
    ASSERT_EQ(response.status, 200) << response.body;
    size_t at = 0;
    int count = 0;
    while ((at = response.body.find("\"peer_id\":\"", at)) != std::string::npos) {
      at += 11;
      seen.push_back(response.body.substr(at, response.body.find('"', at) - at));
      ++count;
    }
    size_t next = response.body.find("\"next\":");
    ASSERT_NE(next, std::string::npos);
    if (response.body.compare(next, 11, "\"next\":null") == 0) {
      EXPECT_EQ(count, 50);
      break;
    }
    EXPECT_EQ(count, 100);
    after = seen.back();
    EXPECT_EQ(response.body.substr(next + 7), "\"" + after + "\"}\n");
  }
  ASSERT_EQ(seen.size(), 250u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.front(), "peer-000");
  EXPECT_EQ(seen.back(), "peer-249");

  auto small = Admin("/peers?limit=2&after=peer-247");
  EXPECT_EQ(small.status, 200);
  EXPECT_NE(small.body.find("\"peer_id\":\"peer-248\""), std::string::npos);
  EXPECT_NE(small.body.find("\"next\":null"), std::string::npos);
  EXPECT_NE(Admin("/peers?limit=1000").body.find("\"next\":null"), std::string::npos);
  for (const char* bad : {"0", "1001", "-1", "ten", ""}) {
    auto response = Admin(absl::StrCat("/peers?limit=", bad));
    EXPECT_EQ(response.status, 400) << bad;
    EXPECT_NE(response.body.find("limit must be an integer from 1 to 1000"), std::string::npos);
  }
}

TEST_F(MetricsServerTest, DisconnectKicksAPeerHereAndIs404Otherwise) {
  AddPeer("peer-1");
  StartServer();
  EXPECT_EQ(Admin("/peers/peer-1/disconnect", "GET").status, 405);
  EXPECT_EQ(Admin("/peers/peer-1/disconnect", "POST").status, 202);
  EXPECT_EQ(kicked_, std::vector<std::string>{"peer-1"});
  EXPECT_EQ(Admin("/peers/peer-1/disconnect", "POST").status, 404);
}

TEST_F(MetricsServerTest, HealthAnswersWhileOtherClientsHoldConnections) {
  StartServer();
  // Clients that send half a request and wait: each holds a worker until
  // the request timeout. Twice as many as the server had workers before.
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(server_->port()));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    const char partial[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    ASSERT_GT(send(fd, partial, sizeof(partial) - 1, MSG_NOSIGNAL), 0);
    idle.push_back(fd);
  }
  // Each probe must get its answer well before the idle clients are cut
  // off (kRequestTimeoutMs): only a free worker can answer that soon.
  for (int i = 0; i < 10; ++i) {
    auto response = HttpRequest(server_->port(), "GET", "/healthz",
                                absl::Milliseconds(metrics::MetricsServer::kRequestTimeoutMs / 2));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 200);
  }
  for (int fd : idle) close(fd);
}

TEST_F(MetricsServerTest, PostOnReadOnlyPathsIsRefused) {
  StartServer();
  EXPECT_EQ(Get("/metrics", "POST").status, 405);
  EXPECT_EQ(Get("/healthz", "DELETE").status, 405);
}

TEST_F(MetricsServerTest, UnknownPathIsNotFound) {
  StartServer();
  EXPECT_EQ(Get("/nothing-here").status, 404);
  EXPECT_EQ(Get("/metrics/extra").status, 404);
  EXPECT_EQ(Get("/").status, 404);
}

TEST_F(MetricsServerTest, ShutdownStopsListeningAndIsIdempotent) {
  StartServer();
  int port = server_->port();
  server_->Shutdown();
  server_->Shutdown();
  EXPECT_EQ(server_->port(), 0);
  EXPECT_FALSE(HttpRequest(port, "GET", "/healthz").ok());
}

TEST(MetricsServerErrors, PortInUseIsUnavailable) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  int port = ntohs(address.sin_port);

  metrics::MetricsServerOptions options;
  options.address = "127.0.0.1:" + std::to_string(port);
  auto server = metrics::MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  absl::Status started = (*server)->Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable) << started;
  EXPECT_NE(started.message().find(std::to_string(port)), absl::string_view::npos) << started;
  EXPECT_EQ((*server)->port(), 0);
  close(fd);
}

TEST(MetricsServerErrors, MalformedAddressesAreInvalidArguments) {
  for (const char* address :
       {"", "9464", "host:", "host:port", "host:70000", "::1:9464", "[::1:9464", "127.0.0.1:-1"}) {
    metrics::MetricsServerOptions options;
    options.address = address;
    auto server = metrics::MetricsServer::Create(std::move(options));
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
}

TEST(MetricsServerErrors, UnresolvableHostFailsAtStart) {
  metrics::MetricsServerOptions options;
  options.address = "no-such-host.invalid:0";
  auto server = metrics::MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServerErrors, StartTwiceIsAnError) {
  metrics::MetricsServerOptions options;
  options.address = "127.0.0.1:0";
  auto server = metrics::MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_EQ((*server)->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PrometheusMetricsTest, EveryLabelledFamilyIsExportedFromTheStartAtZero) {
  auto metrics = metrics::PrometheusMetrics::Create();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  (*metrics)->DeclareKafkaTopics(Direction::kIn, {"edge-commands-e1"});
  (*metrics)->DeclareKafkaTopics(Direction::kOut, {"peer-lifecycle-events"});
  std::string text = (*metrics)->TextExposition();
  for (const char* series : {
           R"(edge_admissions_total{result="ok"})",
           R"(edge_admissions_total{result="already_exists"})",
           R"(edge_admissions_total{result="unavailable"})",
           R"(edge_messages_total{direction="in",message_type="catalog_announcement"})",
           R"(edge_messages_total{direction="in",message_type="webrtc"})",
           R"(edge_messages_total{direction="out",message_type="ack"})",
           R"(edge_messages_total{direction="out",message_type="file_delete_request"})",
           R"(edge_deadletters_total{reason="peer_not_connected"})",
           R"(edge_deadletters_total{reason="peer_slow"})",
           R"(edge_deadletters_total{reason="invalid_json"})",
           R"(edge_errors_total{type="publish_failed"})",
           R"(edge_errors_total{type="rate_limited"})",
           R"(edge_kafka_messages_total{direction="in",topic="edge-commands-e1"})",
           R"(edge_kafka_messages_total{direction="out",topic="peer-lifecycle-events"})",
           R"(edge_tracker_requests_total{op="claim",result="ok"})",
           R"(edge_tracker_requests_total{op="lookup",result="unavailable"})",
           R"(edge_tracker_latency_seconds_count{op="release"})",
       }) {
    EXPECT_EQ(SampleValue(text, series), 0) << series;
  }
  // Later increments land on the same series.
  (*metrics)->DeadLetter("peer_slow");
  (*metrics)->TrackerRequest("claim", absl::StatusCode::kOk, absl::Milliseconds(3));
  text = (*metrics)->TextExposition();
  EXPECT_EQ(SampleValue(text, R"(edge_deadletters_total{reason="peer_slow"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="claim",result="ok"})"), 1);
}

TEST(PrometheusMetricsTest, RefusesARegistryWithClashingFamilies) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge().Name("edge_admissions_total").Help("a gauge").Register(*registry);
  auto metrics = metrics::PrometheusMetrics::Create(registry);
  EXPECT_EQ(metrics.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PrometheusMetricsTest, BoundsLabelValues) {
  auto metrics = metrics::PrometheusMetrics::Create();
  ASSERT_TRUE(metrics.ok());
  for (int i = 0; i < 100; ++i) (*metrics)->Error("type_" + std::to_string(i));
  std::string text = (*metrics)->TextExposition();
  EXPECT_EQ(SampleValue(text, R"(edge_errors_total{type="type_63"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(edge_errors_total{type="type_64"})"), std::nullopt);
  EXPECT_EQ(SampleValue(text, R"(edge_errors_total{type="other"})"), 36);
}

TEST(PrometheusMetricsTest, TrackerRequestsByOperationAndResult) {
  auto metrics = metrics::PrometheusMetrics::Create();
  ASSERT_TRUE(metrics.ok());
  (*metrics)->TrackerRequest("claim", absl::StatusCode::kOk, absl::Milliseconds(2));
  (*metrics)->TrackerRequest("claim", absl::StatusCode::kUnavailable, absl::Milliseconds(5));
  (*metrics)->TrackerRequest("lookup", absl::StatusCode::kNotFound, absl::Milliseconds(1));
  std::string text = (*metrics)->TextExposition();
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="claim",result="ok"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="claim",result="unavailable"})"),
            1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="lookup",result="not_found"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_latency_seconds_count{op="claim"})"), 2);
  EXPECT_NEAR(SampleValue(text, R"(edge_tracker_latency_seconds_sum{op="claim"})").value_or(0),
              0.007, 1e-9);
}

}  // namespace
}  // namespace edge
