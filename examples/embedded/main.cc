// Embedding libedge in-process: an Edge on the in-memory fakes, the way a
// backend service can test itself against the edge without gRPC, Kafka or
// etcd. A simulated peer connects, answers the edge's catalog pull, a
// backend command reaches it, and the events come out on the fake bus.
#include <cstdint>
#include <cstdio>

#include "absl/status/statusor.h"
#include "edge/edge.h"
#include "edge/local_tracker.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_peer_transport.h"

int main() {
  std::unique_ptr<edge::Clock> clock = edge::NewRealClock();
  edge::testing::FakePeerTransport transport;
  edge::testing::FakeMessageBus bus;
  edge::LocalTracker tracker("edge-embedded");

  edge::EdgeOptions options;
  options.edge_id = "edge-embedded";
  options.topics.commands = "edge-commands-edge-embedded";
  options.topics.deadletter = "edge-commands-edge-embedded.deadletter";
  auto edge = edge::Edge::Create(options, {&transport, &bus, &tracker, clock.get(), nullptr});
  if (!edge.ok() || !(*edge)->Start().ok()) {
    std::fprintf(stderr, "cannot start the edge\n");
    return 1;
  }

  // A peer connects; the edge admits it and asks for its catalog.
  auto peer = transport.Connect("peer-1");
  if (!peer->WaitForReceived(1)) return 1;
  giggityflix_grpc_peer::PeerMessage catalog;
  catalog.set_request_id(peer->Received()[0].request_id());
  catalog.mutable_catalog_announcement()->add_catalog_ids("movie-42");
  peer->Send(catalog);

  // A backend asks the peer to hash a file.
  absl::StatusOr<int64_t> produced =
      bus.Produce(options.topics.commands, "peer-1",
                  R"({"type":"file_hash","peer_id":"peer-1","catalog_id":"movie-42",)"
                  R"("hash_types":["sha256"]})");
  if (!produced.ok()) return 1;
  if (!peer->WaitForReceived(3)) return 1;  // the pull, the catalog's ack, the command
  for (const auto& message : peer->Received()) {
    std::printf("peer got: %s\n", message.ShortDebugString().c_str());
  }

  bus.WaitForPublished("peer-catalog-updates", 1, absl::Seconds(5));
  for (const char* topic : {"peer-lifecycle-events", "peer-catalog-updates"}) {
    for (const auto& record : bus.Published(topic)) {
      std::printf("%s %s %s\n", topic, record.key.c_str(), record.value.c_str());
    }
  }
  (*edge)->Shutdown(clock->Now() + absl::Seconds(5));
  return 0;
}
