// edged's admin API and readiness with TRACKER=etcd (contract §10): two
// EdgedServices in-process on one real etcd, each with its embedded Kafka
// broker; and edged configured for an etcd that wants TLS, a client
// certificate and a password.
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
#include "grpc/test_certs.h"
#include "gtest/gtest.h"
#include "service.h"
#include "support/etcd_process.h"
#include "support/http_client.h"
#include "support/test_peer.h"
#include "support/wait.h"

namespace edge {
namespace {

using testing::HttpRequest;
using testing::HttpRequestWithHeaders;

constexpr char kToken[] = "etcd-admin-token";

class TempFile {
 public:
  explicit TempFile(absl::string_view content) {
    path_ = (std::filesystem::temp_directory_path() / "edged-etcd-XXXXXX").string();
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

std::vector<std::pair<std::string, std::string>> Bearer() {
  return {{"Authorization", absl::StrCat("Bearer ", kToken)}};
}

std::unique_ptr<EdgedService> StartEdged(std::map<std::string, std::string> env) {
  env.emplace("GRPC_SERVER_ADDRESS", "127.0.0.1:0");
  env.emplace("METRICS_ADDRESS", "127.0.0.1:0");
  env.emplace("TRACKER", "etcd");
  env.emplace("TRACKER_LEASE_TTL_SEC", "2");
  auto config = ConfigFromEnvironment(
      [&env](absl::string_view name) -> std::optional<std::string> {
        auto it = env.find(std::string(name));
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      "test-host");
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return nullptr;
  auto service = EdgedService::Create(*config, &Logger::Null());
  EXPECT_TRUE(service.ok()) << service.status();
  if (!service.ok()) return nullptr;
  absl::Status started = (*service)->Start();
  EXPECT_TRUE(started.ok()) << started;
  if (!started.ok()) return nullptr;
  return *std::move(service);
}

std::unique_ptr<testing::TestPeer> ConnectPeer(EdgedService& edged, const std::string& id) {
  testing::TestPeer::Options options;
  options.peer_id = id;
  auto peer = testing::TestPeer::Connect(absl::StrCat("127.0.0.1:", edged.grpc_port()), options);
  EXPECT_TRUE(peer.ok()) << peer.status();
  return peer.ok() ? *std::move(peer) : nullptr;
}

bool Ready(EdgedService& edged) {
  auto ready = HttpRequest(edged.metrics_port(), "GET", "/readyz");
  return ready.ok() && ready->status == 200;
}

TEST(EdgedEtcdAdminTest, APeerHeldByAnotherEdgeIsFoundWithThatEdgesAddress) {
  EDGE_SKIP_WITHOUT_ETCD();
  auto etcd = testing::EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  TempFile token(kToken);
  auto a = StartEdged({{"EDGE_ID", "edge-a"},
                       {"ETCD_ENDPOINTS", (*etcd)->endpoint()},
                       {"ADMIN_TOKEN_FILE", token.path()}});
  auto b = StartEdged({{"EDGE_ID", "edge-b"},
                       {"ETCD_ENDPOINTS", (*etcd)->endpoint()},
                       {"ADMIN_TOKEN_FILE", token.path()}});
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // Readiness follows the background probe of etcd.
  EXPECT_TRUE(testing::WaitFor([&] { return Ready(*a) && Ready(*b); }));

  auto peer = ConnectPeer(*b, "peer-on-b");
  ASSERT_NE(peer, nullptr);
  auto far = HttpRequestWithHeaders(a->metrics_port(), "GET", "/peers/peer-on-b", Bearer());
  ASSERT_TRUE(far.ok()) << far.status();
  EXPECT_EQ(far->status, 200) << far->body;
  EXPECT_THAT(far->body, ::testing::StartsWith("{\"peer_id\":\"peer-on-b\",\"edge_id\":\"edge-b\","
                                               "\"address\":\"127.0.0.1:"));
  auto here = HttpRequestWithHeaders(b->metrics_port(), "GET", "/peers/peer-on-b", Bearer());
  EXPECT_EQ(here->status, 200);
  EXPECT_THAT(here->body, ::testing::HasSubstr("\"epoch\":"));
  EXPECT_EQ(HttpRequestWithHeaders(a->metrics_port(), "GET", "/peers/nobody", Bearer())->status,
            404);
  // Only the holder can kick it.
  EXPECT_EQ(
      HttpRequestWithHeaders(a->metrics_port(), "POST", "/peers/peer-on-b/disconnect", Bearer())
          ->status,
      404);

  // etcd gone: readiness turns 503 (from the probe, the request does not
  // wait on etcd), and comes back with it.
  (*etcd)->Kill();
  EXPECT_TRUE(testing::WaitFor([&] { return !Ready(*a); }));
  auto health = HttpRequest(a->metrics_port(), "GET", "/healthz");
  EXPECT_EQ(health->status, 200);
  auto lookup = HttpRequestWithHeaders(a->metrics_port(), "GET", "/peers/peer-on-b", Bearer());
  EXPECT_EQ(lookup->status, 503) << lookup->body;
  ASSERT_TRUE((*etcd)->Restart().ok());
  EXPECT_TRUE(testing::WaitFor([&] { return Ready(*a); }, absl::Seconds(20)));

  peer.reset();
  a->Shutdown();
  b->Shutdown();
}

TEST(EdgedEtcdAdminTest, EdgedReachesEtcdOverTlsWithACertificateAndAPassword) {
  EDGE_SKIP_WITHOUT_ETCD();
  if (access("/usr/bin/etcdctl", X_OK) != 0) GTEST_SKIP() << "no etcdctl";
  auto certs = testing::TestCerts::Generate();
  ASSERT_TRUE(certs.ok()) << certs.status();
  testing::EtcdProcess::Options tls;
  tls.cert_file = certs->cert("server");
  tls.key_file = certs->key("server");
  tls.client_ca_file = certs->cert("ca");
  auto etcd = testing::EtcdProcess::Start(tls);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  // With --client-cert-auth, etcdctl logs in by its certificate's CN when no
  // user is given: the CA-signed client certificate's CN is "peer-cn".
  const std::string etcdctl =
      absl::StrCat("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=", (*etcd)->url(),
                   " --cacert=", certs->cert("ca"), " --cert=", certs->cert("client_cn"),
                   " --key=", certs->key("client_cn"), " ");
  for (const char* command :
       {"user add root:rootpw", "user add peer-cn:unused-pw", "user grant-role peer-cn root",
        "user add edge:edge-secret", "role add edge-role",
        "role grant-permission edge-role --prefix=true readwrite /giggityflix/",
        "user grant-role edge edge-role", "auth enable"}) {
    ASSERT_EQ(std::system(absl::StrCat(etcdctl, command, " >/dev/null 2>&1").c_str()), 0)
        << command;
  }
  TempFile password("edge-secret\n");
  auto edged = StartEdged({{"EDGE_ID", "edge-tls"},
                           {"ETCD_ENDPOINTS", (*etcd)->url()},
                           {"ETCD_CA_FILE", certs->cert("ca")},
                           {"ETCD_CERT_FILE", certs->cert("client_cn")},
                           {"ETCD_KEY_FILE", certs->key("client_cn")},
                           {"ETCD_USERNAME", "edge"},
                           {"ETCD_PASSWORD_FILE", password.path()}});
  ASSERT_NE(edged, nullptr);
  EXPECT_TRUE(testing::WaitFor([&] { return Ready(*edged); }));
  auto peer = ConnectPeer(*edged, "peer-1");
  ASSERT_NE(peer, nullptr);
  peer.reset();
  edged->Shutdown();
  certs->Remove();
}

}  // namespace
}  // namespace edge
