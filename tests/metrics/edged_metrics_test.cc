// edged's wiring of the metrics endpoint: EdgedService with METRICS_ADDRESS
// on port 0 (gRPC on port 0, the embedded Kafka broker, the local tracker).
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config.h"
#include "edge/logger.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service.h"
#include "support/http_client.h"
#include "support/test_peer.h"
#include "support/wait.h"

namespace edge {
namespace {

using testing::HttpRequest;
using testing::HttpRequestWithHeaders;
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

// A temporary file holding `content`, removed with the object.
class TempFile {
 public:
  explicit TempFile(absl::string_view content) {
    path_ = (std::filesystem::temp_directory_path() / "edged-admin-XXXXXX").string();
    int fd = mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr char kToken[] = "edged-admin-token";

std::vector<std::pair<std::string, std::string>> Bearer() {
  return {{"Authorization", absl::StrCat("Bearer ", kToken)}};
}

TEST(EdgedMetricsTest, ServesMetricsReadinessAndDrain) {
  // The token file ends with a newline, which is not part of the token.
  TempFile token(absl::StrCat(kToken, "\n"));
  auto config = Config({{"METRICS_ADDRESS", "127.0.0.1:0"}, {"ADMIN_TOKEN_FILE", token.path()}});
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
  EXPECT_TRUE(testing::WaitFor(
      [&] { return SampleValue(HttpRequest(port, "GET", "/metrics")->body, "edge_ready") == 1; }));

  EXPECT_EQ(HttpRequest(port, "POST", "/drain")->status, 401);
  EXPECT_FALSE((*service)->edge().draining());
  EXPECT_EQ(HttpRequestWithHeaders(port, "POST", "/drain", Bearer())->status, 202);
  EXPECT_TRUE((*service)->edge().draining());
  auto ready = HttpRequest(port, "GET", "/readyz");
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "not ready: draining\n");
  // edge_ready follows readiness (probed every second).
  EXPECT_TRUE(testing::WaitFor(
      [&] { return SampleValue(HttpRequest(port, "GET", "/metrics")->body, "edge_ready") == 0; }));

  (*service)->Shutdown();
  EXPECT_EQ((*service)->metrics_port(), 0);
  EXPECT_FALSE(HttpRequest(port, "GET", "/healthz").ok());
}

TEST(EdgedMetricsTest, AdminApiFindsListsAndKicksConnectedPeers) {
  TempFile token(kToken);
  auto config = Config({{"METRICS_ADDRESS", "127.0.0.1:0"}, {"ADMIN_TOKEN_FILE", token.path()}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto service = EdgedService::Create(*config, &Logger::Null());
  ASSERT_TRUE(service.ok()) << service.status();
  ASSERT_TRUE((*service)->Start().ok());
  int port = (*service)->metrics_port();
  std::string address = absl::StrCat("127.0.0.1:", (*service)->grpc_port());

  std::vector<std::unique_ptr<testing::TestPeer>> peers;
  for (const char* id : {"peer-b", "peer-a", "peer-c"}) {
    testing::TestPeer::Options options;
    options.peer_id = id;
    auto peer = testing::TestPeer::Connect(address, options);
    ASSERT_TRUE(peer.ok()) << peer.status();
    peers.push_back(*std::move(peer));
  }

  auto found = HttpRequestWithHeaders(port, "GET", "/peers/peer-a", Bearer());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->status, 200);
  EXPECT_THAT(found->body,
              ::testing::StartsWith("{\"peer_id\":\"peer-a\",\"edge_id\":\"edge-metrics\","
                                    "\"connected_at\":\""));
  EXPECT_EQ(HttpRequestWithHeaders(port, "GET", "/peers/peer-z", Bearer())->status, 404);

  auto page = HttpRequestWithHeaders(port, "GET", "/peers?limit=2", Bearer());
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->status, 200);
  size_t a = page->body.find("\"peer-a\"");
  size_t b = page->body.find("\"peer-b\"");
  EXPECT_TRUE(a != std::string::npos && b != std::string::npos && a < b) << page->body;
  EXPECT_EQ(page->body.find("\"peer-c\""), std::string::npos);
  EXPECT_NE(page->body.find("\"next\":\"peer-b\""), std::string::npos) << page->body;
  auto rest = HttpRequestWithHeaders(port, "GET", "/peers?limit=2&after=peer-b", Bearer());
  EXPECT_NE(rest->body.find("\"peer-c\""), std::string::npos);
  EXPECT_NE(rest->body.find("\"next\":null"), std::string::npos);

  // Kicked as the `disconnect` command does: ABORTED.
  auto kicked = HttpRequestWithHeaders(port, "POST", "/peers/peer-b/disconnect", Bearer());
  EXPECT_EQ(kicked->status, 202);
  std::optional<grpc::Status> end = peers[0]->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::ABORTED);
  EXPECT_TRUE(testing::WaitFor([&] {
    return HttpRequestWithHeaders(port, "GET", "/peers/peer-b", Bearer())->status == 404;
  }));
  EXPECT_EQ(HttpRequestWithHeaders(port, "POST", "/peers/peer-b/disconnect", Bearer())->status,
            404);
  peers.clear();
  (*service)->Shutdown();
}

TEST(EdgedMetricsTest, AnEmptyAdminTokenFileStopsTheStart) {
  TempFile token("\n");
  auto config = Config({{"METRICS_ADDRESS", "127.0.0.1:0"}, {"ADMIN_TOKEN_FILE", token.path()}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto service = EdgedService::Create(*config, &Logger::Null());
  EXPECT_EQ(service.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(service.status().message()), ::testing::HasSubstr("ADMIN_TOKEN_FILE"));
}

// The library's parser names the variable and the file once; the service
// passes its message on as invalid configuration (exit code 2).
TEST(EdgedMetricsTest, AMalformedKafkaConfigFileStopsTheStart) {
  TempFile properties("linger.ms=5\nsasl.password\n");
  auto config = Config({{"KAFKA_CONFIG_FILE", properties.path()}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto service = EdgedService::Create(*config, &Logger::Null());
  EXPECT_EQ(service.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(service.status().message()),
            absl::StrCat("KAFKA_CONFIG_FILE: \"", properties.path(),
                         "\" line 2: expected property=value"));
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
