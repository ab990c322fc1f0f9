// GrpcTestPeer: a peer for tests, built on the generated PeerEdgeService
// client. It opens one AsyncOperations stream; a reader thread collects what
// the edge writes (or does not, to play a peer that stopped reading).
#ifndef EDGE_TESTS_GRPC_GRPC_TEST_PEER_H_
#define EDGE_TESTS_GRPC_GRPC_TEST_PEER_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"

namespace edge::testing {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::PeerMessage;

// Client TLS material (PEM contents); empty cert/key: no client certificate.
struct ClientTls {
  std::string root_ca;
  std::string cert_chain;
  std::string private_key;
};

struct ChannelOptions {
  std::optional<ClientTls> tls;  // unset: plaintext
  // Client keepalive (0: gRPC's default, none).
  absl::Duration keepalive_time = absl::ZeroDuration();
};

// A channel of its own (no connection shared with other test channels) to
// 127.0.0.1:`port`; with TLS the server name checked is "localhost".
std::shared_ptr<grpc::Channel> MakeChannel(int port, const ChannelOptions& options = {});

class GrpcTestPeer {
 public:
  struct Options {
    std::optional<std::string> peer_id;  // unset: no `peer_id` metadata
    bool read = true;                    // false: read nothing until StartReading()
  };

  GrpcTestPeer(std::shared_ptr<grpc::Channel> channel, Options options);
  GrpcTestPeer(const GrpcTestPeer&) = delete;
  GrpcTestPeer& operator=(const GrpcTestPeer&) = delete;
  // Cancels the stream if still open and waits for its end.
  ~GrpcTestPeer();

  // Blocking write; false once the stream is broken.
  bool Send(const PeerMessage& message);
  // Half-closes (no more messages from this peer).
  void HalfClose();
  // Cancels the call (as a peer that goes away).
  void Cancel();
  void StartReading();

  std::vector<EdgeMessage> Received();
  bool WaitForReceived(size_t count, absl::Duration timeout = absl::Seconds(10));
  // The status the stream ended with, once the reader saw its end.
  std::optional<grpc::Status> WaitForEnd(absl::Duration timeout = absl::Seconds(10));

  // The server's certificate properties (after the first message came).
  std::shared_ptr<const grpc::AuthContext> auth_context() const {
    return context_.auth_context();
  }

 private:
  void ReadLoop();

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

// A WebRTCOperations call; `peer_id` unset sends no metadata.
grpc::Status CallWebRtc(const std::shared_ptr<grpc::Channel>& channel,
                        const std::optional<std::string>& peer_id,
                        const giggityflix_grpc_peer::EdgeWebRTCMessage& request,
                        giggityflix_grpc_peer::PeerWebRTCMessage* response,
                        absl::Duration timeout = absl::Seconds(10));

}  // namespace edge::testing

#endif  // EDGE_TESTS_GRPC_GRPC_TEST_PEER_H_
