#include "edge/etcd/etcd_tracker.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::ElementsAre;

TEST(ParseEtcdEndpointsTest, AcceptsHostPortListsWithOptionalHttp) {
  auto endpoints = etcd::ParseEtcdEndpoints(
      "127.0.0.1:2379, http://etcd-1.internal:2379/ ,[::1]:2380");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("127.0.0.1:2379", "etcd-1.internal:2379",
                                      "[::1]:2380"));
}

TEST(ParseEtcdEndpointsTest, HttpsEndpointsAskForTls) {
  bool tls = false;
  auto endpoints =
      etcd::ParseEtcdEndpoints("https://etcd-1:2379,HTTPS://[::1]:2379/", &tls);
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  EXPECT_THAT(*endpoints, ElementsAre("etcd-1:2379", "[::1]:2379"));
  EXPECT_TRUE(tls);
  ASSERT_TRUE(etcd::ParseEtcdEndpoints("http://etcd-1:2379", &tls).ok());
  EXPECT_FALSE(tls);
}

TEST(ParseEtcdEndpointsTest, RejectsMalformedLists) {
  for (const char* bad :
       {"", "127.0.0.1:2379,", "127.0.0.1", ":2379", "host:0", "host:65536",
        "host:port", "https://host:2379,host:2380", "::1:2379"}) {
    auto endpoints = etcd::ParseEtcdEndpoints(bad);
    EXPECT_EQ(endpoints.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(std::string(endpoints.status().message()),
                ::testing::HasSubstr("ETCD_ENDPOINTS"))
        << bad;
  }
}

}  // namespace
}  // namespace edge
