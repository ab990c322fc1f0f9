// edge_example_peer: a peer that talks to an edge the way the existing
// Giggityflix peers do (contract §1).
//
//   edge_example_peer --edge=127.0.0.1:50051 --peer-id=peer-1 --catalog=a,b,c
//
// It opens AsyncOperations with `peer_id` metadata, answers the edge's
// commands (ExamplePeer), sends a keepalive every --keepalive-sec, logs every
// message it gets, reconnects with backoff when the stream ends with a
// non-OK status, and exits cleanly on SIGINT or SIGTERM. With
// --stream=CATALOG_ID it also negotiates one WebRTC session once admitted
// (StreamSession; docs/webrtc.md).
//
// This uses gRPC's synchronous client API: one thread reads the stream, a
// second one sends keepalives; a mutex keeps their writes apart. A third
// makes the WebRTCOperations calls of a session.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "example_peer.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "peer_options.h"
#include "stream_session.h"

namespace edge {
namespace example {
namespace {

using giggityflix_grpc_peer::EdgeWebRTCMessage;
using giggityflix_grpc_peer::PeerEdgeService;
using giggityflix_grpc_peer::PeerWebRTCMessage;
using Stream = grpc::ClientReaderWriter<PeerMessage, EdgeMessage>;

constexpr absl::Duration kFirstBackoff = absl::Seconds(1);
constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

void Log(absl::string_view line) {
  static absl::Mutex mu(absl::kConstInit);
  std::string text =
      absl::StrCat(absl::FormatTime("%H:%M:%E3S ", absl::Now(), absl::LocalTimeZone()), line, "\n");
  absl::MutexLock lock(&mu);
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
}

// Set once a signal asks the peer to stop; cancels the calls in progress
// (the stream, a WebRTCOperations call) so that their blocking calls return.
class Stopper {
 public:
  void Stop() {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    // TryCancel only flags the call (it never blocks or calls back into us);
    // the lock keeps the contexts alive meanwhile.
    for (grpc::ClientContext* context : contexts_) context->TryCancel();
  }

  // Adds `context` to those Stop() cancels; false if already stopping.
  bool Register(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    contexts_.insert(context);
    return !stopping_;
  }
  void Unregister(grpc::ClientContext* context) {
    absl::MutexLock lock(&mu_);
    contexts_.erase(context);
  }

  // Waits up to `timeout`; true if stopping.
  bool WaitForStop(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), timeout);
    return stopping_;
  }

 private:
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::set<grpc::ClientContext*> contexts_ ABSL_GUARDED_BY(mu_);
};

// Serializes writes: gRPC allows one Write at a time on a stream.
class Writer {
 public:
  explicit Writer(Stream* stream) : stream_(stream) {}

  void Send(const PeerMessage& message) {
    absl::MutexLock lock(&mu_);
    if (stream_->Write(message)) {
      Log(absl::StrCat("sent ", message.ShortDebugString()));
    } else {
      Log(absl::StrCat("stream closed, not sent: ", message.ShortDebugString()));
    }
  }

 private:
  absl::Mutex mu_;
  Stream* const stream_;
};

// One WebRTCOperations call, with the `peer_id` metadata and the peers'
// usual 30 s reply timeout (the edge answers DEADLINE_EXCEEDED itself after
// WEBRTC_REPLY_TIMEOUT_MS when the backend does not reply).
absl::StatusOr<PeerWebRTCMessage> CallWebRtc(PeerEdgeService::Stub& stub,
                                             const PeerOptions& options, Stopper& stopper,
                                             const EdgeWebRTCMessage& request) {
  grpc::ClientContext context;
  context.AddMetadata("peer_id", options.peer_id);
  context.set_deadline(absl::ToChronoTime(absl::Now() + kReplyTimeout));
  if (!stopper.Register(&context)) {
    stopper.Unregister(&context);
    return absl::CancelledError("stopping");
  }
  Log(absl::StrCat("webrtc call ", request.ShortDebugString()));
  PeerWebRTCMessage reply;
  grpc::Status status = stub.WebRTCOperations(&context, request, &reply);
  stopper.Unregister(&context);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  Log(absl::StrCat("webrtc reply ", reply.ShortDebugString()));
  return reply;
}

// Negotiates `session` (contract §6): request, the backend's offer, our
// answer, then our candidates. The backend's candidates come on the stream
// meanwhile; ExamplePeer hands them to the session.
void RunStream(PeerEdgeService::Stub& stub, const PeerOptions& options, Stopper& stopper,
               StreamSession& session) {
  auto fail = [&session](absl::Status error) {
    Log(absl::StrCat("stream session ", session.session_id(), " failed: ", error.ToString()));
    session.Fail(std::move(error));
  };
  absl::StatusOr<PeerWebRTCMessage> offer = CallWebRtc(stub, options, stopper, session.Request());
  if (!offer.ok()) return fail(offer.status());
  absl::StatusOr<EdgeWebRTCMessage> answer = session.OnOffer(*offer);
  if (!answer.ok()) return fail(answer.status());
  absl::StatusOr<PeerWebRTCMessage> ack = CallWebRtc(stub, options, stopper, *answer);
  if (!ack.ok()) return fail(ack.status());
  if (absl::Status checked = session.OnAcknowledged(*answer, *ack); !checked.ok()) {
    return fail(checked);
  }
  // Trickle ICE: each candidate as it is "gathered", acknowledged by the edge.
  for (const EdgeWebRTCMessage& candidate : session.LocalCandidates()) {
    ack = CallWebRtc(stub, options, stopper, candidate);
    if (!ack.ok()) return fail(ack.status());
    if (absl::Status checked = session.OnAcknowledged(candidate, *ack); !checked.ok()) {
      return fail(checked);
    }
  }
  Log(absl::StrCat("stream session ", session.session_id(), " for ", session.catalog_id(),
                   " negotiated; backend candidates arrive on the stream"));
}

// One AsyncOperations stream, from connect to its final status. With
// `stream` set, its session is negotiated once the edge has admitted us.
grpc::Status RunSession(PeerEdgeService::Stub& stub, const PeerOptions& options, bool send_offer,
                        std::shared_ptr<StreamSession>& stream, ExamplePeer& peer, Stopper& stopper,
                        bool& heard_from_edge) {
  grpc::ClientContext context;
  context.AddMetadata("peer_id", options.peer_id);
  if (!stopper.Register(&context)) {
    stopper.Unregister(&context);
    return grpc::Status(grpc::StatusCode::CANCELLED, "stopping");
  }
  std::unique_ptr<Stream> stream_call = stub.AsyncOperations(&context);
  Writer writer(stream_call.get());

  absl::Notification session_over;
  std::thread keepalive([&] {
    while (!session_over.WaitForNotificationWithTimeout(options.keepalive)) {
      for (const std::string& id : peer.ExpireWaiting(absl::Now())) {
        Log(absl::StrCat("no reply within 30 s to ", id));
      }
      writer.Send(peer.Keepalive(absl::Now()));
    }
  });

  if (send_offer) writer.Send(peer.Offer(options.offer, absl::Now()));
  // WebRTCOperations needs an admitted stream: a keepalive now makes the edge
  // answer at once, and any message from the edge means we are admitted.
  if (stream != nullptr) writer.Send(peer.Keepalive(absl::Now()));

  std::thread negotiation;
  EdgeMessage message;
  while (stream_call->Read(&message)) {
    heard_from_edge = true;
    if (stream != nullptr && !negotiation.joinable()) {
      peer.AttachStream(stream);
      negotiation = std::thread([&stub, &options, &stopper, session = stream] {
        RunStream(stub, options, stopper, *session);
      });
      stream = nullptr;  // once per process, even if the stream ends
    }
    Log(absl::StrCat("received ", message.ShortDebugString()));
    Outcome outcome = peer.Handle(message, absl::Now());
    Log(absl::StrCat("  ", outcome.note));
    for (const PeerMessage& reply : outcome.replies) writer.Send(reply);
  }

  session_over.Notify();
  keepalive.join();
  // A call still waiting fails once the edge sees the stream end.
  if (negotiation.joinable()) negotiation.join();
  grpc::Status status = stream_call->Finish();
  stopper.Unregister(&context);
  return status;
}

// Doubling backoff with ±20% jitter, so that peers of an edge that went
// away do not all come back at the same instant.
absl::Duration Jittered(absl::Duration backoff) {
  thread_local std::mt19937 generator(std::random_device{}());
  std::uniform_real_distribution<double> factor(0.8, 1.2);
  return backoff * factor(generator);
}

int Run(const PeerOptions& options, Stopper& stopper) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(options.edge_address, grpc::InsecureChannelCredentials());
  std::unique_ptr<PeerEdgeService::Stub> stub = PeerEdgeService::NewStub(channel);
  ExamplePeer peer(options.catalog, NewRequestId);

  absl::Duration backoff = kFirstBackoff;
  bool offer_pending = !options.offer.empty();
  std::shared_ptr<StreamSession> stream;
  if (!options.stream.empty()) {
    stream = std::make_shared<StreamSession>(options.stream, NewRequestId);
  }
  while (true) {
    Log(absl::StrCat("connecting to ", options.edge_address, " as ", options.peer_id));
    bool heard_from_edge = false;
    grpc::Status status =
        RunSession(*stub, options, offer_pending, stream, peer, stopper, heard_from_edge);
    if (heard_from_edge) offer_pending = false;
    if (stopper.WaitForStop(absl::ZeroDuration())) {
      Log("stopped");
      return 0;
    }
    if (status.ok()) {
      Log("the edge ended the stream with OK; not reconnecting");
      return 0;
    }
    if (heard_from_edge) backoff = kFirstBackoff;
    absl::Duration wait = Jittered(backoff);
    Log(absl::StrCat("stream ended: ", status.error_code(), " ", status.error_message(),
                     "; reconnecting in ",
                     absl::FormatDuration(absl::Trunc(wait, absl::Milliseconds(1)))));
    backoff = std::min(backoff * 2, kMaxBackoff);
    if (stopper.WaitForStop(wait)) {
      Log("stopped");
      return 0;
    }
  }
}

}  // namespace
}  // namespace example
}  // namespace edge

int main(int argc, char** argv) {
  using edge::example::kPeerUsage;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::fputs(kPeerUsage, stdout);
      return 0;
    }
  }
  absl::StatusOr<edge::example::PeerOptions> options = edge::example::ParsePeerOptions(
      args, [](absl::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
      });
  if (!options.ok()) {
    std::fprintf(stderr, "edge_example_peer: %s\n%s",
                 std::string(options.status().message()).c_str(), kPeerUsage);
    return 2;
  }

  // Signals are taken by one thread with sigwait, before any other thread
  // (gRPC's included) exists, so that none of them is interrupted.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  edge::example::Stopper stopper;
  std::thread signal_waiter([&] {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    stopper.Stop();
  });

  int code = edge::example::Run(*options, stopper);

  // Wake the signal thread if no signal came, then let it finish.
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  return code;
}
