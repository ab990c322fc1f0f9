// PeerTransport: where peer streams come from.
//
// A transport accepts the long-lived AsyncOperations streams of peers and the
// unary WebRTCOperations calls, and hands them to a PeerStreamHandler (the
// edge core). It knows nothing of admission rules, Kafka or routing.
//
// Life of a stream:
//   1. OnStreamStart(stream, decide): the handler decides, now or later from
//      any thread, by calling `decide` exactly once: an observer admits the
//      stream, an error status ends it with that status. No message is read
//      before the decision.
//   2. Admitted: each inbound message goes to observer->OnMessage in order,
//      one at a time. Returning false pauses reading (gRPC flow control then
//      pushes back on the peer) until stream->ResumeReading().
//   3. The stream ends (peer closed, connection lost, Finish called, write
//      timeout): observer->OnEnd runs exactly once, after the last OnMessage
//      and after every Write callback.
//
// Threads: callbacks run on transport threads (gRPC's callback threads for
// GrpcPeerTransport). They must not block.
//
//   class Core : public edge::PeerStreamHandler { ... };
//   Core core;
//   transport->Start(&core);
#ifndef EDGE_PEER_TRANSPORT_H_
#define EDGE_PEER_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"

namespace edge {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::EdgeWebRTCMessage;
using giggityflix_grpc_peer::PeerMessage;
using giggityflix_grpc_peer::PeerWebRTCMessage;

// A transport that ends a stream because of what the peer sent attaches the
// lifecycle reason (contract §5 `reason`: "invalid_utf8", "invalid_message")
// to the status it hands to OnEnd, as the payload with this type URL.
inline constexpr char kEndReasonPayload[] = "type.googleapis.com/edge.EndReason";

// What the transport knows of a caller before admission.
struct PeerCallInfo {
  bool has_peer_id = false;    // a `peer_id` metadata entry was present
  std::string peer_id;         // its value, unvalidated
  std::string cert_identity;   // client certificate identity, "" if none
  std::string remote_address;  // for logs
};

// One accepted stream. Owned by the transport; handlers hold it by
// shared_ptr and may call it from any thread, also after it ended (calls then
// do nothing, and Write callbacks report false).
class PeerStream {
 public:
  PeerStream() = default;
  PeerStream(const PeerStream&) = delete;
  PeerStream& operator=(const PeerStream&) = delete;
  virtual ~PeerStream() = default;

  virtual const PeerCallInfo& info() const = 0;

  // Writes one message. At most one write may be outstanding: call Write
  // again only after the previous `done` ran. `done(true)` means the
  // message was handed to the connection; `done(false)` that it never will
  // be (stream ended, or the write timed out because the peer stopped
  // reading, which also ends the stream).
  virtual void Write(EdgeMessage message, absl::AnyInvocable<void(bool ok)> done) = 0;

  // Ends the stream with `status` once the outstanding write, if any,
  // completed. Idempotent: the first status wins.
  virtual void Finish(absl::Status status) = 0;

  // Resumes reading after an OnMessage returned false.
  virtual void ResumeReading() = 0;

  // True once the stream has ended or is ending (the peer left or reset it,
  // or Finish was called). Lets a handler that decides late admit nothing
  // that is already gone.
  virtual bool ended() const = 0;
};

// The per-stream callbacks of an admitted stream.
class PeerStreamObserver {
 public:
  virtual ~PeerStreamObserver() = default;
  // Returns false to pause reading until PeerStream::ResumeReading().
  virtual bool OnMessage(PeerMessage message) = 0;
  // The stream ended with `status` (what the peer saw, or why it broke).
  virtual void OnEnd(absl::Status status) = 0;
};

using AdmissionDecision =
    absl::AnyInvocable<void(absl::StatusOr<std::shared_ptr<PeerStreamObserver>>)>;
using WebRtcReply = absl::AnyInvocable<void(absl::StatusOr<PeerWebRTCMessage>)>;

class PeerStreamHandler {
 public:
  virtual ~PeerStreamHandler() = default;
  virtual void OnStreamStart(std::shared_ptr<PeerStream> stream, AdmissionDecision decide) = 0;
  // A WebRTCOperations call; `reply` must be called exactly once.
  virtual void OnWebRtcCall(const PeerCallInfo& caller, EdgeWebRTCMessage request,
                            WebRtcReply reply) = 0;
};

class PeerTransport {
 public:
  PeerTransport() = default;
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;
  virtual ~PeerTransport() = default;

  // Starts accepting; `handler` must outlive Shutdown().
  virtual absl::Status Start(PeerStreamHandler* handler) = 0;
  // Stops accepting, cancels what is still open, and returns once every
  // observer saw OnEnd. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace edge

#endif  // EDGE_PEER_TRANSPORT_H_
