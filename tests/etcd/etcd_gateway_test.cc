// Lease keepalives through etcd's HTTP gateway (etcd_gateway.h): what the
// answers mean, against a real etcd, and the fall back to gRPC where etcd
// has no gateway. (Over TLS and with etcd's authentication:
// etcd_security_test.cc.)
#include "etcd/etcd_gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "edge/logger.h"
#include "etcd/etcd_client.h"
#include "gtest/gtest.h"
#include "support/etcd_process.h"

namespace edge::testing {
namespace {

using etcd::internal::EtcdClient;
using etcd::internal::EtcdGatewayKeepalive;

grpc::StatusCode Parsed(long http_status, const std::string& body, int64_t* ttl) {
  return EtcdGatewayKeepalive::ParseAnswer(http_status, body, ttl).error_code();
}

TEST(EtcdGatewayAnswerTest, AResultGivesItsTtl) {
  int64_t ttl = -1;
  EXPECT_EQ(Parsed(200,
                   R"({"result":{"header":{"revision":"1"},"ID":"7","TTL":"10"}})"
                   "\n",
                   &ttl),
            grpc::StatusCode::OK);
  EXPECT_EQ(ttl, 10);
  EXPECT_EQ(Parsed(200, R"({"result":{"ID":"7","TTL":4}})", &ttl), grpc::StatusCode::OK);
  EXPECT_EQ(ttl, 4);
}

// proto3's JSON leaves a zero out: etcd's answer for a lease it no longer has.
TEST(EtcdGatewayAnswerTest, AResultWithoutATtlMeansTheLeaseIsGone) {
  int64_t ttl = -1;
  EXPECT_EQ(Parsed(200, R"({"result":{"header":{"revision":"1"},"ID":"12345"}})", &ttl),
            grpc::StatusCode::OK);
  EXPECT_EQ(ttl, 0);
}

TEST(EtcdGatewayAnswerTest, EtcdsErrorsKeepTheirCodes) {
  int64_t ttl = -1;
  grpc::Status stale = EtcdGatewayKeepalive::ParseAnswer(
      200,
      R"({"error":{"grpc_code":16,"http_code":401,"message":"etcdserver: invalid auth token"}})",
      &ttl);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stale.error_message(), "etcdserver: invalid auth token");
  EXPECT_EQ(Parsed(500, R"({"error":"bad","message":"bad","code":2})", &ttl),
            grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(
      Parsed(503, R"({"error":"no leader","message":"etcdserver: no leader","code":14})", &ttl),
      grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ttl, -1);
}

TEST(EtcdGatewayAnswerTest, NoGatewayIsUnimplementedAndOtherAnswersUnavailable) {
  int64_t ttl = -1;
  EXPECT_EQ(Parsed(404, "404 page not found\n", &ttl), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(Parsed(502, "<html>Bad Gateway</html>", &ttl), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Parsed(200, "", &ttl), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Parsed(200, R"({"something":"else"})", &ttl), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Parsed(200, R"({"result":{"TTL":"ten"}})", &ttl), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(ttl, -1);
}

// A real etcd, a client of it and a 5 s lease that client was granted.
struct LeasedEtcd {
  std::unique_ptr<EtcdProcess> etcd;
  std::unique_ptr<EtcdClient> client;
  int64_t lease = 0;
};

void StartLeased(EtcdProcess::Options options, LeasedEtcd* out) {
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start(options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  out->etcd = *std::move(etcd);
  auto client = EtcdClient::Create({out->etcd->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok()) << client.status();
  out->client = *std::move(client);
  auto lease = out->client->LeaseGrantSync(5, absl::Now() + absl::Seconds(3));
  ASSERT_TRUE(lease.ok()) << lease.status();
  out->lease = lease->id();
}

// A lease granted over gRPC, renewed over HTTP.
TEST(EtcdGatewayTest, RenewsALeaseAndReportsOneEtcdNoLongerHas) {
  EDGE_SKIP_WITHOUT_ETCD();
  LeasedEtcd leased;
  ASSERT_NO_FATAL_FAILURE(StartLeased({}, &leased));

  EtcdGatewayKeepalive gateway(leased.etcd->endpoint(), {});
  int64_t ttl = -1;
  grpc::Status renewed = gateway.KeepAlive(leased.lease, "", absl::Now() + absl::Seconds(3), &ttl);
  ASSERT_TRUE(renewed.ok()) << renewed.error_message();
  EXPECT_EQ(ttl, 5);

  ASSERT_TRUE(leased.client->LeaseRevokeSync(leased.lease, absl::Now() + absl::Seconds(3)).ok());
  ttl = -1;
  renewed = gateway.KeepAlive(leased.lease, "", absl::Now() + absl::Seconds(3), &ttl);
  ASSERT_TRUE(renewed.ok()) << renewed.error_message();
  EXPECT_EQ(ttl, 0);
  leased.client->Shutdown();
}

// Nothing listens there: a port held bound but not listening refuses, and
// no other process can take it meanwhile.
TEST(EtcdGatewayTest, AnEtcdThatIsNotThereIsUnavailable) {
  const int held = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(held, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(held, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(held, reinterpret_cast<sockaddr*>(&address), &length), 0);
  EtcdGatewayKeepalive gateway(absl::StrCat("127.0.0.1:", ntohs(address.sin_port)), {});
  int64_t ttl = -1;
  EXPECT_EQ(gateway.KeepAlive(1, "", absl::Now() + absl::Seconds(3), &ttl).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  close(held);
}

// etcd started without its gateway: the gateway says so, and the client's
// keepalive goes over gRPC instead.
TEST(EtcdGatewayTest, WithoutAGatewayKeepalivesGoOverGrpc) {
  EDGE_SKIP_WITHOUT_ETCD();
  EtcdProcess::Options options;
  options.extra_args = {"--enable-grpc-gateway=false"};
  LeasedEtcd leased;
  ASSERT_NO_FATAL_FAILURE(StartLeased(options, &leased));

  EtcdGatewayKeepalive gateway(leased.etcd->endpoint(), {});
  int64_t ttl = -1;
  EXPECT_EQ(gateway.KeepAlive(leased.lease, "", absl::Now() + absl::Seconds(3), &ttl).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);

  for (int i = 0; i < 2; ++i) {  // The second while the gateway is left alone.
    absl::StatusOr<int64_t> kept =
        leased.client->LeaseKeepAliveSync(leased.lease, absl::Now() + absl::Seconds(3));
    ASSERT_TRUE(kept.ok()) << kept.status();
    EXPECT_EQ(*kept, 5);
  }
  leased.client->Shutdown();
}

}  // namespace
}  // namespace edge::testing
