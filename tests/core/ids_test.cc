#include "edge/ids.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

TEST(PeerIdTest, AcceptsTheDocumentedCharacters) {
  EXPECT_TRUE(ValidatePeerId("Peer-1.home_a:b@c").ok());
  EXPECT_TRUE(ValidatePeerId(std::string(128, 'a')).ok());
}

TEST(PeerIdTest, RejectsEmptyLongAndForeignCharacters) {
  EXPECT_EQ(ValidatePeerId("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidatePeerId(std::string(129, 'a')).code(), absl::StatusCode::kInvalidArgument);
  for (const char* bad : {"a b", "a/b", "a#b", "é", "a\nb", "a*"}) {
    EXPECT_EQ(ValidatePeerId(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(RequestIdTest, IsAVersion4UuidAndDoesNotRepeat) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 100000; ++i) {
    std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 36u);
    ASSERT_EQ(id[14], '4');
    ASSERT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;
    ASSERT_TRUE(seen.insert(id).second) << "repeated " << id;
  }
}

TEST(Utf8Test, TellsWellFormedFromMalformed) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xF0\x9F\x8E\xAC"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xFF\xFE garbage"));  // not UTF-8 at all
}

}  // namespace
}  // namespace edge
