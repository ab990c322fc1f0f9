// edged's wiring of the metrics endpoint: EdgedService with METRICS_ADDRESS
// on port 0 (gRPC on port 0, the embedded Kafka broker, the local tracker).
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "edge/logger.h"
#include "gtest/gtest.h"
#include "service.h"
#include "support/http_client.h"
#include "support/wait.h"

namespace edge {
namespace {

using testing::HttpRequest;
using testing::SampleValue;

absl::StatusOr<EdgedConfig> Config(std::map<std::string, std::string> env) {
  env.emplace("GRPC_SERVER_ADDRESS", "127.0.0.1:0");
  env.emplace("EDGE_ID", "edge-metrics");
  return ConfigFromEnvironment(
      [&env](absl::string_view name) -> std::optional<std::string> {
        auto it = env.find(std::string(name));
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      "test-host");
}

TEST(EdgedMetricsTest, ServesMetricsReadinessAndDrain) {
  auto config = Config({{"METRICS_ADDRESS", "127.0.0.1:0"}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto service = EdgedService::Create(*config, &Logger::Null());
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ((*service)->metrics_port(), 0);
  ASSERT_TRUE((*service)->Start().ok());
  int port = (*service)->metrics_port();
  ASSERT_GT(port, 0);

  auto metrics = HttpRequest(port, "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(SampleValue(metrics->body, "edge_peer_connections"), 0);
  EXPECT_EQ(HttpRequest(port, "GET", "/healthz")->status, 200);
  // Ready once the consumer reads its command topic (contract §4).
  ASSERT_TRUE(edge::testing::WaitFor([&] { return (*service)->edge().Ready(); }));
  EXPECT_EQ(HttpRequest(port, "GET", "/readyz")->status, 200);

  EXPECT_EQ(HttpRequest(port, "POST", "/drain")->status, 202);
  EXPECT_TRUE((*service)->edge().draining());
  auto ready = HttpRequest(port, "GET", "/readyz");
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "not ready: draining\n");

  (*service)->Shutdown();
  EXPECT_EQ((*service)->metrics_port(), 0);
  EXPECT_FALSE(HttpRequest(port, "GET", "/healthz").ok());
}

TEST(EdgedMetricsTest, EmptyMetricsAddressDisablesTheEndpoint) {
  auto config = Config({{"METRICS_ADDRESS", ""}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto service = EdgedService::Create(*config, &Logger::Null());
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_TRUE((*service)->Start().ok());
  EXPECT_EQ((*service)->metrics_port(), 0);
  (*service)->Shutdown();
}

}  // namespace
}  // namespace edge
