#include "edge/host_port.h"

#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::HasSubstr;

TEST(ParseHostPortTest, AcceptsNamesIpv4AndBracketedIpv6) {
  absl::StatusOr<HostPort> name = ParseHostPort("etcd-1.internal:2379", kConnectPort);
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->host, "etcd-1.internal");
  EXPECT_EQ(name->port, 2379);
  absl::StatusOr<HostPort> v4 = ParseHostPort("10.0.0.1:65535", kConnectPort);
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->host, "10.0.0.1");
  absl::StatusOr<HostPort> v6 = ParseHostPort("[::ffff:10.0.0.1]:1", kConnectPort);
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::ffff:10.0.0.1");  // Without the brackets.
  EXPECT_EQ(v6->port, 1);
}

TEST(ParseHostPortTest, PortZeroOnlyToListenOn) {
  absl::StatusOr<HostPort> listen = ParseHostPort("[::]:0", kListenPort);
  ASSERT_TRUE(listen.ok()) << listen.status();
  EXPECT_EQ(listen->host, "::");
  EXPECT_EQ(listen->port, 0);
  absl::StatusOr<HostPort> connect = ParseHostPort("etcd:0", kConnectPort);
  EXPECT_EQ(connect.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(connect.status().message()), HasSubstr("not a number in [1, 65535]"));
}

TEST(ParseHostPortTest, SaysWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "has no :port"},
      {"50051", "has no :port"},
      {"[::1]", "has no :port"},
      {"host:", "has port \"\", not a number in [0, 65535]"},
      {"host:port", "not a number in [0, 65535]"},
      {"host:+1", "not a number in [0, 65535]"},
      {"host: 1", "not a number in [0, 65535]"},
      {"host:-1", "not a number in [0, 65535]"},
      {"host:65536", "not a number in [0, 65535]"},
      {"host:000001", "not a number in [0, 65535]"},
      {":50051", "has an empty host"},
      {"[]:1", "unterminated or empty [IPv6] host"},
      {"[::1:50051", "unterminated or empty [IPv6] host"},
      {"[::g]:1", "has an invalid [IPv6] host"},
      {"::1:50051", "IPv6 address that is not in brackets"},
      {"ho st:1", "not a name or an address"},
      {"host/x:1", "not a name or an address"},
  };
  for (const auto& [address, problem] : cases) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(address, kListenPort);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << address;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(problem)) << address;
  }
}

}  // namespace
}  // namespace edge
