// The PeerTransport contract run against GrpcPeerTransport, with real gRPC
// clients as peers.
#include <memory>

#include "contract/peer_transport/peer_transport_contract.h"
#include "edge/clock.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "support/test_peer.h"

namespace edge::testing {
namespace {

TestPeer::Options PeerOptions(const std::string& peer_id) {
  TestPeer::Options options;
  options.peer_id = peer_id;
  return options;
}

class GrpcContractPeer final : public ContractPeer {
 public:
  GrpcContractPeer(std::shared_ptr<grpc::Channel> channel, const std::string& peer_id)
      : peer_(std::move(channel), PeerOptions(peer_id)) {}
  void Send(const PeerMessage& message) override { peer_.Send(message); }
  bool WaitForReceived(size_t count, absl::Duration timeout) override {
    return peer_.WaitForReceived(count, timeout);
  }
  std::vector<EdgeMessage> Received() override { return peer_.Received(); }
  void Close() override { peer_.Cancel(); }
  std::optional<absl::Status> WaitForEnd(absl::Duration timeout) override {
    auto end = peer_.WaitForEnd(timeout);
    if (!end.has_value()) return std::nullopt;
    return FromGrpcStatus(*end);
  }

 private:
  TestPeer peer_;
};

class GrpcDriver final : public ContractDriver {
 public:
  GrpcDriver() : clock_(NewRealClock()) {
    grpc_transport::GrpcPeerTransportOptions options;
    options.address = "127.0.0.1:0";
    options.clock = clock_.get();
    options.shutdown_grace = absl::Milliseconds(500);
    auto transport = grpc_transport::GrpcPeerTransport::Create(options);
    if (transport.ok()) transport_ = *std::move(transport);
  }
  PeerTransport& transport() override { return *transport_; }
  std::unique_ptr<ContractPeer> Connect(const std::string& peer_id) override {
    if (channel_ == nullptr) channel_ = TestPeer::NewChannel(transport_->port());
    return std::make_unique<GrpcContractPeer>(channel_, peer_id);
  }
  bool valid() const { return transport_ != nullptr; }

 private:
  std::unique_ptr<Clock> clock_;  // Outlives the transport.
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
  std::shared_ptr<grpc::Channel> channel_;
};

struct GrpcDriverFactory {
  static std::unique_ptr<ContractDriver> Make() {
    auto driver = std::make_unique<GrpcDriver>();
    if (!driver->valid()) return nullptr;
    return driver;
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Grpc, PeerTransportContractTest,
                               ::testing::Types<GrpcDriverFactory>);

}  // namespace
}  // namespace edge::testing
