// ExamplePeer: what a Giggityflix peer does with the messages of its edge,
// without the network (contract §1).
//
// It keeps a catalog of ids, answers the edge's commands and builds its own
// requests (keepalives, file offers). Like the existing peers it correlates
// by request_id: every message it sends waits up to 30 s for an EdgeMessage
// with the same request_id, and such a message is taken as that reply (an
// acknowledgement when it has no payload), never as a command.
//
// Thread-safe: the stream's reader and the keepalive timer both use it.
//
//   edge::example::ExamplePeer peer({"a", "b"}, edge::example::NewRequestId);
//   edge::example::Outcome outcome = peer.Handle(message, absl::Now());
//   for (const auto& reply : outcome.replies) stream->Write(reply);
#ifndef EDGE_EXAMPLES_PEER_EXAMPLE_PEER_H_
#define EDGE_EXAMPLES_PEER_EXAMPLE_PEER_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"
#include "stream_session.h"

namespace edge {
namespace example {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::FileInfo;
using giggityflix_grpc_peer::PeerMessage;

// How long a sent message waits for the edge's reply (contract §1).
inline constexpr absl::Duration kReplyTimeout = absl::Seconds(30);

// What the peer made of one EdgeMessage.
struct Outcome {
  std::string note;                  // one line for the log
  std::vector<PeerMessage> replies;  // to send to the edge, in order
};

// A random (version 4) UUID: request ids unique across peers and restarts.
std::string NewRequestId();

// A stand-in for a real file hash: the same catalog id and hash type always
// give the same 16 hex digits (64-bit FNV-1a).
std::string FakeHash(absl::string_view hash_type, absl::string_view catalog_id);

class ExamplePeer {
 public:
  ExamplePeer(const std::vector<std::string>& catalog, std::function<std::string()> new_request_id);
  ExamplePeer(const ExamplePeer&) = delete;
  ExamplePeer& operator=(const ExamplePeer&) = delete;

  // A keepalive: `catalog_announcement` with an EMPTY list and a fresh id.
  PeerMessage Keepalive(absl::Time now);

  // A `batch_file_offer` of `files`; its answer is a later
  // `batch_file_offer_response` with the same request_id.
  PeerMessage Offer(const std::vector<FileInfo>& files, absl::Time now);

  // Handles one message from the edge: a reply to something the peer sent,
  // or a command. Every reply in the outcome is awaited as if sent.
  Outcome Handle(const EdgeMessage& message, absl::Time now);

  // From now on the backend's messages for `session` (EdgeMessage.webrtc
  // with its session_id) go to it; others are logged and ignored.
  void AttachStream(std::shared_ptr<StreamSession> session);

  // Forgets messages that got no reply by `now` and returns their ids.
  std::vector<std::string> ExpireWaiting(absl::Time now);

  std::vector<std::string> catalog() const;
  // Request ids still waiting for a reply.
  std::vector<std::string> waiting() const;

 private:
  struct Waiting {
    int replies = 0;  // replies still expected (one per message sent)
    absl::Time deadline;
  };

  void AwaitLocked(const std::string& request_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Outcome HandleReplyLocked(const EdgeMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Outcome HandleCommandLocked(const EdgeMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string AddOfferedLocked(const EdgeMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::function<std::string()> new_request_id_;
  mutable absl::Mutex mu_;
  std::set<std::string> catalog_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  // session_id -> the stream session it belongs to.
  std::map<std::string, std::shared_ptr<StreamSession>> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace example
}  // namespace edge

#endif  // EDGE_EXAMPLES_PEER_EXAMPLE_PEER_H_
