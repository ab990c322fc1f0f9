// Faults end to end, with the real edged, real gRPC peers and a Kafka broker
// the test controls: the broker going away, produce errors, malformed
// commands, commands for absent peers. Events may be stored more than once;
// none may be lost, and no peer is dropped for the broker's sake.
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "e2e_kafka/edged_kafka_fixture.h"
#include "gtest/gtest.h"

namespace edge::testing {
namespace {

namespace gp = giggityflix_grpc_peer;

constexpr absl::Duration kTimeout = absl::Seconds(30);

gp::PeerMessage HashResponse(const std::string& request_id) {
  gp::PeerMessage m;
  m.set_request_id(request_id);
  m.mutable_file_hash_response()->set_catalog_id("c1");
  (*m.mutable_file_hash_response()->mutable_hashes())["sha256"] = "9f86d081";
  m.mutable_file_hash_response()->set_success(true);
  return m;
}

// The distinct request_ids among `records`.
std::set<std::string> DistinctRequestIds(const std::vector<IncomingRecord>& records) {
  std::vector<std::string> ids = RequestIds(records);
  return std::set<std::string>(ids.begin(), ids.end());
}

// Contract §3/§5: while the broker is unreachable events wait in edged's
// bounded buffer (KafkaMessageBusOptions::capacity, 10000 records in edged),
// acknowledgements stop, peers are pushed back but kept, and once the buffer
// is full new peers are refused with UNAVAILABLE. When the broker is back,
// every event is stored and acknowledged.
TEST_F(EdgedKafkaTest, BrokerOutagePushesPeersBackAndLosesNoEvent) {
  // Each peer sends more than PEER_SEND_QUEUE_MAX (1024, the default): the
  // edge stops reading a peer with that many messages unanswered, and the
  // acks of the whole outage, which come at once when the broker is back,
  // do not count toward its send queue, so no peer is ended as slow. With
  // that window per peer, only more than 10000 / 1024 peers together fill
  // the 10000 records edged buffers.
  constexpr int kPeers = 12;
  constexpr int kMessagesPerPeer = 1500;
  constexpr absl::Duration kOutage = absl::Seconds(10);
  StartEdged({{"PEER_MAX_MESSAGES_PER_SEC", "0"}, {"CATALOG_PULL_ON_CONNECT", "false"}});
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int p = 0; p < kPeers; ++p) {
    peers.push_back(ConnectPeer(absl::StrCat("outage-", p)));
    ASSERT_NE(peers.back(), nullptr);
    // Stored and acknowledged while the broker is up.
    ASSERT_TRUE(peers[p]->Send(HashResponse(absl::StrCat("before-", p))));
    ASSERT_TRUE(peers[p]->WaitForAck(absl::StrCat("before-", p), kTimeout));
  }

  ASSERT_TRUE(kafka().SetBrokerDown().ok());
  absl::Time down_at = absl::Now();
  std::vector<std::thread> senders;
  std::atomic<int> send_failures{0};
  for (int p = 0; p < kPeers; ++p) {
    senders.emplace_back([&, p] {
      for (int n = 0; n < kMessagesPerPeer; ++n) {
        if (!peers[p]->Send(HashResponse(absl::StrCat("during-", p, "-", n)))) {
          send_failures.fetch_add(1);
          return;
        }
      }
    });
  }

  // Once the buffer is full, a new peer is refused with UNAVAILABLE.
  std::vector<std::unique_ptr<TestPeer>> admitted_meanwhile;
  absl::Status refusal;
  for (int attempt = 0; absl::Now() < down_at + kOutage; ++attempt) {
    TestPeer::Options options;
    options.peer_id = absl::StrCat("newcomer-", attempt);
    options.admission_timeout = absl::Seconds(2);
    auto newcomer = TestPeer::Connect(edged().grpc_address(), options);
    if (!newcomer.ok()) {
      refusal = newcomer.status();
      break;
    }
    admitted_meanwhile.push_back(std::move(*newcomer));
  }
  EXPECT_TRUE(absl::IsUnavailable(refusal))
      << "no newcomer was refused during the outage: " << refusal;
  EXPECT_TRUE(absl::StrContains(refusal.message(), "buffer")) << refusal;

  absl::SleepFor(down_at + kOutage - absl::Now());  // The outage lasts its full length.
  // Nothing sent during the outage was acknowledged, and no peer was dropped.
  for (int p = 0; p < kPeers; ++p) {
    EXPECT_FALSE(peers[p]->end_status().has_value())
        << peers[p]->peer_id() << " ended: " << peers[p]->end_status()->error_message();
    for (int n = 0; n < kMessagesPerPeer; n += 97) {
      EXPECT_FALSE(peers[p]->HasAck(absl::StrCat("during-", p, "-", n)));
    }
  }
  ASSERT_TRUE(kafka().SetBrokerUp().ok());

  for (std::thread& sender : senders) sender.join();
  EXPECT_EQ(send_failures.load(), 0);
  for (int p = 0; p < kPeers; ++p) {
    // Acks come in order per peer: the last one means all came.
    EXPECT_TRUE(peers[p]->WaitForAck(absl::StrCat("during-", p, "-", kMessagesPerPeer - 1),
                                     absl::Seconds(60)))
        << peers[p]->peer_id();
    for (int n = 0; n < kMessagesPerPeer; ++n) {
      std::string id = absl::StrCat("during-", p, "-", n);
      ASSERT_TRUE(peers[p]->HasAck(id)) << id;
    }
    EXPECT_FALSE(peers[p]->end_status().has_value()) << peers[p]->peer_id();
  }

  // Every event is on its topic at least once.
  auto hashes = Reader(kFileHashTopic);
  ASSERT_NE(hashes, nullptr);
  std::set<std::string> stored;
  const size_t expected = kPeers * (kMessagesPerPeer + 1);
  bool all = hashes->WaitUntil(
      [&](const std::vector<IncomingRecord>& records) {
        stored = DistinctRequestIds(records);
        return stored.size() >= expected;
      },
      absl::Seconds(60));
  ASSERT_TRUE(all) << stored.size() << " of " << expected << " events stored";
  for (int p = 0; p < kPeers; ++p) {
    for (int n = 0; n < kMessagesPerPeer; ++n) {
      ASSERT_EQ(stored.count(absl::StrCat("during-", p, "-", n)), 1u);
    }
  }
  std::cout << "[ figures  ] " << hashes->records().size() << " records for " << expected
            << " events (" << hashes->records().size() - expected << " stored twice); "
            << admitted_meanwhile.size() << " newcomers admitted before the buffer filled\n";

  // Admitting again.
  auto after = ConnectPeer("after-outage");
  EXPECT_NE(after, nullptr);
}

// Produce requests failing with retriable errors (and a dropped connection)
// are retried: every event arrives, every message is acknowledged.
TEST_F(EdgedKafkaTest, ProduceErrorsAreRetriedUntilEveryEventIsStored) {
  constexpr int kMessages = 60;
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("retry-peer");
  ASSERT_NE(peer, nullptr);
  auto lifecycle = Reader(kLifecycleTopic);
  ASSERT_NE(lifecycle, nullptr);
  ASSERT_TRUE(lifecycle->WaitForCount(1, kTimeout));  // No produce of edged in flight now.

  // NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS,
  // LEADER_NOT_AVAILABLE, and a connection the broker drops.
  ASSERT_TRUE(
      kafka()
          .PushRequestErrors(kafka::EmbeddedKafka::kProduceRequest, {6, 7, 19, 5, -195, 6, 7, 19})
          .ok());
  for (int n = 0; n < kMessages; ++n) {
    ASSERT_TRUE(peer->Send(HashResponse(absl::StrCat("retried-", n))));
  }
  for (int n = 0; n < kMessages; ++n) {
    ASSERT_TRUE(peer->WaitForAck(absl::StrCat("retried-", n), kTimeout)) << n;
  }
  auto hashes = Reader(kFileHashTopic);
  ASSERT_NE(hashes, nullptr);
  std::set<std::string> stored;
  ASSERT_TRUE(hashes->WaitUntil(
      [&](const std::vector<IncomingRecord>& records) {
        stored = DistinctRequestIds(records);
        return stored.size() >= static_cast<size_t>(kMessages);
      },
      kTimeout))
      << stored.size() << " of " << kMessages;
  EXPECT_FALSE(peer->end_status().has_value());
}

struct Malformed {
  std::string name;
  std::string value;
  std::string reason;
};

// Contract §4: each malformed value is dead-lettered with its reason and the
// original preserved, and the consumer goes on to the next command.
TEST_F(EdgedKafkaTest, MalformedCommandsAreDeadLetteredAndTheConsumerGoesOn) {
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("peer-m");
  ASSERT_NE(peer, nullptr);
  const std::string garbage("\xff\xfe\x00\x01\x80garbage\xc3\x28", 14);
  std::vector<Malformed> cases = {
      {"invalid JSON", R"({"type":"file_hash","peer_id":)", "invalid_json"},
      {"unknown type", R"({"type":"format_disk","peer_id":"peer-m"})", "unknown_type"},
      {"missing peer_id", R"({"type":"file_hash","catalog_id":"c1"})", "invalid_command"},
      {"wrong field types", R"({"type":"file_hash","peer_id":"peer-m","catalog_id":["c1"]})",
       "invalid_command"},
      {"wrong field types",
       R"({"type":"screenshot","peer_id":"peer-m","catalog_id":"c1","quantity":"three"})",
       "invalid_command"},
      {"not an object", R"(["file_hash","peer-m"])", "invalid_command"},
      {"binary garbage", garbage, "invalid_json"},
      {"empty value", "", "invalid_json"},
  };
  std::vector<std::pair<std::string, std::string>> produce;
  for (const Malformed& m : cases) produce.emplace_back("peer-m", m.value);
  produce.emplace_back(
      "peer-m",
      R"({"type":"file_hash","peer_id":"peer-m","request_id":"after-bad","catalog_id":"c1"})");
  ProduceCommands(produce);

  // The valid command behind them all is delivered, and nothing else is.
  EXPECT_TRUE(peer->WaitForMessage(
      [](const gp::EdgeMessage& m) { return m.request_id() == "after-bad"; }, kTimeout));
  for (const gp::EdgeMessage& m : peer->Commands()) {
    EXPECT_EQ(m.request_id(), "after-bad") << m.ShortDebugString();
  }

  // Where each command was stored, to check original_partition/offset.
  auto commands = Reader(commands_topic());
  ASSERT_NE(commands, nullptr);
  ASSERT_TRUE(commands->WaitForCount(produce.size(), kTimeout));
  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  ASSERT_TRUE(deadletters->WaitForCount(cases.size(), kTimeout))
      << deadletters->records().size() << " dead letters of " << cases.size();
  ASSERT_TRUE(deadletters->CatchUp().ok());
  ASSERT_EQ(deadletters->records().size(), cases.size());

  for (const IncomingRecord& letter : deadletters->records()) {
    EXPECT_EQ(letter.key, "peer-m");
    auto value = ParseJsonObject(letter.value);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(JsonString(*value, "edge_id"), edge_id());
    EXPECT_EQ(JsonString(*value, "original_topic"), commands_topic());
    EXPECT_FALSE(JsonString(*value, "detail").empty());
    // Find the command it came from by its offset.
    int64_t offset = static_cast<int64_t>(value->fields().at("original_offset").number_value());
    int32_t partition =
        static_cast<int32_t>(value->fields().at("original_partition").number_value());
    const IncomingRecord* original = nullptr;
    for (const IncomingRecord& c : commands->records()) {
      if (c.offset == offset && c.partition == partition) original = &c;
    }
    ASSERT_NE(original, nullptr) << "no command at " << partition << "@" << offset;
    const Malformed* expected = nullptr;
    for (const Malformed& m : cases) {
      if (m.value == original->value) expected = &m;
    }
    ASSERT_NE(expected, nullptr) << "dead letter for a valid command: " << original->value;
    EXPECT_EQ(JsonString(*value, "reason"), expected->reason) << expected->name;
    if (expected->name == "binary garbage") {
      std::string decoded;
      ASSERT_TRUE(absl::Base64Unescape(JsonString(*value, "original_message_base64"), &decoded));
      EXPECT_EQ(decoded, garbage);
    } else {
      EXPECT_EQ(JsonString(*value, "original_message"), expected->value) << expected->name;
    }
    // The peer is named when the command could be read that far.
    if (expected->reason == "unknown_type") {
      EXPECT_EQ(JsonString(*value, "peer_id"), "peer-m") << expected->name;
    }
  }
}

// A 1 MiB value is dead-lettered whole. Its dead letter is larger than the
// value, so edged's producer must be allowed records that large (librdkafka's
// default message.max.bytes is 1000000): an operator setting, made here
// through KAFKA_CONFIG_FILE.
TEST_F(EdgedKafkaTest, OneMebibyteValueIsDeadLetteredWhole) {
  AppendKafkaConfig("producer.message.max.bytes=4194304");
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("peer-big");
  ASSERT_NE(peer, nullptr);
  const std::string huge = R"({"type":"file_hash","peer_id":"peer-big","catalog_id":")" +
                           std::string(1 << 20, 'x');  // 1 MiB, the string never closed
  ProduceCommands(
      {{"peer-big", huge},
       {"peer-big",
        R"({"type":"file_hash","peer_id":"peer-big","request_id":"after-big","catalog_id":"c1"})"}});
  EXPECT_TRUE(peer->WaitForMessage(
      [](const gp::EdgeMessage& m) { return m.request_id() == "after-big"; }, kTimeout));
  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  ASSERT_TRUE(deadletters->WaitForCount(1, kTimeout));
  auto value = ParseJsonObject(deadletters->records()[0].value);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(JsonString(*value, "reason"), "invalid_json");
  EXPECT_TRUE(JsonString(*value, "original_message") == huge) << "original not preserved";
  EXPECT_EQ(deadletters->records()[0].key, "peer-big");
}

TEST_F(EdgedKafkaTest, CommandForAPeerNotConnectedIsDeadLettered) {
  StartEdged({{"COMMAND_HOLD_MS", "200"}});  // held that long, then dead-lettered
  const std::string command =
      R"({"type":"file_hash","peer_id":"ghost","request_id":"r-ghost","catalog_id":"c1"})";
  ProduceCommand("ghost", command);
  auto deadletters = Reader(deadletter_topic());
  ASSERT_NE(deadletters, nullptr);
  ASSERT_TRUE(deadletters->WaitForCount(1, kTimeout));
  const IncomingRecord& letter = deadletters->records()[0];
  EXPECT_EQ(letter.key, "ghost");
  auto value = ParseJsonObject(letter.value);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(JsonString(*value, "reason"), "peer_not_connected");
  EXPECT_EQ(JsonString(*value, "peer_id"), "ghost");
  EXPECT_EQ(JsonString(*value, "edge_id"), edge_id());
  EXPECT_EQ(JsonString(*value, "original_message"), command);
  EXPECT_EQ(JsonString(*value, "original_topic"), commands_topic());
  for (const char* field : {"original_partition", "original_offset", "timestamp", "detail"}) {
    EXPECT_TRUE(value->fields().contains(field)) << field;
  }
}

}  // namespace
}  // namespace edge::testing
