#include "e2e_webrtc/edge_harness.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::testing {

absl::StatusOr<std::unique_ptr<EdgeHarness>> EdgeHarness::Start(kafka::EmbeddedKafka& kafka,
                                                                EdgeHarnessOptions options) {
  std::unique_ptr<EdgeHarness> h(new EdgeHarness());
  EdgeOptions& o = h->edge_options_;
  o.edge_id = options.edge_id;
  o.topics.commands = absl::StrCat("edge-commands-", o.edge_id);
  o.topics.deadletter = absl::StrCat(o.topics.commands, ".deadletter");
  o.topics.webrtc_signaling = absl::StrCat("webrtc-signaling-", o.edge_id);
  o.topics.lifecycle = absl::StrCat("peer-lifecycle-events-", o.edge_id);
  o.topics.catalog_updates = absl::StrCat("peer-catalog-updates-", o.edge_id);
  o.webrtc_reply_timeout = options.webrtc_reply_timeout;
  o.webrtc_session_ttl = options.webrtc_session_ttl;
  o.peer_timeout = options.peer_timeout;
  o.webrtc_max_sessions_per_peer = options.webrtc_max_sessions_per_peer;
  // WebRTC calls come in bursts in the load test; the rate limit is not
  // what these tests are about.
  o.peer_max_messages_per_sec = 0;

  for (const std::string& topic :
       {o.topics.commands, o.topics.deadletter, o.topics.webrtc_signaling}) {
    if (absl::Status created = kafka.CreateTopic(topic, 2); !created.ok()) return created;
  }

  if (options.fake_clock) {
    // Starts at the real time: the bus compares shutdown deadlines with it.
    auto fake = std::make_unique<testing::FakeClock>(absl::Now());
    h->fake_clock_ = fake.get();
    h->clock_ = std::move(fake);
  } else {
    h->clock_ = NewRealClock();
  }

  kafka::KafkaMessageBusOptions bus;
  bus.bootstrap_servers = kafka.bootstrap_servers();
  bus.group_id = absl::StrCat("edge-", o.edge_id);
  bus.client_id = absl::StrCat("edge-", o.edge_id);
  bus.properties = {{"consumer.fetch.wait.max.ms", "10"},
                    {"consumer.session.timeout.ms", "6000"},
                    {"producer.linger.ms", "1"}};
  bus.commit_interval = absl::Milliseconds(200);
  auto created_bus = kafka::KafkaMessageBus::Create(std::move(bus));
  if (!created_bus.ok()) return created_bus.status();
  h->bus_ = std::move(*created_bus);

  grpc_transport::GrpcPeerTransportOptions grpc;
  grpc.address = "127.0.0.1:0";
  grpc.clock = h->clock_.get();
  grpc.shutdown_grace = absl::Milliseconds(500);
  auto transport = grpc_transport::GrpcPeerTransport::Create(std::move(grpc));
  if (!transport.ok()) return transport.status();
  h->transport_ = std::move(*transport);

  h->tracker_ = std::make_unique<LocalTracker>(o.edge_id);
  auto edge = Edge::Create(o, EdgeParts{h->transport_.get(), h->bus_.get(), h->tracker_.get(),
                                        h->clock_.get(), nullptr});
  if (!edge.ok()) return edge.status();
  h->edge_ = std::move(*edge);
  if (absl::Status started = h->edge_->Start(); !started.ok()) return started;

  ViewerBackendOptions backend;
  backend.bootstrap_servers = kafka.bootstrap_servers();
  backend.signaling_topic = o.topics.webrtc_signaling;
  backend.commands_topic = o.topics.commands;
  backend.deadletter_topic = o.topics.deadletter;
  auto viewer = ViewerBackend::Create(std::move(backend));
  if (!viewer.ok()) return viewer.status();
  h->backend_ = std::move(*viewer);
  return h;
}

EdgeHarness::~EdgeHarness() {
  if (edge_ != nullptr) edge_->Shutdown(clock_->Now() + absl::Seconds(5));
  edge_.reset();
  backend_.reset();
}

absl::StatusOr<size_t> EdgeHarness::WaitUntilConsuming(absl::Duration timeout) {
  size_t before = backend_->DeadLetters().size();
  giggityflix_grpc_peer::PeerWebRTCMessage nothing;
  nothing.mutable_stream_session_response()->set_session_id("probe");
  std::string probe = ViewerBackend::ReplyCommand("probe", "probe-no-such-call", nothing);
  if (absl::Status sent = backend_->Send("probe", probe); !sent.ok()) return sent;
  if (!backend_->WaitForDeadLetters(before + 1, timeout)) {
    return absl::DeadlineExceededError("the edge did not consume its command topic in time");
  }
  return before + 1;
}

}  // namespace edge::testing
