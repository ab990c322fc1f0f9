// The PeerTransport contract run against FakePeerTransport.
#include <memory>

#include "contract/peer_transport/peer_transport_contract.h"
#include "edge/testing/fake_peer_transport.h"

namespace edge::testing {
namespace {

class FakeContractPeer final : public ContractPeer {
 public:
  explicit FakeContractPeer(std::shared_ptr<testing::FakePeerTransport::Peer> peer)
      : peer_(std::move(peer)) {}
  void Send(const PeerMessage& message) override { peer_->Send(message); }
  bool WaitForReceived(size_t count, absl::Duration timeout) override {
    return peer_->WaitForReceived(count, timeout);
  }
  std::vector<EdgeMessage> Received() override { return peer_->Received(); }
  void Close() override { peer_->Close(); }
  std::optional<absl::Status> WaitForEnd(absl::Duration timeout) override {
    peer_->WaitForEnd(timeout);
    return peer_->final_status();
  }

 private:
  std::shared_ptr<testing::FakePeerTransport::Peer> peer_;
};

class FakeDriver final : public ContractDriver {
 public:
  PeerTransport& transport() override { return transport_; }
  std::unique_ptr<ContractPeer> Connect(const std::string& peer_id) override {
    return std::make_unique<FakeContractPeer>(transport_.Connect(peer_id));
  }

 private:
  testing::FakePeerTransport transport_;
};

struct FakeDriverFactory {
  static std::unique_ptr<ContractDriver> Make() { return std::make_unique<FakeDriver>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Fake, PeerTransportContractTest,
                               ::testing::Types<FakeDriverFactory>);

}  // namespace
}  // namespace edge::testing
