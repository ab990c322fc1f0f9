#include "examples/peer/peer_options.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace example {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using Env = std::map<std::string, std::string>;

absl::StatusOr<PeerOptions> Parse(const std::vector<std::string>& args, const Env& env = {}) {
  return ParsePeerOptions(args, [&env](absl::string_view name) -> std::optional<std::string> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    return it->second;
  });
}

void ExpectRejected(const std::vector<std::string>& args, absl::string_view detail) {
  absl::StatusOr<PeerOptions> options = Parse(args);
  ASSERT_FALSE(options.ok());
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(options.status().message()), HasSubstr(detail));
}

TEST(PeerOptionsTest, ParsesEveryFlag) {
  absl::StatusOr<PeerOptions> options =
      Parse({"--edge=10.0.0.1:6000", "--peer-id=peer-1", "--catalog=a,b,c", "--keepalive-sec=5",
             "--offer=m/x.mkv:10,c:/y:20", "--stream=movie-7"});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->edge_address, "10.0.0.1:6000");
  EXPECT_EQ(options->peer_id, "peer-1");
  EXPECT_THAT(options->catalog, ElementsAre("a", "b", "c"));
  EXPECT_EQ(options->keepalive, absl::Seconds(5));
  ASSERT_EQ(options->offer.size(), 2u);
  EXPECT_EQ(options->offer[0].relative_path(), "m/x.mkv");
  EXPECT_EQ(options->offer[0].size_bytes(), 10);
  EXPECT_EQ(options->offer[1].relative_path(), "c:/y");
  EXPECT_EQ(options->offer[1].size_bytes(), 20);
  EXPECT_EQ(options->stream, "movie-7");
}

TEST(PeerOptionsTest, DefaultsAndEnvironmentFallback) {
  absl::StatusOr<PeerOptions> defaults = Parse({"--peer-id=p"});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->edge_address, "127.0.0.1:50051");
  EXPECT_THAT(defaults->catalog, IsEmpty());
  EXPECT_EQ(defaults->keepalive, absl::Seconds(30));
  EXPECT_THAT(defaults->offer, IsEmpty());
  EXPECT_EQ(defaults->stream, "");

  absl::StatusOr<PeerOptions> from_env = Parse({"--catalog=z"}, {{"PEER_ID", "env-peer"},
                                                                 {"EDGE_ADDRESS", "edge:1"},
                                                                 {"PEER_CATALOG", "x,y"},
                                                                 {"PEER_KEEPALIVE_SEC", "7"},
                                                                 {"PEER_STREAM", "movie-9"}});
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->peer_id, "env-peer");
  EXPECT_EQ(from_env->edge_address, "edge:1");
  EXPECT_THAT(from_env->catalog, ElementsAre("z"));  // the flag wins
  EXPECT_EQ(from_env->keepalive, absl::Seconds(7));
  EXPECT_EQ(from_env->stream, "movie-9");
}

TEST(PeerOptionsTest, RejectsBadInput) {
  ExpectRejected({}, "--peer-id: is required");
  ExpectRejected({"--peer-id=has space"}, "--peer-id:");
  ExpectRejected({"--peer-id=" + std::string(129, 'p')}, "--peer-id:");
  ExpectRejected({"--peer-id=p", "--edge="}, "--edge: must not be empty");
  ExpectRejected({"--peer-id=p", "--catalog=a,,b"}, "--catalog:");
  ExpectRejected({"--peer-id=p", "--keepalive-sec=0"}, "--keepalive-sec:");
  ExpectRejected({"--peer-id=p", "--keepalive-sec=x"}, "--keepalive-sec:");
  ExpectRejected({"--peer-id=p", "--offer=nosize"}, "--offer:");
  ExpectRejected({"--peer-id=p", "--offer=a:-1"}, "--offer:");
  ExpectRejected({"--peer-id=p", "--offer=:5"}, "--offer:");
  ExpectRejected({"--peer-id=p", "--stream="}, "--stream: must not be empty");
  ExpectRejected({"--peer-id=p", "--verbose=1"}, "unknown flag --verbose");
  ExpectRejected({"--peer-id=p", "stray"}, "expected --name=value");
  ExpectRejected({"--peer-id"}, "expected --name=value");
}

}  // namespace
}  // namespace example
}  // namespace edge
