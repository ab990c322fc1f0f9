// GrpcPeerTransport: the PeerTransport that serves the PeerEdgeService
// (contract §1) over gRPC, with optional TLS and client certificates.
//
// It hands every AsyncOperations stream and WebRTCOperations call to the
// PeerStreamHandler and decides nothing itself (contract §2): it only fills
// PeerCallInfo (the `peer_id` metadata, the client certificate's identity,
// the remote address). It also serves grpc.health.v1.Health and server
// reflection on the same port.
//
// Threads: handler and observer callbacks run on gRPC's callback threads;
// Write callbacks for streams that already ended, and OnEnd for an admission
// that arrives after the peer left, run on the transport's own callback
// thread. Nothing is ever called back inline from a PeerStream method.
// Shutdown() and the destructor must not run on any of those threads.
//
//   edge::GrpcPeerTransportOptions options;
//   options.address = "0.0.0.0:50051";
//   options.clock = clock.get();
//   auto transport = edge::GrpcPeerTransport::Create(options);
//   if (!transport.ok()) return transport.status();
//   RETURN_IF_ERROR((*transport)->Start(&core));
//   ...
//   (*transport)->Shutdown();
#ifndef EDGE_GRPC_PEER_TRANSPORT_H_
#define EDGE_GRPC_PEER_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/clock.h"
#include "edge/logger.h"
#include "edge/peer_transport.h"

namespace edge {

struct GrpcPeerTransportOptions {
  // Where to listen, as gRPC spells it ("0.0.0.0:50051", "127.0.0.1:0").
  // Port 0 picks a free port; see GrpcPeerTransport::port().
  std::string address = "0.0.0.0:50051";

  // Keepalive (contract §7): the server pings every `keepalive_time` and
  // drops the connection when the ack does not come within
  // `keepalive_timeout`.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Clients may ping this often, also without active calls, without being
  // penalised; `max_ping_strikes` pings that come faster than that close the
  // connection (0: never).
  absl::Duration min_client_ping_interval = absl::Seconds(5);
  int max_ping_strikes = 2;

  // Largest message received or sent. A peer message above it ends that
  // stream with RESOURCE_EXHAUSTED.
  int max_message_bytes = 4 * 1024 * 1024;
  // Largest header block (metadata) accepted from a peer.
  int max_metadata_bytes = 16 * 1024;

  // A write that does not complete within this time (the peer stopped
  // reading) cancels the stream; its Write callback reports false.
  absl::Duration write_timeout = absl::Seconds(30);
  // Shutdown() first ends every stream with UNAVAILABLE, and cancels
  // whatever is still open this long after.
  absl::Duration shutdown_grace = absl::Seconds(2);

  // TLS: both set, or neither (plaintext). With `client_ca_file` set,
  // clients must present a certificate signed by one of its CAs.
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;

  // Required; must outlive the transport and every PeerStream it handed out.
  Clock* clock = nullptr;
  // Optional (nothing is logged when unset); must outlive the transport.
  Logger* logger = nullptr;
};

class GrpcPeerTransport final : public PeerTransport {
 public:
  // Validates `options` and, with TLS, loads and checks the certificate
  // files. Errors: INVALID_ARGUMENT naming the bad option or file.
  static absl::StatusOr<std::unique_ptr<GrpcPeerTransport>> Create(
      GrpcPeerTransportOptions options);
  ~GrpcPeerTransport() override;  // Shutdown(), then frees everything.

  // Binds and starts serving. UNAVAILABLE when the address cannot be bound;
  // FAILED_PRECONDITION when already started or shut down.
  absl::Status Start(PeerStreamHandler* handler) override;
  void Shutdown() override;

  // The bound port once Start() succeeded, else 0.
  int port() const;
  bool tls() const;

  // Re-reads the certificate files of the options (TLS only): new
  // connections get the new certificate, key and client CAs; connected peers
  // stay connected. On error the current credentials stay in use.
  // FAILED_PRECONDITION without TLS, INVALID_ARGUMENT for a bad file.
  absl::Status ReloadCredentials();

  // What grpc.health.v1.Health reports for the server ("") and for
  // giggityflix_grpc_peer.PeerEdgeService. SERVING from Start() on; always
  // NOT_SERVING after Shutdown().
  void SetServing(bool serving);

 private:
  class Impl;
  explicit GrpcPeerTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge

#endif  // EDGE_GRPC_PEER_TRANSPORT_H_
