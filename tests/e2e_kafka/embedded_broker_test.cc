// edged's embedded broker (KAFKA_BOOTSTRAP_SERVERS unset) in its default
// configuration: a burst of commands larger than one partition keeps
// (~5 MiB) is neither trimmed from the command topic before the edge reads
// it nor from the dead-letter topic after.
#include <signal.h>

#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "support/edged_process.h"
#include "support/kafka_client.h"

namespace edge::testing {
namespace {

// The embedded broker's address, from edged's log.
std::string EmbeddedBootstrap(const std::string& log) {
  std::smatch match;
  static const std::regex kBootstrap("\"bootstrap_servers\":\"([^\"]+)\"");
  return std::regex_search(log, match, kBootstrap) ? match[1].str() : "";
}

TEST(EdgedEmbeddedKafkaTest, CommandBurstBeyondOnePartitionsRetentionIsNotLost) {
  EdgedProcess::Options options;
  options.env = {{"EDGE_ID", "burst"}};
  auto edged = EdgedProcess::Start(options);
  ASSERT_TRUE(edged.ok()) << edged.status();
  const std::string bootstrap = EmbeddedBootstrap((*edged)->ReadLog());
  ASSERT_FALSE(bootstrap.empty()) << (*edged)->ReadLog();
  auto backend = KafkaClient::Create(bootstrap);
  ASSERT_TRUE(backend.ok()) << backend.status();

  // ~20 MiB of commands for 1,000 absent peers: each is dead-lettered
  // (peer_not_connected) with its original inside, ~22 MiB of letters.
  constexpr int kCommands = 10000;
  std::vector<std::pair<std::string, std::string>> burst;
  for (int i = 0; i < kCommands; ++i) {
    std::string peer = absl::StrCat("absent-", i % 1000);
    burst.emplace_back(
        peer, absl::StrCat(R"({"type":"file_delete","peer_id":")", peer, R"(","request_id":"b-)", i,
                           R"(","catalog_ids":[")", std::string(2000, 'c'), R"("]})"));
  }
  ASSERT_TRUE((*backend)->ProduceAll("edge-commands-burst", burst, absl::Seconds(120)).ok());

  auto commands = TopicReader::Create(bootstrap, "edge-commands-burst");
  ASSERT_TRUE(commands.ok()) << commands.status();
  ASSERT_TRUE((*commands)->CatchUp(absl::Seconds(60)).ok());
  EXPECT_EQ((*commands)->records().size(), static_cast<size_t>(kCommands));

  auto letters = TopicReader::Create(bootstrap, "edge-commands-burst.deadletter");
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_TRUE((*letters)->WaitForCount(kCommands, absl::Seconds(120)))
      << "dead letters: " << (*letters)->records().size();
  std::set<std::pair<std::string, std::string>> originals;
  for (const IncomingRecord& letter : (*letters)->records()) {
    auto value = ParseJsonObject(letter.value);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(JsonString(*value, "reason"), "peer_not_connected");
    const auto& f = value->fields();
    originals.emplace(absl::StrCat(f.at("original_partition").number_value()),
                      absl::StrCat(f.at("original_offset").number_value()));
  }
  EXPECT_EQ(originals.size(), static_cast<size_t>(kCommands));

  ASSERT_TRUE((*edged)->Signal(SIGTERM).ok());
  EXPECT_EQ((*edged)->WaitForExit(absl::Seconds(30)).value_or(-1), 0);
}

}  // namespace
}  // namespace edge::testing
