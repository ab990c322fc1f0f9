// Contract §4 at-least-once across a crash: edged is killed with SIGKILL
// while commands are queued for a peer that reads slowly; restarted with the
// same EDGE_ID and consumer group, it redelivers what had no outcome. Every
// command ends delivered (seen by the peer) or dead-lettered; duplicates are
// allowed, loss is not.
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "e2e_kafka/edged_kafka_fixture.h"
#include "gtest/gtest.h"

namespace edge::testing {
namespace {

namespace gp = giggityflix_grpc_peer;

constexpr int kCommands = 500;

// About 1 KiB on the wire, so that the peer's 64 KiB receive window holds a
// few dozen and the rest wait in edged's send queue while the peer lags.
std::string Command(int n) {
  std::string ids;
  for (int i = 0; i < 8; ++i) {
    absl::StrAppend(&ids, i == 0 ? "" : ",", "\"catalog-", n, "-", i, "-", std::string(100, 'x'),
                    "\"");
  }
  return absl::StrCat(R"({"type":"file_delete","peer_id":"crash-peer","request_id":"k-)", n,
                      R"(","catalog_ids":[)", ids, "]}");
}

void CollectRequestIds(TestPeer& peer, std::multiset<std::string>& ids) {
  for (const gp::EdgeMessage& m : peer.Commands()) {
    if (m.has_file_delete_request()) ids.insert(m.request_id());
  }
}

TEST_F(EdgedKafkaTest, SigkillWithCommandsInFlightLosesNoCommandAfterRestart) {
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  TestPeer::Options slow;
  slow.read_interval = absl::Milliseconds(10);
  slow.receive_window_bytes = 64 * 1024;
  auto first = ConnectPeer("crash-peer", slow);
  ASSERT_NE(first, nullptr);

  std::vector<std::pair<std::string, std::string>> produce;
  for (int n = 0; n < kCommands; ++n) produce.emplace_back("crash-peer", Command(n));
  ProduceCommands(produce);

  // Kill it mid-way: some commands taken by the peer, most still queued.
  ASSERT_TRUE(first->WaitForReceived(150, absl::Seconds(30)))
      << "received " << first->ReceivedCount();
  ASSERT_TRUE(edged().Signal(SIGKILL).ok());
  absl::StatusOr<int> killed = edged().WaitForExit(absl::Seconds(10));
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(*killed, 128 + SIGKILL);
  ASSERT_TRUE(first->WaitForEnd(absl::Seconds(30)).has_value());
  std::multiset<std::string> seen;
  CollectRequestIds(*first, seen);
  const size_t before_crash = seen.size();
  ASSERT_LT(before_crash, static_cast<size_t>(kCommands)) << "the crash came too late";

  // Same EDGE_ID, same group, same port; the peer reconnects at once.
  ASSERT_TRUE(edged().Restart().ok()) << EdgedLog();
  auto second = ConnectPeer("crash-peer");
  ASSERT_NE(second, nullptr);

  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  std::set<std::string> outcomes;
  std::multiset<std::string> after;
  std::vector<std::string> lettered;
  auto all_have_outcomes = [&](const std::vector<IncomingRecord>& letters) {
    after.clear();
    CollectRequestIds(*second, after);
    lettered.clear();
    for (const IncomingRecord& letter : letters) {
      auto value = ParseJsonObject(letter.value);
      if (!value.ok()) continue;
      auto original = ParseJsonObject(JsonString(*value, "original_message"));
      if (original.ok()) lettered.push_back(JsonString(*original, "request_id"));
    }
    outcomes = std::set<std::string>(seen.begin(), seen.end());
    outcomes.insert(after.begin(), after.end());
    outcomes.insert(lettered.begin(), lettered.end());
    return outcomes.size() >= static_cast<size_t>(kCommands);
  };
  ASSERT_TRUE(deadletters->WaitUntil(all_have_outcomes, absl::Seconds(60)))
      << outcomes.size() << " of " << kCommands << " commands have an outcome";
  for (int n = 0; n < kCommands; ++n) {
    ASSERT_EQ(outcomes.count(absl::StrCat("k-", n)), 1u) << "k-" << n << " lost";
  }
  for (const IncomingRecord& letter : deadletters->records()) {
    std::string reason = JsonString(*ParseJsonObject(letter.value), "reason");
    EXPECT_TRUE(reason == "peer_not_connected" || reason == "peer_write_failed" ||
                reason == "peer_slow")
        << reason;
  }
  // The peer reads commands of one partition in order on each stream.
  std::vector<int> order;
  for (const gp::EdgeMessage& m : second->Commands()) {
    if (m.has_file_delete_request()) order.push_back(std::stoi(m.request_id().substr(2)));
  }
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  size_t twice = 0;
  for (const std::string& id : after) twice += seen.count(id) > 0 ? 1 : 0;
  std::cout << "[ figures  ] the peer read " << before_crash << " commands before the crash and "
            << after.size() << " after the restart (" << twice << " of them a second time); "
            << lettered.size() << " dead-lettered\n";
}

}  // namespace
}  // namespace edge::testing
