#include "edge/logger.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

// Logs one line through a text logger and returns it.
std::string TextLine(absl::string_view value) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  {
    Logger logger(LogLevel::kInfo, LogFormat::kText, fds[1]);
    logger.Info("peer refused", {{"peer_id", value}, {"status", "ok"}});
  }
  close(fds[1]);
  std::string line;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) line.append(buffer, n);
  close(fds[0]);
  return line;
}

TEST(LoggerTest, TextKeepsPlainValuesBare) {
  EXPECT_THAT(TextLine("peer-1"), HasSubstr(" peer_id=peer-1 status=ok\n"));
}

TEST(LoggerTest, TextEscapesControlBytesAndInvalidUtf8FromPeers) {
  // A peer_id as a hostile peer sends it: a fake second line, a terminal
  // escape sequence, a bell and bytes that are not UTF-8.
  const std::string line =
      TextLine(std::string("p\n2026-01-01T00:00:00.000Z error forged\x1b[31m\x07\xff\xfe", 47));
  EXPECT_EQ(line.find('\n'), line.size() - 1) << line;  // One line.
  EXPECT_THAT(line, Not(HasSubstr("\x1b"))) << line;
  EXPECT_THAT(line, Not(HasSubstr("\x07"))) << line;
  EXPECT_THAT(line, Not(HasSubstr("\xff"))) << line;
  EXPECT_THAT(line, HasSubstr("peer_id=\"p\\n2026-01-01T00:00:00.000Z error forged\\u001b[31m"
                              "\\u0007\xEF\xBF\xBD\xEF\xBF\xBD\""))
      << line;
  EXPECT_THAT(line, EndsWith(" status=ok\n"));
}

TEST(LoggerTest, TextQuotesValuesWithDelimiters) {
  EXPECT_THAT(TextLine("a=b"), HasSubstr("peer_id=\"a=b\""));
  EXPECT_THAT(TextLine("a\\b"), HasSubstr("peer_id=\"a\\\\b\""));
  EXPECT_THAT(TextLine(""), HasSubstr("peer_id=\"\""));
}

}  // namespace
}  // namespace edge
