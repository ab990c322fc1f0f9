// A core Edge on the in-process fakes, for tests that drive it
// deterministically: FakePeerTransport peers, a FakeMessageBus, a
// FakeTracker cluster and a FakeClock.
#ifndef EDGE_TESTS_CORE_EDGE_FIXTURE_H_
#define EDGE_TESTS_CORE_EDGE_FIXTURE_H_

#include <memory>
#include <string>

#include "edge/edge.h"
#include "edge/testing/fake_clock.h"
#include "edge/testing/fake_message_bus.h"
#include "edge/testing/fake_peer_transport.h"
#include "edge/testing/fake_tracker.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge {

inline EdgeOptions TestEdgeOptions() {
  EdgeOptions o;
  o.edge_id = "edge-1";
  o.topics.commands = "edge-commands-edge-1";
  o.topics.deadletter = "edge-commands-edge-1.deadletter";
  return o;
}

inline google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
  return s;
}

inline std::string Field(const std::string& json, const std::string& name) {
  auto s = ParseJson(json);
  auto it = s.fields().find(name);
  if (it == s.fields().end()) return "<absent>";
  const auto& v = it->second;
  if (v.has_string_value()) return v.string_value();
  if (v.has_bool_value()) return v.bool_value() ? "true" : "false";
  if (v.has_number_value()) return std::to_string(static_cast<int64_t>(v.number_value()));
  return "<composite>";
}

class EdgeFixture : public ::testing::Test {
 protected:
  void StartEdge(EdgeOptions options = TestEdgeOptions(),
                 testing::FakeMessageBusOptions bus_options = {}) {
    bus_ = std::make_unique<testing::FakeMessageBus>(bus_options);
    auto edge = Edge::Create(std::move(options),
                             EdgeParts{&transport_, bus_.get(), &tracker_, &clock_, nullptr});
    ASSERT_TRUE(edge.ok()) << edge.status();
    edge_ = std::move(*edge);
    ASSERT_TRUE(edge_->Start().ok());
  }

  void TearDown() override {
    if (edge_) edge_->Shutdown(clock_.Now() + absl::Seconds(5));
  }

  std::shared_ptr<testing::FakePeerTransport::Peer> Admit(const std::string& peer_id) {
    auto peer = transport_.Connect(peer_id);
    EXPECT_TRUE(peer->WaitForAdmission());
    EXPECT_TRUE(peer->admission().has_value() && peer->admission()->ok())
        << (peer->admission() ? peer->admission()->ToString() : "undecided");
    return peer;
  }

  absl::Status Refusal(PeerCallInfo info) {
    auto peer = transport_.Connect(std::move(info));
    EXPECT_TRUE(peer->WaitForAdmission());
    return peer->admission().value_or(absl::UnknownError("undecided"));
  }

  std::vector<std::string> Values(const std::string& topic) {
    std::vector<std::string> values;
    for (const auto& r : bus_->Published(topic)) values.push_back(r.value);
    return values;
  }

  void Produce(const std::string& value, const std::string& key = "peer-1") {
    ASSERT_TRUE(bus_->Produce("edge-commands-edge-1", key, value).ok());
  }

  testing::FakeClock clock_;
  testing::FakePeerTransport transport_;
  testing::FakeTrackerCluster cluster_;
  testing::FakeTracker tracker_{&cluster_, "edge-1"};
  std::unique_ptr<testing::FakeMessageBus> bus_;
  std::unique_ptr<Edge> edge_;
};

}  // namespace edge

#endif  // EDGE_TESTS_CORE_EDGE_FIXTURE_H_
