// FakePeerTransport: peers without gRPC, for tests of the core and of
// services that embed libedge.
//
// Each Connect() opens a simulated stream. All handler and observer callbacks
// run on the transport's own thread, in order, as a real transport's would;
// Flush() waits until everything posted so far has run, which makes tests
// deterministic without sleeps.
//
//   edge::testing::FakePeerTransport transport;
//   ... an Edge started on &transport ...
//   auto peer = transport.Connect("peer-1");
//   peer->Send(message);
//   transport.Flush();
//   EXPECT_TRUE(peer->WaitForReceived(1, absl::Seconds(5)));
#ifndef EDGE_TESTING_FAKE_PEER_TRANSPORT_H_
#define EDGE_TESTING_FAKE_PEER_TRANSPORT_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/peer_transport.h"

namespace edge::testing {

class FakePeerTransport final : public PeerTransport {
 public:
  class Peer;

  FakePeerTransport();
  ~FakePeerTransport() override;

  absl::Status Start(PeerStreamHandler* handler) override;
  // Cancels every open stream (the peer sees CANCELLED), waits for every
  // OnEnd, then stops the transport's thread.
  void Shutdown() override;

  // Opens a stream as a peer presenting `info` would.
  std::shared_ptr<Peer> Connect(PeerCallInfo info);
  // The same with `peer_id` metadata.
  std::shared_ptr<Peer> Connect(const std::string& peer_id);

  // A WebRTCOperations call; waits up to `timeout` for the handler's reply
  // (DEADLINE_EXCEEDED if none came).
  absl::StatusOr<PeerWebRTCMessage> CallWebRtc(PeerCallInfo caller, EdgeWebRTCMessage request,
                                               absl::Duration timeout = absl::Seconds(10));

  // Waits until every callback posted before this call has run.
  void Flush();

  // Runs `fn` on the transport's thread after what is already posted.
  void Post(absl::AnyInvocable<void()> fn);

 private:
  class Stream;
  void Loop();

  absl::Mutex mu_;
  PeerStreamHandler* handler_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<absl::AnyInvocable<void()>> work_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::weak_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The peer's end of one simulated stream.
class FakePeerTransport::Peer {
 public:
  // The admission decision: unset until the handler decided.
  std::optional<absl::Status> admission();
  bool WaitForAdmission(absl::Duration timeout = absl::Seconds(10));

  // Sends as the peer. Messages reach the observer in order, once the stream
  // is admitted and while reading is not paused by the handler.
  void Send(PeerMessage message);
  // Messages sent but not yet handed to the observer.
  size_t unread();

  // Every message the edge wrote to this peer so far.
  std::vector<EdgeMessage> Received();
  bool WaitForReceived(size_t count, absl::Duration timeout = absl::Seconds(10));

  // While stopped, the peer reads nothing: edge writes stay outstanding,
  // as with a peer that stopped reading its socket.
  void StopReading();
  void ResumeReading();

  // The peer goes away (closes or loses the connection): the stream ends
  // with CANCELLED, an outstanding write fails.
  void Close();

  // The status the peer saw the stream end with; unset while open.
  std::optional<absl::Status> final_status();
  bool WaitForEnd(absl::Duration timeout = absl::Seconds(10));

  const PeerCallInfo& info() const;

 private:
  friend class FakePeerTransport;
  explicit Peer(std::shared_ptr<Stream> stream) : stream_(std::move(stream)) {}
  std::shared_ptr<Stream> stream_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTING_FAKE_PEER_TRANSPORT_H_
