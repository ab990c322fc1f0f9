// GrpcPeerTransport: the PeerTransport that serves the PeerEdgeService
// (contract §1) over gRPC, with optional TLS and client certificates.
//
// It hands every AsyncOperations stream and WebRTCOperations call to the
// PeerStreamHandler and decides nothing itself (contract §2): it only fills
// PeerCallInfo (the `peer_id` metadata, the client certificate's identity,
// the remote address). It also serves grpc.health.v1.Health, and server
// reflection when enabled, on the same port.
//
// Hostile connections: gRPC 1.51 lacks later releases' defences, so the
// transport bounds, per TCP connection, the streams open at once and the
// calls started per second (closing a connection that floods), refuses
// oversized request metadata, closes connections that sit without a call,
// keeps descriptor headroom for accepting (descriptor_reserve), and can
// probe its own listener (listener_status()).
//
// Threads: handler and observer callbacks run on gRPC's callback threads;
// Write callbacks for streams that already ended, and OnEnd for an admission
// that arrives after the peer left, run on the transport's own callback
// thread. Nothing is ever called back inline from a PeerStream method.
// Shutdown() and the destructor must not run on any of those threads.
//
//   edge::grpc_transport::GrpcPeerTransportOptions options;
//   options.address = "0.0.0.0:50051";
//   options.clock = clock.get();
//   auto transport = edge::grpc_transport::GrpcPeerTransport::Create(options);
//   if (!transport.ok()) return transport.status();
//   RETURN_IF_ERROR((*transport)->Start(&core));
//   ...
//   (*transport)->Shutdown();
#ifndef EDGE_GRPC_GRPC_PEER_TRANSPORT_H_
#define EDGE_GRPC_GRPC_PEER_TRANSPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/clock.h"
#include "edge/logger.h"
#include "edge/peer_transport.h"

namespace edge::grpc_transport {

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
  // Largest header block (metadata) accepted from a peer. gRPC 1.51 does
  // not enforce it reliably (CVE-2023-33953), so a call whose metadata
  // exceeds it is also refused here with RESOURCE_EXHAUSTED before it
  // reaches the handler.
  int max_metadata_bytes = 16 * 1024;

  // Per TCP connection (0: no limit). A peer needs one AsyncOperations
  // stream; a second lets it reconnect on the same connection before the
  // first has ended. A stream past `max_streams_per_connection` is refused
  // with RESOURCE_EXHAUSTED. Calls (streams and unary calls) started faster
  // than `max_call_starts_per_connection_per_sec` (token bucket with a
  // burst of `call_start_burst`) are refused the same way and the
  // connection is closed: HTTP/2 rapid reset (CVE-2023-44487). Neither
  // refusal reaches the handler. Off by default because embedders and tests
  // multiplex many peers over one channel; edged turns both on.
  int max_streams_per_connection = 0;
  double max_call_starts_per_connection_per_sec = 0;
  double call_start_burst = 0;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; 0: gRPC's default (no limit).
  int max_concurrent_streams = 0;
  // A connection with no call open for this long is closed (GOAWAY), so
  // connections that never open a stream do not hold descriptors forever.
  // Zero: never.
  absl::Duration max_connection_idle = absl::Minutes(1);
  // A connection must finish its TLS or HTTP/2 handshake within this
  // (gRPC's default is 120 s).
  absl::Duration handshake_timeout = absl::Seconds(10);

  // Serves grpc.reflection.v1alpha.ServerReflection (the whole service
  // description to anyone who connects). Off unless asked for.
  bool enable_reflection = false;

  // The client certificate's identity (PeerCallInfo::cert_identity) is its
  // URI SAN `giggityflix://peer/<peer_id>`. With `identity_cn_fallback`, a
  // certificate without one is named by its subject CN instead: then any
  // certificate of the client CA (a backend's too) is some peer's identity.
  bool identity_cn_fallback = false;

  // Descriptor headroom for accepting: a TCP connection that gRPC accepts
  // into one of the last `descriptor_reserve` descriptors under the
  // process' RLIMIT_NOFILE (read at Start()) is closed at once, before any
  // TLS or HTTP/2 work, and so are the connections waiting behind it. gRPC
  // 1.51 thus never runs out of descriptors in accept (after which it would
  // never accept again), and the rest of the process keeps that many for
  // itself. A refused client sees its connection reset. 0: off.
  int descriptor_reserve = 0;
  // Called, on a gRPC thread and without blocking, with the number of
  // connections refused that way at once (e.g. to count them in a metric).
  std::function<void(int64_t refused)> on_connections_refused;

  // Probes the listener every `listener_probe_interval` (zero: no probe);
  // see listener_status().
  absl::Duration listener_probe_interval = absl::ZeroDuration();
  absl::Duration listener_probe_timeout = absl::Seconds(5);

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
  // FAILED_PRECONDITION when already started or shut down; INVALID_ARGUMENT
  // when `descriptor_reserve` is not below the descriptor limit.
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

  // OK while the listener accepts connections, as far as the probe knows
  // (always OK without a probe). UNAVAILABLE, naming the cause, after two
  // probes in a row got no answer from the listener: gRPC 1.51 stops
  // accepting for good after running out of descriptors once
  // (CVE-2023-4785), so the process should then be restarted.
  absl::Status listener_status() const;

  // What grpc.health.v1.Health reports for the server ("") and for
  // giggityflix_grpc_peer.PeerEdgeService. SERVING from Start() on; always
  // NOT_SERVING after Shutdown().
  void SetServing(bool serving);

 private:
  class Impl;
  explicit GrpcPeerTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::grpc_transport

#endif  // EDGE_GRPC_GRPC_PEER_TRANSPORT_H_
