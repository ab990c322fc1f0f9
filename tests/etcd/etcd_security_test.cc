// EtcdTracker against a real etcd that requires TLS (with client
// certificates) or its own authentication (contract §10), and what the
// tracker accepts back from etcd. Certificates are made at test time with
// openssl; users and roles with etcdctl.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "edge/etcd/etcd_tracker.h"
#include "etcd/etcd_client.h"
#include "etcd/etcd_gateway.h"
#include "etcd/etcd_txn.h"
#include "gmock/gmock.h"
#include "grpc/test_certs.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "support/await.h"
#include "support/etcd_process.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPrefix[] = "/sec/";

absl::StatusOr<PeerClaim> ClaimSync(Tracker& tracker, const std::string& peer) {
  return Await<absl::StatusOr<PeerClaim>>(
      [&](auto done) { tracker.Claim(peer, absl::Now() + absl::Seconds(3), std::move(done)); });
}

absl::StatusOr<std::string> LookupSync(Tracker& tracker, const std::string& peer) {
  return Await<absl::StatusOr<std::string>>(
      [&](auto done) { tracker.Lookup(peer, absl::Now() + absl::Seconds(3), std::move(done)); });
}

etcd::EtcdTrackerOptions Options(const std::string& endpoint) {
  etcd::EtcdTrackerOptions options;
  options.edge_id = "edge-a";
  options.advertised_address = "edge-a.example:50051";
  options.endpoints = {endpoint};
  options.lease_ttl = absl::Seconds(2);
  options.key_prefix = kPrefix;
  options.request_timeout = absl::Seconds(2);
  return options;
}

std::unique_ptr<etcd::EtcdTracker> Started(etcd::EtcdTrackerOptions options) {
  absl::StatusOr<std::unique_ptr<etcd::EtcdTracker>> tracker =
      etcd::EtcdTracker::Create(std::move(options));
  EXPECT_TRUE(tracker.ok()) << tracker.status();
  if (!tracker.ok()) return nullptr;
  EXPECT_TRUE((*tracker)->Start().ok());
  return *std::move(tracker);
}

class EtcdTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGE_SKIP_WITHOUT_ETCD();
    absl::StatusOr<TestCerts> certs = TestCerts::Generate();
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = *std::move(certs);
    EtcdProcess::Options tls;
    tls.cert_file = certs_->cert("server");
    tls.key_file = certs_->key("server");
    tls.client_ca_file = certs_->cert("ca");
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start(tls);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
  }
  void TearDown() override {
    if (certs_) certs_->Remove();
  }

  etcd::EtcdTrackerOptions TlsOptions() {
    etcd::EtcdTrackerOptions options = Options(etcd_->endpoint());
    options.tls = true;
    options.tls_ca_file = certs_->cert("ca");
    options.tls_cert_file = certs_->cert("client_cn");
    options.tls_key_file = certs_->key("client_cn");
    return options;
  }

  std::optional<TestCerts> certs_;
  std::unique_ptr<EtcdProcess> etcd_;
};

TEST_F(EtcdTlsTest, ClaimsOverTlsWithAClientCertificate) {
  auto tracker = Started(TlsOptions());
  ASSERT_NE(tracker, nullptr);
  ASSERT_TRUE(WaitFor([&] { return tracker->HasLease(); }));
  ASSERT_TRUE(ClaimSync(*tracker, "peer-1").ok());
  EXPECT_EQ(LookupSync(*tracker, "peer-1").value_or(""), "edge-a");
  absl::StatusOr<std::string> address = Await<absl::StatusOr<std::string>>([&](auto done) {
    tracker->EdgeAddress("edge-a", absl::Now() + absl::Seconds(3), std::move(done));
  });
  EXPECT_EQ(address.value_or(""), "edge-a.example:50051");
  tracker->Shutdown(absl::Now() + absl::Seconds(3));
}

TEST_F(EtcdTlsTest, AServerSignedByAnotherCaIsNotTrusted) {
  etcd::EtcdTrackerOptions options = TlsOptions();
  options.tls_ca_file = certs_->cert("rogue_ca");
  auto tracker = Started(std::move(options));
  ASSERT_NE(tracker, nullptr);
  EXPECT_FALSE(tracker->HasLease());
  absl::StatusOr<PeerClaim> claim = ClaimSync(*tracker, "peer-1");
  EXPECT_EQ(claim.status().code(), absl::StatusCode::kUnavailable) << claim.status();
  tracker->Shutdown(absl::Now() + absl::Seconds(1));
}

TEST_F(EtcdTlsTest, WithoutAClientCertificateEtcdRefuses) {
  etcd::EtcdTrackerOptions options = TlsOptions();
  options.tls_cert_file.clear();
  options.tls_key_file.clear();
  auto tracker = Started(std::move(options));
  ASSERT_NE(tracker, nullptr);
  EXPECT_FALSE(tracker->HasLease());
  EXPECT_FALSE(ClaimSync(*tracker, "peer-1").ok());
  tracker->Shutdown(absl::Now() + absl::Seconds(1));
}

TEST_F(EtcdTlsTest, PlaintextToATlsEtcdFails) {
  auto tracker = Started(Options(etcd_->endpoint()));
  ASSERT_NE(tracker, nullptr);
  EXPECT_FALSE(ClaimSync(*tracker, "peer-1").ok());
  tracker->Shutdown(absl::Now() + absl::Seconds(1));
}

// Keepalives through etcd's HTTP gateway (etcd_gateway.h) verify the
// server's certificate as the gRPC channel does. etcd (3.4) started with
// --client-cert-auth cannot serve its own gateway (its internal connection
// has no client certificate): keepalives then fall back to gRPC.
TEST_F(EtcdTlsTest, WithClientCertificatesKeepalivesFallBackToGrpc) {
  etcd::internal::EtcdClientSecurity security;
  security.tls = true;
  security.ca_file = certs_->cert("ca");
  security.cert_file = certs_->cert("client_cn");
  security.key_file = certs_->key("client_cn");
  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, security, &Logger::Null());
  ASSERT_TRUE(client.ok()) << client.status();
  auto lease = (*client)->LeaseGrantSync(5, absl::Now() + absl::Seconds(3));
  ASSERT_TRUE(lease.ok()) << lease.status();

  etcd::internal::EtcdGatewayTls tls{true, security.ca_file, security.cert_file, security.key_file};
  int64_t ttl = -1;
  grpc::Status gateway = etcd::internal::EtcdGatewayKeepalive(etcd_->endpoint(), tls)
                             .KeepAlive(lease->id(), "", absl::Now() + absl::Seconds(3), &ttl);
  EXPECT_EQ(gateway.error_code(), grpc::StatusCode::UNAVAILABLE) << gateway.error_message();
  for (int i = 0; i < 2; ++i) {  // The second with the gateway left alone.
    absl::StatusOr<int64_t> kept =
        (*client)->LeaseKeepAliveSync(lease->id(), absl::Now() + absl::Seconds(3));
    EXPECT_EQ(kept.value_or(-1), 5) << kept.status();
  }
  (*client)->Shutdown();
}

TEST(EtcdTlsGatewayTest, GatewayKeepalivesVerifyTheServer) {
  EDGE_SKIP_WITHOUT_ETCD();
  absl::StatusOr<TestCerts> certs = TestCerts::Generate();
  ASSERT_TRUE(certs.ok()) << certs.status();
  EtcdProcess::Options server_tls;  // TLS, no client certificates asked for.
  server_tls.cert_file = certs->cert("server");
  server_tls.key_file = certs->key("server");
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start(server_tls);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  etcd::internal::EtcdClientSecurity security;
  security.tls = true;
  security.ca_file = certs->cert("ca");
  auto client =
      etcd::internal::EtcdClient::Create({(*etcd)->endpoint()}, security, &Logger::Null());
  ASSERT_TRUE(client.ok()) << client.status();
  auto lease = (*client)->LeaseGrantSync(5, absl::Now() + absl::Seconds(3));
  ASSERT_TRUE(lease.ok()) << lease.status();

  etcd::internal::EtcdGatewayTls tls;
  tls.enabled = true;
  tls.ca_file = certs->cert("ca");
  int64_t ttl = -1;
  grpc::Status renewed = etcd::internal::EtcdGatewayKeepalive((*etcd)->endpoint(), tls)
                             .KeepAlive(lease->id(), "", absl::Now() + absl::Seconds(3), &ttl);
  ASSERT_TRUE(renewed.ok()) << renewed.error_message();
  EXPECT_EQ(ttl, 5);

  etcd::internal::EtcdGatewayTls rogue = tls;
  rogue.ca_file = certs->cert("rogue_ca");
  grpc::Status refused = etcd::internal::EtcdGatewayKeepalive((*etcd)->endpoint(), rogue)
                             .KeepAlive(lease->id(), "", absl::Now() + absl::Seconds(3), &ttl);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  (*client)->Shutdown();
  certs->Remove();
}

TEST(EtcdTlsOptionsTest, UnreadableFilesAreInvalidArguments) {
  etcd::EtcdTrackerOptions options = Options("127.0.0.1:1");
  options.tls = true;
  options.tls_ca_file = "/nonexistent/ca.pem";
  absl::StatusOr<std::unique_ptr<etcd::EtcdTracker>> tracker = etcd::EtcdTracker::Create(options);
  EXPECT_EQ(tracker.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tracker.status().message()), HasSubstr("/nonexistent/ca.pem"));

  options.tls_ca_file.clear();
  options.tls_cert_file = "/nonexistent/client.pem";
  tracker = etcd::EtcdTracker::Create(options);
  EXPECT_EQ(tracker.status().code(), absl::StatusCode::kInvalidArgument);
}

// etcd with `auth enable`: a root user, and user `edge` with read-write on
// the tracker's prefix only.
class EtcdAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGE_SKIP_WITHOUT_ETCD();
    if (access("/usr/bin/etcdctl", X_OK) != 0) GTEST_SKIP() << "no etcdctl";
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    for (const char* command :
         {"user add root:rootpw", "user add edge:edge-secret", "role add edge-role",
          "role grant-permission edge-role --prefix=true readwrite /sec/",
          "user grant-role edge edge-role", "auth enable"}) {
      ASSERT_EQ(Etcdctl(command), 0) << command;
    }
  }

  int Etcdctl(const std::string& command) {
    std::string line =
        absl::StrCat("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=", etcd_->endpoint(), " ", command,
                     " >/dev/null 2>&1");
    return std::system(line.c_str());
  }

  etcd::EtcdTrackerOptions AuthOptions(const std::string& password = "edge-secret") {
    etcd::EtcdTrackerOptions options = Options(etcd_->endpoint());
    options.username = "edge";
    options.password = password;
    return options;
  }

  // A client of etcd logged in as the tracker's user.
  std::unique_ptr<etcd::internal::EtcdClient> EdgeClient() {
    etcd::internal::EtcdClientSecurity security;
    security.username = "edge";
    security.password = "edge-secret";
    auto client =
        etcd::internal::EtcdClient::Create({etcd_->endpoint()}, security, &Logger::Null());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  std::unique_ptr<EtcdProcess> etcd_;
};

TEST_F(EtcdAuthTest, ClaimsWithAUserAndPassword) {
  auto tracker = Started(AuthOptions());
  ASSERT_NE(tracker, nullptr);
  ASSERT_TRUE(WaitFor([&] { return tracker->HasLease(); }));
  absl::StatusOr<PeerClaim> claim = ClaimSync(*tracker, "peer-1");
  ASSERT_TRUE(claim.ok()) << claim.status();
  EXPECT_EQ(LookupSync(*tracker, "peer-1").value_or(""), "edge-a");
  tracker->Shutdown(absl::Now() + absl::Seconds(3));
}

TEST_F(EtcdAuthTest, AWrongPasswordIsRefused) {
  auto tracker = Started(AuthOptions("not-the-password"));
  ASSERT_NE(tracker, nullptr);
  EXPECT_FALSE(tracker->HasLease());
  absl::StatusOr<PeerClaim> claim = ClaimSync(*tracker, "peer-1");
  EXPECT_FALSE(claim.ok());
  tracker->Shutdown(absl::Now() + absl::Seconds(1));
}

TEST_F(EtcdAuthTest, WithoutCredentialsEtcdRefuses) {
  auto tracker = Started(Options(etcd_->endpoint()));
  ASSERT_NE(tracker, nullptr);
  EXPECT_FALSE(ClaimSync(*tracker, "peer-1").ok());
  tracker->Shutdown(absl::Now() + absl::Seconds(1));
}

// etcd's simple tokens live in its memory: after a restart every token the
// tracker holds is invalid ("invalid auth token"), as an expired one is.
// The tracker logs in again and goes on.
TEST_F(EtcdAuthTest, AnInvalidatedTokenIsRenewed) {
  auto tracker = Started(AuthOptions());
  ASSERT_NE(tracker, nullptr);
  ASSERT_TRUE(ClaimSync(*tracker, "peer-1").ok());
  ASSERT_TRUE(etcd_->Restart().ok());
  // Each call below is sent first with the old token.
  absl::StatusOr<std::string> holder = LookupSync(*tracker, "peer-1");
  EXPECT_TRUE(holder.ok() || absl::IsUnavailable(holder.status())) << holder.status();
  EXPECT_TRUE(WaitFor([&] { return LookupSync(*tracker, "peer-1").value_or("") == "edge-a"; },
                      absl::Seconds(15)));
  EXPECT_TRUE(WaitFor([&] { return ClaimSync(*tracker, "peer-2").ok(); }, absl::Seconds(15)));
  EXPECT_TRUE(WaitFor([&] { return tracker->HasLease(); }));
  tracker->Shutdown(absl::Now() + absl::Seconds(3));
}

// A gateway keepalive carries the token as the gRPC calls do (etcd 3.4
// does not ask for one to renew a lease, so a stale token is not refused
// there), and keepalives go on across an etcd restart, which voids it.
TEST_F(EtcdAuthTest, GatewayKeepalivesCarryTheToken) {
  auto client = EdgeClient();
  ASSERT_NE(client, nullptr);
  auto lease = client->LeaseGrantSync(5, absl::Now() + absl::Seconds(3));
  ASSERT_TRUE(lease.ok()) << lease.status();

  auto auth = etcdserverpb::Auth::NewStub(
      grpc::CreateChannel(etcd_->endpoint(), grpc::InsecureChannelCredentials()));
  etcdserverpb::AuthenticateRequest login;
  login.set_name("edge");
  login.set_password("edge-secret");
  etcdserverpb::AuthenticateResponse token;
  grpc::ClientContext context;
  ASSERT_TRUE(auth->Authenticate(&context, login, &token).ok());

  etcd::internal::EtcdGatewayKeepalive gateway(etcd_->endpoint(), {});
  int64_t ttl = -1;
  grpc::Status renewed =
      gateway.KeepAlive(lease->id(), token.token(), absl::Now() + absl::Seconds(3), &ttl);
  ASSERT_TRUE(renewed.ok()) << renewed.error_message();
  EXPECT_EQ(ttl, 5);

  // etcd's simple tokens die with it; the client's keepalives go on.
  ASSERT_TRUE(etcd_->Restart().ok());
  absl::StatusOr<int64_t> kept =
      client->LeaseKeepAliveSync(lease->id(), absl::Now() + absl::Seconds(5));
  EXPECT_TRUE(kept.ok()) << kept.status();
  EXPECT_GT(kept.value_or(0), 0);
  client->Shutdown();
}

// The history of a lease's end (how survivors find a dead edge's claims) is
// read with the token too: etcd answers a watch of the edge's own prefix,
// and refuses one outside it.
TEST_F(EtcdAuthTest, HistoryReadsCarryTheToken) {
  auto client = EdgeClient();
  ASSERT_NE(client, nullptr);
  auto lease = client->LeaseGrantSync(60, absl::Now() + absl::Seconds(3));
  ASSERT_TRUE(lease.ok()) << lease.status();
  for (const char* key : {"/sec/edges/e", "/sec/peers/p1", "/sec/peers/p2"}) {
    ASSERT_TRUE(client
                    ->TxnSync(etcd::internal::txn::Put(key, "e", lease->id()),
                              absl::Now() + absl::Seconds(3))
                    .ok());
  }
  auto before =
      client->TxnSync(etcd::internal::txn::Get("/sec/edges/e"), absl::Now() + absl::Seconds(3));
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(client->LeaseRevokeSync(lease->id(), absl::Now() + absl::Seconds(3)).ok());

  std::vector<std::string> deleted;
  absl::Status read = client->WatchSync(
      etcd::internal::txn::DeletionsBetween("/sec/edges/", "/sec/peers/",
                                            before->header().revision() + 1),
      absl::Now() + absl::Seconds(5), [&](const etcdserverpb::WatchResponse& batch) {
        for (const mvccpb::Event& event : batch.events()) deleted.push_back(event.kv().key());
        return true;
      });
  ASSERT_TRUE(read.ok()) << read;
  EXPECT_THAT(deleted,
              ::testing::UnorderedElementsAre("/sec/edges/e", "/sec/peers/p1", "/sec/peers/p2"));

  read = client->WatchSync(etcd::internal::txn::DeletionsBetween("/other/edges/", "/other/peers/",
                                                                 before->header().revision() + 1),
                           absl::Now() + absl::Seconds(5),
                           [](const etcdserverpb::WatchResponse&) { return true; });
  EXPECT_EQ(read.code(), absl::StatusCode::kFailedPrecondition) << read;
  EXPECT_THAT(std::string(read.message()), HasSubstr("permission denied")) << read;
  client->Shutdown();
}

// The holder's id goes into a topic name: whatever else etcd holds is an
// error, not an edge.
TEST(EtcdHolderTest, AnInvalidHolderIdIsAnErrorNotAnEdge) {
  EDGE_SKIP_WITHOUT_ETCD();
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  auto client = etcd::internal::EtcdClient::Create({(*etcd)->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok()) << client.status();
  for (const auto& [peer, holder] :
       std::vector<std::pair<std::string, std::string>>{{"peer-slash", "edge/../other-topic"},
                                                        {"peer-space", "edge 1"},
                                                        {"peer-empty", ""},
                                                        {"peer-long", std::string(129, 'e')}}) {
    ASSERT_TRUE(
        (*client)
            ->TxnSync(etcd::internal::txn::Put(absl::StrCat(kPrefix, "peers/", peer), holder, 0),
                      absl::Now() + absl::Seconds(3))
            .ok());
  }
  ASSERT_TRUE(
      (*client)
          ->TxnSync(etcd::internal::txn::Put(absl::StrCat(kPrefix, "peers/peer-ok"), "edge-b", 0),
                    absl::Now() + absl::Seconds(3))
          .ok());
  auto tracker = Started(Options((*etcd)->endpoint()));
  ASSERT_NE(tracker, nullptr);
  for (const char* peer : {"peer-slash", "peer-space", "peer-empty", "peer-long"}) {
    absl::StatusOr<std::string> holder = LookupSync(*tracker, peer);
    EXPECT_EQ(holder.status().code(), absl::StatusCode::kDataLoss)
        << peer << ": " << holder.status();
  }
  EXPECT_EQ(LookupSync(*tracker, "peer-ok").value_or(""), "edge-b");
  absl::StatusOr<std::string> address = Await<absl::StatusOr<std::string>>([&](auto done) {
    tracker->EdgeAddress("edge-b", absl::Now() + absl::Seconds(3), std::move(done));
  });
  EXPECT_TRUE(absl::IsNotFound(address.status())) << address.status();
  tracker->Shutdown(absl::Now() + absl::Seconds(3));
}

}  // namespace
}  // namespace edge::testing
