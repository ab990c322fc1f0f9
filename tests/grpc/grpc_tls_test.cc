// GrpcPeerTransport with TLS: certificates made at test time with openssl.
#include <memory>
#include <optional>
#include <string>

#include "contract/peer_transport/recording_handler.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/testing/fake_clock.h"
#include "grpc/grpc_test_util.h"
#include "grpc/listener_probe.h"
#include "grpc/test_certs.h"
#include "gtest/gtest.h"
#include "support/test_peer.h"

namespace edge {
namespace {

using ::edge::testing::ChannelOptions;
using ::edge::testing::ClientTls;
using ::edge::testing::NumberedEdgeMessage;
using ::edge::testing::NumberedPeerMessage;
using ::edge::testing::ReadTextFile;
using ::edge::testing::RecordingHandler;
using ::edge::testing::TestCerts;
using ::edge::testing::TestPeer;

class GrpcTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto certs = TestCerts::Generate();
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = new TestCerts(*std::move(certs));
  }
  static void TearDownTestSuite() {
    if (certs_ != nullptr) certs_->Remove();
    delete certs_;
    certs_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(certs_, nullptr); }

  grpc_transport::GrpcPeerTransportOptions Options(bool verify_clients) {
    grpc_transport::GrpcPeerTransportOptions options;
    options.address = "127.0.0.1:0";
    options.clock = &clock_;
    options.shutdown_grace = absl::Milliseconds(500);
    options.cert_file = certs_->cert("server");
    options.key_file = certs_->key("server");
    if (verify_clients) options.client_ca_file = certs_->cert("ca");
    return options;
  }

  void StartTransport(grpc_transport::GrpcPeerTransportOptions options) {
    auto transport = grpc_transport::GrpcPeerTransport::Create(std::move(options));
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
    ASSERT_TRUE(transport_->tls());
    ASSERT_TRUE(transport_->Start(&handler_).ok());
  }

  // TLS client options trusting the test CA, with the named client
  // certificate ("" for none).
  ChannelOptions Tls(const std::string& client) {
    ClientTls tls;
    tls.root_ca = ReadTextFile(certs_->cert("ca")).value();
    if (!client.empty()) {
      tls.cert_chain = ReadTextFile(certs_->cert(client)).value();
      tls.private_key = ReadTextFile(certs_->key(client)).value();
    }
    return ChannelOptions{tls, absl::ZeroDuration()};
  }

  std::unique_ptr<TestPeer> Connect(const ChannelOptions& channel, const std::string& peer_id) {
    TestPeer::Options options;
    options.peer_id = peer_id;
    return std::make_unique<TestPeer>(TestPeer::NewChannel(transport_->port(), channel),
                                      std::move(options));
  }

  // Sends one message and waits until the stream `index` received it.
  void ExpectAdmittedAndWorking(TestPeer& peer, size_t index) {
    ASSERT_TRUE(handler_.WaitForStreams(index + 1));
    ASSERT_TRUE(peer.Send(NumberedPeerMessage(static_cast<int>(index))));
    auto observer = handler_.observer(index);
    ASSERT_TRUE(observer->WaitForMessages(1));
    EXPECT_EQ(testing::WriteAndWait(*handler_.stream(index), NumberedEdgeMessage(0)),
              std::optional<bool>(true));
    ASSERT_TRUE(peer.WaitForReceived(observer->message_count()));
  }

  static std::string ServerCommonName(const TestPeer& peer) {
    auto auth = peer.auth_context();
    if (auth == nullptr) return "";
    for (const auto& value : auth->FindPropertyValues("x509_common_name")) {
      return std::string(value.data(), value.size());
    }
    return "";
  }

  static TestCerts* certs_;
  testing::FakeClock clock_;
  RecordingHandler handler_;
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
};

TestCerts* GrpcTlsTest::certs_ = nullptr;

TEST_F(GrpcTlsTest, PlaintextClientCannotTalkToATlsServer) {
  StartTransport(Options(false));
  auto peer = Connect(ChannelOptions{}, "peer-1");
  auto end = peer->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(handler_.stream_count(), 0u);
}

TEST_F(GrpcTlsTest, TlsClientWithoutCertificateIsServedWhenClientsAreNotVerified) {
  StartTransport(Options(false));
  auto peer = Connect(Tls(""), "peer-1");
  ExpectAdmittedAndWorking(*peer, 0);
  EXPECT_EQ(handler_.info(0).cert_identity, "");
  EXPECT_EQ(ServerCommonName(*peer), "edge-one");
}

TEST_F(GrpcTlsTest, ClientCaRefusesClientsWithoutAValidCertificate) {
  StartTransport(Options(true));
  for (const char* client : {"", "client_rogue"}) {
    auto peer = Connect(Tls(client), "peer-1");
    auto end = peer->WaitForEnd();
    ASSERT_TRUE(end.has_value()) << client;
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE) << client;
  }
  EXPECT_EQ(handler_.stream_count(), 0u);
}

TEST_F(GrpcTlsTest, CertificateIdentityIsThePeerUriAndTheCommonNameOnlyWhenOptedIn) {
  StartTransport(Options(true));
  auto by_cn = Connect(Tls("client_cn"), "peer-cn");
  ExpectAdmittedAndWorking(*by_cn, 0);
  // Any certificate of the client CA has a CN (a backend's too): it names no
  // peer unless the CN fallback is asked for.
  EXPECT_EQ(handler_.info(0).cert_identity, "");
  auto by_uri = Connect(Tls("client_uri"), "peer-uri");
  ExpectAdmittedAndWorking(*by_uri, 1);
  EXPECT_EQ(handler_.info(1).cert_identity, "peer-uri");
}

TEST_F(GrpcTlsTest, CertificateIdentityIsTheCommonNameOrThePeerUri) {
  grpc_transport::GrpcPeerTransportOptions options = Options(true);
  options.identity_cn_fallback = true;
  StartTransport(options);
  auto by_cn = Connect(Tls("client_cn"), "peer-cn");
  ExpectAdmittedAndWorking(*by_cn, 0);
  EXPECT_EQ(handler_.info(0).cert_identity, "peer-cn");
  auto by_uri = Connect(Tls("client_uri"), "peer-uri");
  ExpectAdmittedAndWorking(*by_uri, 1);
  EXPECT_EQ(handler_.info(1).cert_identity, "peer-uri");
}

TEST_F(GrpcTlsTest, ReloadServesNewCertificatesToNewConnectionsAndKeepsConnectedPeers) {
  const std::string live_cert = certs_->dir() + "/live.pem";
  const std::string live_key = certs_->dir() + "/live.key";
  ASSERT_TRUE(testing::CopyFile(certs_->cert("server"), live_cert).ok());
  ASSERT_TRUE(testing::CopyFile(certs_->key("server"), live_key).ok());
  grpc_transport::GrpcPeerTransportOptions options = Options(true);
  options.cert_file = live_cert;
  options.key_file = live_key;
  StartTransport(options);

  auto before = Connect(Tls("client_cn"), "peer-before");
  ExpectAdmittedAndWorking(*before, 0);
  EXPECT_EQ(ServerCommonName(*before), "edge-one");

  ASSERT_TRUE(testing::CopyFile(certs_->cert("server2"), live_cert).ok());
  ASSERT_TRUE(testing::CopyFile(certs_->key("server2"), live_key).ok());
  ASSERT_TRUE(transport_->ReloadCredentials().ok());

  auto after = Connect(Tls("client_uri"), "peer-after");
  ExpectAdmittedAndWorking(*after, 1);
  EXPECT_EQ(ServerCommonName(*after), "edge-two");

  // The peer connected before the reload still talks both ways.
  ASSERT_TRUE(before->Send(NumberedPeerMessage(7)));
  ASSERT_TRUE(handler_.observer(0)->WaitForMessages(2));
  EXPECT_EQ(testing::WriteAndWait(*handler_.stream(0), NumberedEdgeMessage(7)),
            std::optional<bool>(true));
  ASSERT_TRUE(before->WaitForReceived(2));
  EXPECT_EQ(handler_.observer(0)->end_count(), 0);

  // A broken file is refused and the current credentials stay in use.
  ASSERT_TRUE(testing::CopyFile(certs_->key("server"), live_key).ok());  // Wrong key.
  absl::Status status = transport_->ReloadCredentials();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  auto third = Connect(Tls("client_cn"), "peer-third");
  ExpectAdmittedAndWorking(*third, 2);
  EXPECT_EQ(ServerCommonName(*third), "edge-two");
}

TEST_F(GrpcTlsTest, ListenerProbeSeesATlsListenerAccept) {
  grpc_transport::GrpcPeerTransportOptions options = Options(true);
  options.listener_probe_interval = absl::Milliseconds(50);
  StartTransport(options);
  // A probe that got no answer would fail within its timeout; the TLS
  // listener answers the probe's ClientHello.
  EXPECT_TRUE(
      grpc_transport::internal::ListenerProbe::ProbeOnce(
          {"127.0.0.1", transport_->port(), /*tls=*/true, absl::Seconds(1), absl::Seconds(5), 2})
          .ok());
  EXPECT_TRUE(transport_->listener_status().ok());
}

TEST_F(GrpcTlsTest, CreateRejectsUnreadableOrMismatchedFiles) {
  grpc_transport::GrpcPeerTransportOptions options = Options(true);
  options.cert_file = certs_->dir() + "/missing.pem";
  auto missing = grpc_transport::GrpcPeerTransport::Create(options);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("missing.pem"), absl::string_view::npos);

  options = Options(true);
  options.key_file = certs_->key("server2");
  auto mismatched = grpc_transport::GrpcPeerTransport::Create(options);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);

  options = Options(true);
  options.client_ca_file = certs_->key("ca");  // A key, not a certificate.
  auto bad_ca = grpc_transport::GrpcPeerTransport::Create(options);
  ASSERT_FALSE(bad_ca.ok());
  EXPECT_EQ(bad_ca.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edge
