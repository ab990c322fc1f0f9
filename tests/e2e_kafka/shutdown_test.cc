// Contract §7 and §8 end to end: SIGTERM ends every peer with UNAVAILABLE,
// publishes each `disconnected` (`shutdown`) and exits 0 in time; an
// invalid configuration stops edged at start with exit code 2, naming the
// variable; a valid one starts, on its embedded broker too.
#include <signal.h>

#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "e2e_kafka/edged_kafka_fixture.h"
#include "gtest/gtest.h"

namespace edge::testing {
namespace {

TEST_F(EdgedKafkaTest, SigtermEndsEveryPeerWithUnavailableAndExitsZeroInTime) {
  constexpr int kPeers = 5;
  constexpr int kShutdownTimeoutSec = 8;
  StartEdged({{"SHUTDOWN_TIMEOUT_SEC", absl::StrCat(kShutdownTimeoutSec)}});
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < kPeers; ++i) {
    peers.push_back(ConnectPeer(absl::StrCat("term-", i)));
    ASSERT_NE(peers.back(), nullptr);
  }
  auto lifecycle = Reader(kLifecycleTopic);
  ASSERT_NE(lifecycle, nullptr);
  ASSERT_TRUE(lifecycle->WaitForCount(kPeers, absl::Seconds(20)));

  absl::Time signalled = absl::Now();
  ASSERT_TRUE(edged().Signal(SIGTERM).ok());
  for (auto& peer : peers) {
    std::optional<grpc::Status> end = peer->WaitForEnd(absl::Seconds(kShutdownTimeoutSec));
    ASSERT_TRUE(end.has_value()) << peer->peer_id();
    EXPECT_EQ(end->error_code(), grpc::StatusCode::UNAVAILABLE)
        << peer->peer_id() << ": " << end->error_message();
  }
  absl::StatusOr<int> exit_code = edged().WaitForExit(absl::Seconds(kShutdownTimeoutSec + 10));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  absl::Duration took = absl::Now() - signalled;
  EXPECT_EQ(*exit_code, 0);
  EXPECT_LT(took, absl::Seconds(kShutdownTimeoutSec)) << "SHUTDOWN_TIMEOUT_SEC exceeded";

  // Every `disconnected` was flushed before the exit.
  ASSERT_TRUE(lifecycle->WaitForCount(2 * kPeers, absl::Seconds(10)));
  ASSERT_TRUE(lifecycle->CatchUp().ok());
  EXPECT_EQ(lifecycle->records().size(), 2u * kPeers);
  for (int i = 0; i < kPeers; ++i) {
    std::string peer_id = absl::StrCat("term-", i);
    std::vector<google::protobuf::Struct> events = ParseAll(lifecycle->RecordsWithKey(peer_id));
    ASSERT_EQ(events.size(), 2u) << peer_id;
    EXPECT_EQ(JsonString(events[0], "event_type"), "connected");
    EXPECT_EQ(JsonString(events[1], "event_type"), "disconnected");
    EXPECT_EQ(JsonString(events[1], "reason"), "shutdown") << peer_id;
  }
}

struct BadSetting {
  const char* variable;
  const char* value;
};

void PrintTo(const BadSetting& setting, std::ostream* os) {
  *os << setting.variable << "=" << setting.value;
}

class EdgedConfigErrorTest : public EdgedKafkaTest,
                             public ::testing::WithParamInterface<BadSetting> {};

TEST_P(EdgedConfigErrorTest, ExitsWithCodeTwoNamingTheVariable) {
  EdgedProcess::Options options;
  options.env = EdgedEnv({{GetParam().variable, GetParam().value}});
  auto edged = EdgedProcess::Launch(options);
  ASSERT_TRUE(edged.ok()) << edged.status();
  absl::StatusOr<int> exit_code = (*edged)->WaitForExit(absl::Seconds(20));
  ASSERT_TRUE(exit_code.ok()) << exit_code.status();
  std::string log = (*edged)->ReadLog();
  EXPECT_EQ(*exit_code, 2) << log;
  EXPECT_TRUE(absl::StrContains(log, GetParam().variable)) << log;
  EXPECT_FALSE(absl::StrContains(log, "edged listening")) << log;
}

INSTANTIATE_TEST_SUITE_P(Settings, EdgedConfigErrorTest,
                         ::testing::Values(BadSetting{"MAX_PEERS", "abc"},
                                           BadSetting{"DUPLICATE_POLICY", "sometimes"},
                                           BadSetting{"SHUTDOWN_TIMEOUT_SEC", "-3"}),
                         [](const ::testing::TestParamInfo<BadSetting>& info) {
                           return std::string(info.param.variable);
                         });

// Without KAFKA_BOOTSTRAP_SERVERS edged runs its own broker and creates
// every topic it uses there; event kinds configured onto one topic share it.
TEST(EdgedEmbeddedKafkaTest, StartsWhenEventKindsShareATopic) {
  EdgedProcess::Options options;
  options.env = {{"EDGE_ID", "shared-topics"},
                 {"PEER_CATALOG_UPDATES_TOPIC", "peer-events"},
                 {"FILE_OFFERS_TOPIC", "peer-events"},
                 {"FILE_HASH_RESPONSES_TOPIC", "peer-events"}};
  auto edged = EdgedProcess::Start(options);
  ASSERT_TRUE(edged.ok()) << edged.status();
  ASSERT_TRUE((*edged)->Signal(SIGTERM).ok());
  EXPECT_EQ((*edged)->WaitForExit(absl::Seconds(20)).value_or(-1), 0) << (*edged)->ReadLog();
}

}  // namespace
}  // namespace edge::testing
