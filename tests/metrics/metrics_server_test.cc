// MetricsServer over real HTTP on loopback, and PrometheusMetrics' families.
#include "edge/metrics_server.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <atomic>

#include "absl/status/status.h"
#include "edge/prometheus_metrics.h"
#include "gtest/gtest.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "support/http_client.h"

namespace edge {
namespace {

using testing::HttpRequest;
using testing::SampleValue;

class MetricsServerTest : public ::testing::Test {
 protected:
  void StartServer() {
    auto metrics = PrometheusMetrics::Create();
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = std::move(*metrics);
    MetricsServerOptions options;
    options.address = "127.0.0.1:0";
    options.metrics = metrics_->registry();
    options.ready = [this]() -> absl::Status {
      if (ready_.load()) return absl::OkStatus();
      return absl::UnavailableError("edge is draining");
    };
    options.drain = [this] { drains_.fetch_add(1); };
    auto server = MetricsServer::Create(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  testing::HttpResponse Get(absl::string_view path, absl::string_view method = "GET") {
    auto response = HttpRequest(server_->port(), method, path);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : testing::HttpResponse{};
  }

  std::unique_ptr<PrometheusMetrics> metrics_;
  std::unique_ptr<MetricsServer> server_;
  std::atomic<bool> ready_{true};
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
  auto response = Get("/drain", "POST");
  EXPECT_EQ(response.status, 202);
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

  MetricsServerOptions options;
  options.address = "127.0.0.1:" + std::to_string(port);
  auto server = MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  absl::Status started = (*server)->Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable) << started;
  EXPECT_NE(started.message().find(std::to_string(port)), absl::string_view::npos) << started;
  EXPECT_EQ((*server)->port(), 0);
  close(fd);
}

TEST(MetricsServerErrors, MalformedAddressesAreInvalidArguments) {
  for (const char* address : {"", "9464", "host:", "host:port", "host:70000", "::1:9464",
                              "[::1:9464", "127.0.0.1:-1"}) {
    MetricsServerOptions options;
    options.address = address;
    auto server = MetricsServer::Create(std::move(options));
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
}

TEST(MetricsServerErrors, UnresolvableHostFailsAtStart) {
  MetricsServerOptions options;
  options.address = "no-such-host.invalid:0";
  auto server = MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->Start().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServerErrors, StartTwiceIsAnError) {
  MetricsServerOptions options;
  options.address = "127.0.0.1:0";
  auto server = MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start().ok());
  EXPECT_EQ((*server)->Start().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(PrometheusMetricsTest, RefusesARegistryWithClashingFamilies) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge().Name("edge_admissions_total").Help("a gauge").Register(*registry);
  auto metrics = PrometheusMetrics::Create(registry);
  EXPECT_EQ(metrics.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PrometheusMetricsTest, BoundsLabelValues) {
  auto metrics = PrometheusMetrics::Create();
  ASSERT_TRUE(metrics.ok());
  for (int i = 0; i < 100; ++i) (*metrics)->Error("type_" + std::to_string(i));
  std::string text = (*metrics)->TextExposition();
  EXPECT_EQ(SampleValue(text, R"(edge_errors_total{type="type_63"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(edge_errors_total{type="type_64"})"), std::nullopt);
  EXPECT_EQ(SampleValue(text, R"(edge_errors_total{type="other"})"), 36);
}

TEST(PrometheusMetricsTest, TrackerRequestsByOperationAndResult) {
  auto metrics = PrometheusMetrics::Create();
  ASSERT_TRUE(metrics.ok());
  (*metrics)->TrackerRequest("claim", absl::StatusCode::kOk, absl::Milliseconds(2));
  (*metrics)->TrackerRequest("claim", absl::StatusCode::kUnavailable, absl::Milliseconds(5));
  (*metrics)->TrackerRequest("lookup", absl::StatusCode::kNotFound, absl::Milliseconds(1));
  std::string text = (*metrics)->TextExposition();
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="claim",result="ok"})"), 1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="claim",result="unavailable"})"),
            1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_requests_total{op="lookup",result="not_found"})"),
            1);
  EXPECT_EQ(SampleValue(text, R"(edge_tracker_latency_seconds_count{op="claim"})"), 2);
  EXPECT_NEAR(SampleValue(text, R"(edge_tracker_latency_seconds_sum{op="claim"})").value_or(0),
              0.007, 1e-9);
}

}  // namespace
TEST(MetricsServerHealth, HealthzFollowsTheHealthyCallback) {
  std::atomic<bool> healthy{true};
  MetricsServerOptions options;
  options.address = "127.0.0.1:0";
  options.healthy = [&]() -> absl::Status {
    if (healthy.load()) return absl::OkStatus();
    return absl::UnavailableError("the gRPC listener no longer accepts connections");
  };
  auto server = MetricsServer::Create(std::move(options));
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start().ok());
  auto response = HttpRequest((*server)->port(), "GET", "/healthz");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "ok\n");
  healthy = false;
  response = HttpRequest((*server)->port(), "GET", "/healthz");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(response->body, "the gRPC listener no longer accepts connections\n");
}

}  // namespace edge
