// TestPeer: a real gRPC peer for tests, on the generated PeerEdgeService
// stubs, speaking to an edge over TCP exactly as the Giggityflix peers do
// (contract §1): `peer_id` metadata, one AsyncOperations stream, replies
// correlated by request_id.
//
// A reader thread collects every EdgeMessage the edge writes, and the final
// status. Optionally it answers commands like a real peer (auto_answer),
// reads slowly (read_interval: a peer that lags behind), or starts reading
// only when told (a peer that stopped reading). Channels may use TLS and
// client keepalives (ChannelOptions), for the transport's own tests.
//
//   edge::testing::TestPeer::Options options;
//   options.peer_id = "peer-1";
//   auto peer = edge::testing::TestPeer::Connect(edged->grpc_address(),
//   options); ASSERT_TRUE(peer.ok()) << peer.status();       // admitted
//   (*peer)->Send(message);
//   ASSERT_TRUE((*peer)->WaitForAck(message.request_id()));
//
// Thread-safe.
#ifndef EDGE_TESTS_SUPPORT_TEST_PEER_H_
#define EDGE_TESTS_SUPPORT_TEST_PEER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"

namespace edge::testing {

// Client TLS material (PEM contents); empty cert/key: no client certificate.
struct ClientTls {
  std::string root_ca;
  std::string cert_chain;
  std::string private_key;
};

struct ChannelOptions {
  // Unset: plaintext. Set: TLS, checking the server name "localhost".
  std::optional<ClientTls> tls;
  // Client keepalive pings at this interval (0: gRPC's default, none).
  absl::Duration keepalive_time = absl::ZeroDuration();
  // When > 0: the HTTP/2 receive window is fixed at this many bytes (no
  // BDP-driven growth), so that a lagging peer holds little unread data
  // and the edge's writes wait. 0: gRPC's default, which grows to
  // megabytes.
  int receive_window_bytes = 0;
};

class TestPeer {
 public:
  using EdgeMessage = giggityflix_grpc_peer::EdgeMessage;
  using PeerMessage = giggityflix_grpc_peer::PeerMessage;

  struct Options {
    std::optional<std::string> peer_id;  // unset: no `peer_id` metadata
    // Answer commands as a real peer does: catalog_announcement_request with
    // `catalog`, file_delete_request with a successful file_delete_response
    // per catalog id, file_hash_request with a file_hash_response holding
    // "<type>-of-<catalog_id>" per hash type. Each reply carries the
    // command's request_id.
    bool auto_answer = false;
    std::vector<std::string> catalog;
    // Pause before reading each message (a slow peer).
    absl::Duration read_interval = absl::ZeroDuration();
    // false: read nothing until StartReading() (a peer that stopped reading).
    bool read = true;
    // Connect(): ChannelOptions::receive_window_bytes of its channel.
    int receive_window_bytes = 0;
    // Connect(): how long to wait for admission.
    absl::Duration admission_timeout = absl::Seconds(10);
  };

  // A channel of its own (no connection shared with other channels) to
  // `address` ("host:port"), without message size limits.
  static std::shared_ptr<grpc::Channel> NewChannel(const std::string& address,
                                                   const ChannelOptions& options = {});
  // The same to 127.0.0.1:`port`.
  static std::shared_ptr<grpc::Channel> NewChannel(int port, const ChannelOptions& options = {});

  // Opens the stream and returns at once; the edge's verdict comes later
  // (WaitForEnd, or the first message).
  TestPeer(std::shared_ptr<grpc::Channel> channel, Options options);
  // Opens the stream and waits until the edge admitted it: sends a
  // keepalive (an empty catalog_announcement with a fresh request_id) and
  // waits for its ack. When the edge refuses the peer, returns the status
  // the stream ended with (UNAVAILABLE, ALREADY_EXISTS, ...). With
  // read = false, admission is not waited for.
  static absl::StatusOr<std::unique_ptr<TestPeer>> Connect(const std::string& address,
                                                           Options options);
  // What Connect() waits for, for a peer made with the constructor: OK once
  // admitted, else the status the stream ended with, or DEADLINE_EXCEEDED.
  // Needs the reader running (read = true or StartReading()).
  absl::Status AwaitAdmission(absl::Duration timeout = absl::Seconds(10));

  TestPeer(const TestPeer&) = delete;
  TestPeer& operator=(const TestPeer&) = delete;
  // Cancels the stream if still open and waits for the reader to finish.
  ~TestPeer();

  const std::string& peer_id() const { return peer_id_; }

  // Blocking write (gRPC flow control may hold it); false once the stream
  // is broken or half-closed.
  bool Send(const PeerMessage& message);
  // Sends a keepalive (empty catalog_announcement) with `request_id`.
  bool SendKeepalive(const std::string& request_id);
  // Half-closes: the peer sends nothing more (the edge then ends the call).
  void HalfClose();
  // Cancels the call, as a peer that goes away.
  void Cancel();
  void StartReading();

  // Everything received so far, in order.
  std::vector<EdgeMessage> Received();
  // Received messages with a payload (commands), in order.
  std::vector<EdgeMessage> Commands();
  // How many messages were received.
  size_t ReceivedCount();

  // Waits until at least `count` messages were received.
  bool WaitForReceived(size_t count, absl::Duration timeout = absl::Seconds(10));
  // Waits until `done(Received())` holds.
  bool WaitUntil(const std::function<bool(const std::vector<EdgeMessage>&)>& done,
                 absl::Duration timeout = absl::Seconds(10));
  // The first received message matching `match`, waiting up to `timeout`.
  std::optional<EdgeMessage> WaitForMessage(const std::function<bool(const EdgeMessage&)>& match,
                                            absl::Duration timeout = absl::Seconds(10));
  // Waits for the acknowledgement of `request_id` (a payload-less message).
  bool WaitForAck(const std::string& request_id, absl::Duration timeout = absl::Seconds(10));
  // Whether an acknowledgement of `request_id` was received.
  bool HasAck(const std::string& request_id);

  // The status the stream ended with, once the reader saw its end; nullopt
  // if it is still open after `timeout`.
  std::optional<grpc::Status> WaitForEnd(absl::Duration timeout = absl::Seconds(10));
  // Non-blocking: the end status if the stream already ended.
  std::optional<grpc::Status> end_status();

  // The server's certificate properties (once the first message came).
  std::shared_ptr<const grpc::AuthContext> auth_context() const { return context_.auth_context(); }

  // WebRTCOperations over `channel`, with `peer_id` metadata when set.
  static grpc::Status WebRtcCall(const std::shared_ptr<grpc::Channel>& channel,
                                 const std::optional<std::string>& peer_id,
                                 const giggityflix_grpc_peer::EdgeWebRTCMessage& request,
                                 giggityflix_grpc_peer::PeerWebRTCMessage* response,
                                 absl::Duration timeout = absl::Seconds(15));

 private:
  void ReadLoop();
  // The reply a real peer sends to `command`, if any.
  std::optional<PeerMessage> Answer(const EdgeMessage& command) const;

  const Options options_;
  const std::string peer_id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<giggityflix_grpc_peer::PeerEdgeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<PeerMessage, EdgeMessage>> stream_;

  absl::Mutex write_mu_;  // one writer at a time
  bool writes_done_ ABSL_GUARDED_BY(write_mu_) = false;

  absl::Mutex mu_;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<EdgeMessage> received_ ABSL_GUARDED_BY(mu_);
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

// A request_id unique within this test process ("<prefix>-<n>").
std::string NextRequestId(const std::string& prefix = "req");

// A gRPC status as the absl::Status of the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_TEST_PEER_H_
