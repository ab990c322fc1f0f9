// ViewerBackend: the backend side of WebRTC negotiation in end-to-end tests,
// a plain librdkafka client of the cluster the edge uses (contract §4, §5,
// §6). It reads the edge's signaling and dead-letter topics from their
// beginning (assigned partitions, no consumer group, so no join delay) and
// sends `webrtc_reply` / `webrtc` / other commands to the edge's command
// topic, keyed by peer_id.
//
// Thread-safe: a reader thread collects records; tests wait on conditions.
#ifndef EDGE_TESTS_E2E_WEBRTC_VIEWER_BACKEND_H_
#define EDGE_TESTS_E2E_WEBRTC_VIEWER_BACKEND_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"

namespace edge::testing {

// One record of WEBRTC_SIGNALING_TOPIC (contract §5), parsed.
struct SignalingEvent {
  std::string key;
  std::string peer_id;
  std::string edge_id;
  std::string request_id;
  std::string session_id;
  std::string kind;
  std::string origin;
  std::string timestamp;
  // `message` re-encoded as compact JSON; parse it with the type `origin`
  // implies: EdgeWebRTCMessage for "call", PeerWebRTCMessage for "stream".
  std::string message_json;
  std::string raw;  // the record's value as stored
};

// One record of the dead-letter topic (contract §4), parsed.
struct DeadLetter {
  std::string key;
  std::string peer_id;
  std::string reason;
  std::string detail;
  std::string original_message;
};

struct ViewerBackendOptions {
  std::string bootstrap_servers;
  std::string signaling_topic;
  int signaling_partitions = 1;
  std::string commands_topic;
  std::string deadletter_topic;
  int deadletter_partitions = 1;
};

class ViewerBackend {
 public:
  // Topics must exist (their partition counts are given).
  static absl::StatusOr<std::unique_ptr<ViewerBackend>> Create(
      ViewerBackendOptions options);
  ~ViewerBackend();
  ViewerBackend(const ViewerBackend&) = delete;
  ViewerBackend& operator=(const ViewerBackend&) = delete;

  // Produces `json` to the command topic keyed by `key` and waits for its
  // delivery report.
  absl::Status Send(const std::string& key, const std::string& json);
  // Produces without waiting; Flush() waits for every report.
  absl::Status SendAsync(const std::string& key, const std::string& json);
  absl::Status Flush(absl::Duration timeout = absl::Seconds(10));

  // The `webrtc_reply` answering `request_id` of `peer_id` with `reply`.
  static std::string ReplyCommand(
      const std::string& peer_id, const std::string& request_id,
      const giggityflix_grpc_peer::PeerWebRTCMessage& reply);
  // A `webrtc` command pushing `message` to `peer_id`.
  static std::string WebRtcCommand(
      const std::string& peer_id, const std::string& request_id,
      const giggityflix_grpc_peer::EdgeWebRTCMessage& message);

  std::vector<SignalingEvent> Signaling();
  std::vector<DeadLetter> DeadLetters();
  // True once `pred` holds for at least `n` signaling events / dead letters.
  bool WaitForSignaling(
      size_t n, absl::Duration timeout = absl::Seconds(15),
      const std::function<bool(const SignalingEvent&)>& pred = nullptr);
  bool WaitForDeadLetters(size_t n, absl::Duration timeout = absl::Seconds(15));

 private:
  struct Clients;
  ViewerBackend(ViewerBackendOptions options, std::unique_ptr<Clients> clients);
  void ReadLoop();

  const ViewerBackendOptions options_;
  const std::unique_ptr<Clients> clients_;
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  std::vector<SignalingEvent> signaling_ ABSL_GUARDED_BY(mu_);
  std::vector<DeadLetter> dead_letters_ ABSL_GUARDED_BY(mu_);
  std::thread reader_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_WEBRTC_VIEWER_BACKEND_H_
