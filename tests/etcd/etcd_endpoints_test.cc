#include <string>
#include <utility>

#include "edge/etcd/etcd_tracker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::ElementsAre;

TEST(ParseEtcdEndpointsTest, AcceptsHostPortListsWithOptionalHttp) {
  auto endpoints =
      etcd::ParseEtcdEndpoints("127.0.0.1:2379, http://etcd-1.internal:2379/ ,[::1]:2380");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("127.0.0.1:2379", "etcd-1.internal:2379", "[::1]:2380"));
}

TEST(ParseEtcdEndpointsTest, HttpsEndpointsAskForTls) {
  bool tls = false;
  auto endpoints = etcd::ParseEtcdEndpoints("https://etcd-1:2379,HTTPS://[::1]:2379/", &tls);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("etcd-1:2379", "[::1]:2379"));
  EXPECT_TRUE(tls);
  ASSERT_TRUE(etcd::ParseEtcdEndpoints("http://etcd-1:2379", &tls).ok());
  EXPECT_FALSE(tls);
}

TEST(ParseEtcdEndpointsTest, RejectsMalformedLists) {
  for (const char* bad : {"", "127.0.0.1:2379,", "127.0.0.1", ":2379", "host:0", "host:65536",
                          "host:port", "https://host:2379,host:2380", "::1:2379"}) {
    auto endpoints = etcd::ParseEtcdEndpoints(bad);
    EXPECT_EQ(endpoints.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(endpoints.status().message()), ::testing::HasSubstr("ETCD_ENDPOINTS"))
        << bad;
  }
}

TEST(ParseEtcdEndpointsTest, SchemesAreCaseInsensitive) {
  bool tls = false;
  auto endpoints = etcd::ParseEtcdEndpoints("Https://etcd-1:2379,HTTPS://etcd-2:2379", &tls);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("etcd-1:2379", "etcd-2:2379"));
  EXPECT_TRUE(tls);
  endpoints = etcd::ParseEtcdEndpoints("HTTP://etcd-1:2379", &tls);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("etcd-1:2379"));
  EXPECT_FALSE(tls);
}

TEST(ParseEtcdEndpointsTest, AcceptsBracketedIpv6) {
  auto endpoints =
      etcd::ParseEtcdEndpoints("[::1]:2379,http://[fd00::7]:2380,[::ffff:10.0.0.1]:2379");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("[::1]:2379", "[fd00::7]:2380", "[::ffff:10.0.0.1]:2379"));
}

// Each bad endpoint is refused with a message that names the variable, the
// endpoint as written, and what is wrong with it.
TEST(ParseEtcdEndpointsTest, ErrorsNameTheEndpointAndTheProblem) {
  const std::pair<const char*, const char*> cases[] = {
      {"a:1,", "endpoint \"\" is empty"},
      {"etcd", "\"etcd\" has no :port"},
      {"[::1]", "\"[::1]\" has no :port"},
      {"::1:2379", "not in brackets ([::1]:port)"},
      {"[]:2379", "unterminated or empty [IPv6] host"},
      {"[::1:2379", "unterminated or empty [IPv6] host"},
      {"[zz::1]:2379", "invalid [IPv6] host"},
      {":2379", "has an empty host"},
      {"et cd:2379", "not a name or an address"},
      {"etcd/x:2379", "not a name or an address"},
      {"etcd:+2379", "has port \"+2379\", not a number in [1, 65535]"},
      {"etcd: 2379", "not a number in [1, 65535]"},
      {"etcd:0", "not a number in [1, 65535]"},
      {"etcd:65536", "not a number in [1, 65535]"},
      {"etcd:002379", "not a number in [1, 65535]"},
      {"ftp://etcd:2379", "scheme other than http:// or https://"},
      {"https://a:2379,http://b:2379", "mixes https:// with plaintext endpoints"},
  };
  for (const auto& [bad, problem] : cases) {
    auto endpoints = etcd::ParseEtcdEndpoints(bad);
    EXPECT_EQ(endpoints.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(
        std::string(endpoints.status().message()),
        ::testing::AllOf(::testing::StartsWith("ETCD_ENDPOINTS: "), ::testing::HasSubstr(problem)))
        << bad;
  }
}

}  // namespace
}  // namespace edge
