// EdgeHarness: a whole edge in the test process, as edged wires it — the
// real GrpcPeerTransport on 127.0.0.1 port 0, a KafkaMessageBus on an
// EmbeddedKafka cluster, a LocalTracker — with either the real clock or a
// FakeClock (the transport only uses the clock for write timeouts, so it runs
// unchanged on a FakeClock; the core's reply timeouts, session expiry and
// peer timeouts then move only when the test advances it).
//
// Each harness gets its own edge id and thus its own topics, created on the
// cluster before the edge starts.
#ifndef EDGE_TESTS_E2E_WEBRTC_EDGE_HARNESS_H_
#define EDGE_TESTS_E2E_WEBRTC_EDGE_HARNESS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "e2e_webrtc/viewer_backend.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/kafka/embedded_kafka.h"
#include "edge/kafka/kafka_message_bus.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_clock.h"

namespace edge::testing {

struct EdgeHarnessOptions {
  std::string edge_id;
  absl::Duration webrtc_reply_timeout = absl::Seconds(10);
  absl::Duration webrtc_session_ttl = absl::Seconds(300);
  absl::Duration peer_timeout = absl::Seconds(120);
  int webrtc_max_sessions_per_peer = EdgeOptions().webrtc_max_sessions_per_peer;
  bool fake_clock = false;
};

class EdgeHarness {
 public:
  // Creates the topics, starts the edge, and connects a ViewerBackend to its
  // topics.
  static absl::StatusOr<std::unique_ptr<EdgeHarness>> Start(kafka::EmbeddedKafka& kafka,
                                                            EdgeHarnessOptions options);
  ~EdgeHarness();  // Shuts the edge down.
  EdgeHarness(const EdgeHarness&) = delete;
  EdgeHarness& operator=(const EdgeHarness&) = delete;

  int port() const { return transport_->port(); }
  Edge& edge() { return *edge_; }
  const EdgeOptions& options() const { return edge_options_; }
  ViewerBackend& backend() { return *backend_; }
  // Null unless options.fake_clock.
  testing::FakeClock* fake_clock() { return fake_clock_; }

  // Waits until the edge consumes its command topic (its consumer group
  // joined): sends a probe command that can only be dead-lettered and waits
  // for the dead letter. Returns the number of dead letters seen so far.
  absl::StatusOr<size_t> WaitUntilConsuming(absl::Duration timeout = absl::Seconds(30));

 private:
  EdgeHarness() = default;

  EdgeOptions edge_options_;
  std::unique_ptr<Clock> clock_;
  testing::FakeClock* fake_clock_ = nullptr;
  std::unique_ptr<kafka::KafkaMessageBus> bus_;
  std::unique_ptr<grpc_transport::GrpcPeerTransport> transport_;
  std::unique_ptr<LocalTracker> tracker_;
  std::unique_ptr<Edge> edge_;
  std::unique_ptr<ViewerBackend> backend_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_E2E_WEBRTC_EDGE_HARNESS_H_
