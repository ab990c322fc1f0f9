// libFuzzer target: what peers and backends send, through a whole Edge on
// the in-process fakes (admission, peer sessions, events, acknowledgements,
// command routing and dead letters, WebRTC relaying on the stream, timeouts
// and shutdown).
//
// The input is a script of steps, each `op len payload[len]`:
//   op % 6 == 0  peer k (op / 8 % 3) sends the PeerMessage parsed from payload
//   op % 6 == 1  peer k sends the payload itself as an unparsed PeerMessage's
//                request_id with an empty catalog announcement (keepalive)
//   op % 6 == 2  the backend produces payload as a command for peer k
//   op % 6 == 3  peer k closes its stream
//   op % 6 == 4  a stream opens with payload as its peer_id metadata
//   op % 6 == 5  time advances payload[0] seconds (peer timeouts, expiries)
// Peers connect on first use. After each step the transport is flushed.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "edge/edge.h"
#include "edge/testing/fake_clock.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_peer_transport.h"
#include "edge/testing/fake_tracker.h"

namespace {

constexpr int kPeers = 3;
constexpr char kCommands[] = "edge-commands-edge-1";

edge::EdgeOptions FuzzOptions() {
  edge::EdgeOptions o;
  o.edge_id = "edge-1";
  o.topics.commands = kCommands;
  o.topics.deadletter = "edge-commands-edge-1.deadletter";
  o.peer_send_queue_max = 8;        // slow-peer handling is reachable
  o.max_message_bytes = 64 * 1024;  // and the command size limit
  o.peer_max_messages_per_sec = 50;
  o.webrtc_reply_timeout = absl::Seconds(2);
  return o;
}

class Run {
 public:
  Run() : bus_(Options()) {}

  bool Start() {
    auto edge =
        edge::Edge::Create(FuzzOptions(), edge::EdgeParts{&transport_, &bus_, &tracker_, &clock_});
    if (!edge.ok()) return false;
    edge_ = std::move(*edge);
    return edge_->Start().ok();
  }

  void Step(uint8_t op, absl::string_view payload) {
    int k = (op / 8) % kPeers;
    switch (op % 6) {
      case 0: {
        edge::PeerMessage message;
        if (!message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
        Peer(k)->Send(std::move(message));
        break;
      }
      case 1: {
        edge::PeerMessage keepalive;
        keepalive.set_request_id(std::string(payload));
        keepalive.mutable_catalog_announcement();
        Peer(k)->Send(std::move(keepalive));
        break;
      }
      case 2:
        (void)bus_.Produce(kCommands, PeerId(k), std::string(payload));
        break;
      case 3:
        if (peers_[k] != nullptr) peers_[k]->Close();
        peers_[k] = nullptr;
        break;
      case 4: {
        edge::PeerCallInfo info;
        info.has_peer_id = !payload.empty();
        info.peer_id = std::string(payload);
        strangers_.push_back(transport_.Connect(std::move(info)));
        break;
      }
      case 5:
        clock_.Advance(absl::Seconds(payload.empty() ? 1 : static_cast<uint8_t>(payload[0])));
        break;
    }
    transport_.Flush();
  }

  void Finish() {
    edge_->Shutdown(clock_.Now() + absl::Seconds(5));
    transport_.Shutdown();
  }

 private:
  static edge::testing::FakeMessageBusOptions Options() {
    edge::testing::FakeMessageBusOptions o;
    o.capacity = 16;  // saturation and backpressure are reachable
    return o;
  }
  static std::string PeerId(int k) { return absl::StrCat("peer-", k); }

  std::shared_ptr<edge::testing::FakePeerTransport::Peer> Peer(int k) {
    if (peers_[k] == nullptr) peers_[k] = transport_.Connect(PeerId(k));
    return peers_[k];
  }

  edge::testing::FakeClock clock_;
  edge::testing::FakePeerTransport transport_;
  edge::testing::FakeTrackerCluster cluster_;
  edge::testing::FakeTracker tracker_{&cluster_, "edge-1"};
  edge::testing::FakeMessageBus bus_;
  std::unique_ptr<edge::Edge> edge_;
  std::array<std::shared_ptr<edge::testing::FakePeerTransport::Peer>, kPeers> peers_;
  std::vector<std::shared_ptr<edge::testing::FakePeerTransport::Peer>> strangers_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Run run;
  if (!run.Start()) std::abort();
  size_t at = 0;
  for (int steps = 0; at + 2 <= size && steps < 64; ++steps) {
    uint8_t op = data[at];
    size_t length = std::min<size_t>(data[at + 1], size - at - 2);
    run.Step(op, absl::string_view(reinterpret_cast<const char*>(data) + at + 2, length));
    at += 2 + length;
  }
  run.Finish();
  return 0;
}
