// ViewerBackend: the backend side of WebRTC negotiation in end-to-end tests
// (contract §4, §5, §6), on the shared test clients of the cluster the edge
// uses: a KafkaClient sends `webrtc_reply` / `webrtc` / other commands to
// the edge's command topic, keyed by peer_id, and TopicReaders read the
// edge's signaling and dead-letter topics from their beginning, parsed into
// SignalingEvent and DeadLetter.
//
// Thread-safe; each accessor first reads what the topics hold now.
#ifndef EDGE_TESTS_E2E_WEBRTC_VIEWER_BACKEND_H_
#define EDGE_TESTS_E2E_WEBRTC_VIEWER_BACKEND_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"
#include "support/kafka_client.h"

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
  std::string commands_topic;
  std::string deadletter_topic;
};

class ViewerBackend {
 public:
  // The topics must exist.
  static absl::StatusOr<std::unique_ptr<ViewerBackend>> Create(ViewerBackendOptions options);
  ~ViewerBackend();
  ViewerBackend(const ViewerBackend&) = delete;
  ViewerBackend& operator=(const ViewerBackend&) = delete;

  // Produces `json` to the command topic keyed by `key` and waits for its
  // delivery report.
  absl::Status Send(const std::string& key, const std::string& json);
  // Queues a command; Flush() produces every queued command in order and
  // waits for all their delivery reports (a burst of commands).
  absl::Status SendAsync(const std::string& key, const std::string& json);
  absl::Status Flush(absl::Duration timeout = absl::Seconds(10));

  // The `webrtc_reply` answering `request_id` of `peer_id` with `reply`.
  static std::string ReplyCommand(const std::string& peer_id, const std::string& request_id,
                                  const giggityflix_grpc_peer::PeerWebRTCMessage& reply);
  // A `webrtc` command pushing `message` to `peer_id`.
  static std::string WebRtcCommand(const std::string& peer_id, const std::string& request_id,
                                   const giggityflix_grpc_peer::EdgeWebRTCMessage& message);

  std::vector<SignalingEvent> Signaling();
  std::vector<DeadLetter> DeadLetters();
  // True once `pred` holds for at least `n` signaling events / dead letters.
  bool WaitForSignaling(size_t n, absl::Duration timeout = absl::Seconds(15),
                        const std::function<bool(const SignalingEvent&)>& pred = nullptr);
  bool WaitForDeadLetters(size_t n, absl::Duration timeout = absl::Seconds(15));

 private:
  ViewerBackend(ViewerBackendOptions options, std::unique_ptr<KafkaClient> producer,
                std::unique_ptr<TopicReader> signaling_reader,
                std::unique_ptr<TopicReader> deadletter_reader);
  // Reads what both topics hold now and parses the new records.
  void CatchUpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ParseNewLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ViewerBackendOptions options_;
  absl::Mutex mu_;
  const std::unique_ptr<KafkaClient> producer_ ABSL_PT_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> queued_ ABSL_GUARDED_BY(mu_);
  const std::unique_ptr<TopicReader> signaling_reader_ ABSL_PT_GUARDED_BY(mu_);
  const std::unique_ptr<TopicReader> deadletter_reader_ ABSL_PT_GUARDED_BY(mu_);
  std::vector<SignalingEvent> signaling_ ABSL_GUARDED_BY(mu_);
  std::vector<DeadLetter> dead_letters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_WEBRTC_VIEWER_BACKEND_H_
