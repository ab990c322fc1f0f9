// The PeerTransport contract (edge/peer_transport.h), as a typed test suite
// run against every implementation through a small driver:
//
//   ContractDriver  makes the transport under test and connects peers to it;
//   ContractPeer    is one peer: send, receive, go away, see the final status.
//
// An implementation's test file defines a driver factory type with
// `static std::unique_ptr<ContractDriver> Make()` and instantiates:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Grpc, PeerTransportContractTest,
//                                  ::testing::Types<GrpcDriverFactory>);
#ifndef EDGE_TESTS_CONTRACT_PEER_TRANSPORT_PEER_TRANSPORT_CONTRACT_H_
#define EDGE_TESTS_CONTRACT_PEER_TRANSPORT_PEER_TRANSPORT_CONTRACT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "contract/peer_transport/recording_handler.h"
#include "edge/peer_transport.h"
#include "gtest/gtest.h"

namespace edge::testing {

class ContractPeer {
 public:
  virtual ~ContractPeer() = default;
  virtual void Send(const PeerMessage& message) = 0;
  virtual bool WaitForReceived(size_t count, absl::Duration timeout) = 0;
  virtual std::vector<EdgeMessage> Received() = 0;
  // The peer goes away (cancels, or its connection drops).
  virtual void Close() = 0;
  // The status the peer saw the stream end with; nullopt while open.
  virtual std::optional<absl::Status> WaitForEnd(absl::Duration timeout) = 0;
};

class ContractDriver {
 public:
  virtual ~ContractDriver() = default;
  virtual PeerTransport& transport() = 0;
  // Opens a stream with `peer_id` metadata.
  virtual std::unique_ptr<ContractPeer> Connect(const std::string& peer_id) = 0;
};

// How long a test watches for something that must NOT happen.
inline constexpr absl::Duration kContractQuietPeriod = absl::Milliseconds(300);
inline constexpr absl::Duration kContractTimeout = absl::Seconds(10);

inline PeerMessage ContractPeerMessage(int i) {
  PeerMessage message;
  message.set_request_id(absl::StrCat("p", i));
  return message;
}

inline EdgeMessage ContractEdgeMessage(int i) {
  EdgeMessage message;
  message.set_request_id(absl::StrCat("e", i));
  message.set_edge_id("edge-contract");
  return message;
}

template <typename DriverFactory>
class PeerTransportContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    driver_ = DriverFactory::Make();
    ASSERT_NE(driver_, nullptr);
    ASSERT_TRUE(driver_->transport().Start(&handler_).ok());
  }
  void TearDown() override {
    if (driver_ != nullptr) driver_->transport().Shutdown();
    for (auto& observer : handler_.observers()) {
      EXPECT_LE(observer->end_count(), 1);
      EXPECT_EQ(observer->violations(), 0);
    }
  }

  std::unique_ptr<ContractPeer> ConnectAdmitted(const std::string& peer_id, size_t index) {
    auto peer = driver_->Connect(peer_id);
    EXPECT_TRUE(handler_.WaitForStreams(index + 1, kContractTimeout));
    return peer;
  }

  RecordingHandler handler_;
  std::unique_ptr<ContractDriver> driver_;
};

TYPED_TEST_SUITE_P(PeerTransportContractTest);

TYPED_TEST_P(PeerTransportContractTest, AdmittedStreamSeesPeerIdAndCarriesMessagesInOrder) {
  auto peer = this->ConnectAdmitted("peer-a", 0);
  EXPECT_TRUE(this->handler_.info(0).has_peer_id);
  EXPECT_EQ(this->handler_.info(0).peer_id, "peer-a");
  constexpr int kCount = 20;
  for (int i = 0; i < kCount; ++i) peer->Send(ContractPeerMessage(i));
  auto observer = this->handler_.observer(0);
  ASSERT_TRUE(observer->WaitForMessages(kCount, kContractTimeout));
  auto messages = observer->messages();
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(messages[i].request_id(), absl::StrCat("p", i));

  std::vector<EdgeMessage> out;
  for (int i = 0; i < kCount; ++i) out.push_back(ContractEdgeMessage(i));
  EXPECT_EQ(WriteAll(*this->handler_.stream(0), out, kContractTimeout), out.size());
  ASSERT_TRUE(peer->WaitForReceived(kCount, kContractTimeout));
  auto received = peer->Received();
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(received[i].request_id(), absl::StrCat("e", i));
  EXPECT_EQ(observer->end_count(), 0);
}

TYPED_TEST_P(PeerTransportContractTest, RejectedStreamEndsWithExactlyThatStatus) {
  this->handler_.Reject(absl::AlreadyExistsError("peer-a is connected to edge-2"));
  auto peer = this->driver_->Connect("peer-a");
  auto end = peer->WaitForEnd(kContractTimeout);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(end->message(), "peer-a is connected to edge-2");
  EXPECT_TRUE(this->handler_.observers().empty());
}

TYPED_TEST_P(PeerTransportContractTest, PausedReadingDeliversNothingUntilResumed) {
  this->handler_.set_pause_new_streams(true);
  auto peer = this->ConnectAdmitted("peer-a", 0);
  auto observer = this->handler_.observer(0);
  for (int i = 0; i < 3; ++i) peer->Send(ContractPeerMessage(i));
  ASSERT_TRUE(observer->WaitForMessages(1, kContractTimeout));
  EXPECT_FALSE(observer->WaitForMessages(2, kContractQuietPeriod));
  observer->set_pause(false);
  this->handler_.stream(0)->ResumeReading();
  ASSERT_TRUE(observer->WaitForMessages(3, kContractTimeout));
  EXPECT_EQ(observer->messages()[2].request_id(), "p2");
}

TYPED_TEST_P(PeerTransportContractTest, FinishStatusReachesThePeerAfterTheWrite) {
  auto peer = this->ConnectAdmitted("peer-a", 0);
  auto stream = this->handler_.stream(0);
  auto observer = this->handler_.observer(0);
  std::optional<bool> write_ok = WriteAndWait(*stream, ContractEdgeMessage(1), kContractTimeout);
  stream->Finish(absl::AbortedError("kicked"));
  auto end = peer->WaitForEnd(kContractTimeout);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code(), absl::StatusCode::kAborted);
  EXPECT_EQ(end->message(), "kicked");
  EXPECT_EQ(write_ok, std::optional<bool>(true));
  ASSERT_EQ(peer->Received().size(), 1u);
  ASSERT_TRUE(observer->WaitForEnd(kContractTimeout));
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kAborted);
}

TYPED_TEST_P(PeerTransportContractTest, PeerLeavingEndsTheStreamOnceAndLaterWritesFail) {
  auto peer = this->ConnectAdmitted("peer-a", 0);
  auto stream = this->handler_.stream(0);
  auto observer = this->handler_.observer(0);
  peer->Send(ContractPeerMessage(0));
  ASSERT_TRUE(observer->WaitForMessages(1, kContractTimeout));
  peer->Close();
  ASSERT_TRUE(observer->WaitForEnd(kContractTimeout));
  EXPECT_EQ(observer->end_status()->code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(WriteAndWait(*stream, ContractEdgeMessage(2), kContractTimeout),
            std::optional<bool>(false));
  stream->Finish(absl::OkStatus());
  stream->ResumeReading();
  this->driver_->transport().Shutdown();
  EXPECT_EQ(observer->end_count(), 1);
}

TYPED_TEST_P(PeerTransportContractTest, AdmissionAfterThePeerLeftStillEndsTheObserver) {
  this->handler_.Hold();
  auto peer = this->ConnectAdmitted("peer-a", 0);
  peer->Close();
  ASSERT_TRUE(peer->WaitForEnd(kContractTimeout).has_value());
  auto observer = this->handler_.AdmitHeld(0);
  ASSERT_TRUE(observer->WaitForEnd(kContractTimeout));
  EXPECT_EQ(observer->end_count(), 1);
}

TYPED_TEST_P(PeerTransportContractTest, ShutdownEndsEveryStream) {
  std::vector<std::unique_ptr<ContractPeer>> peers;
  for (int i = 0; i < 3; ++i) peers.push_back(this->ConnectAdmitted(absl::StrCat("p-", i), i));
  this->driver_->transport().Shutdown();
  // Shutdown returns once every observer saw its end.
  for (auto& observer : this->handler_.observers()) EXPECT_EQ(observer->end_count(), 1);
  for (auto& peer : peers) {
    auto end = peer->WaitForEnd(kContractTimeout);
    ASSERT_TRUE(end.has_value());
    EXPECT_FALSE(end->ok());
  }
  this->driver_->transport().Shutdown();  // Idempotent.
}

REGISTER_TYPED_TEST_SUITE_P(PeerTransportContractTest,
                            AdmittedStreamSeesPeerIdAndCarriesMessagesInOrder,
                            RejectedStreamEndsWithExactlyThatStatus,
                            PausedReadingDeliversNothingUntilResumed,
                            FinishStatusReachesThePeerAfterTheWrite,
                            PeerLeavingEndsTheStreamOnceAndLaterWritesFail,
                            AdmissionAfterThePeerLeftStillEndsTheObserver, ShutdownEndsEveryStream);

}  // namespace edge::testing

#endif  // EDGE_TESTS_CONTRACT_PEER_TRANSPORT_PEER_TRANSPORT_CONTRACT_H_
