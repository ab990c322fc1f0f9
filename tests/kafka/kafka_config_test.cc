#include "kafka/kafka_config.h"

#include <fstream>
#include <string>

#include "edge/kafka/kafka_message_bus.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge::kafka::internal {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

std::string WriteTemp(const std::string& text, const std::string& suffix = "") {
  std::string path = ::testing::TempDir() + "/kafka_config_test_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + suffix;
  std::ofstream(path) << text;
  return path;
}

TEST(ParseKafkaConfigFileTest, ReadsPropertiesSkippingCommentsAndBlankLines) {
  std::string path = WriteTemp(
      "# security\n"
      "security.protocol=SASL_SSL\n"
      "\n"
      "  sasl.mechanisms = PLAIN  \n"
      "sasl.password=a=b\n"
      "   # indented comment\n");
  auto props = ParseKafkaConfigFile(path);
  ASSERT_TRUE(props.ok()) << props.status();
  EXPECT_THAT(*props, ::testing::ElementsAre(Pair("security.protocol", "SASL_SSL"),
                                             Pair("sasl.mechanisms", "PLAIN"),
                                             Pair("sasl.password", "a=b")));
}

TEST(ParseKafkaConfigFileTest, MalformedLineIsInvalidArgumentWithLineNumber) {
  std::string path = WriteTemp("linger.ms=5\n\nnot a property\n");
  auto props = ParseKafkaConfigFile(path);
  ASSERT_TRUE(absl::IsInvalidArgument(props.status())) << props.status();
  EXPECT_THAT(props.status().message(), HasSubstr("line 3"));
}

TEST(ParseKafkaConfigFileTest, EmptyNameIsInvalidArgument) {
  auto props = ParseKafkaConfigFile(WriteTemp("=value\n"));
  ASSERT_TRUE(absl::IsInvalidArgument(props.status()));
  EXPECT_THAT(props.status().message(), HasSubstr("line 1"));
}

TEST(ParseKafkaConfigFileTest, MissingFileIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(ParseKafkaConfigFile("/nonexistent/kafka.conf").status()));
}

TEST(ParseKafkaConfigFileTest, ReadsKafkaPropertyLines) {
  std::string path = WriteTemp(
      "# security\n"
      "\n"
      "security.protocol = SASL_SSL\n"
      "sasl.password=a=b\r\n"
      "  linger.ms=5  \n");
  auto properties = ParseKafkaConfigFile(path);
  ASSERT_TRUE(properties.ok()) << properties.status();
  EXPECT_THAT(*properties,
              ::testing::ElementsAre(Pair("security.protocol", "SASL_SSL"),
                                     Pair("sasl.password", "a=b"), Pair("linger.ms", "5")));
}

TEST(ParseKafkaConfigFileTest, RejectsMalformedKafkaPropertyLines) {
  std::string path = WriteTemp("acks=all\nlinger.ms\n");
  auto properties = ParseKafkaConfigFile(path);
  ASSERT_FALSE(properties.ok());
  EXPECT_THAT(std::string(properties.status().message()),
              AllOf(StartsWith("KAFKA_CONFIG_FILE: "), HasSubstr("line 2")));
  EXPECT_FALSE(ParseKafkaConfigFile(::testing::TempDir() + "/kafka_config_test_none").ok());
  EXPECT_FALSE(ParseKafkaConfigFile(WriteTemp("=x\n", "_nokey")).ok());
}

// Every error names the variable and the file, whatever its cause; a
// malformed line is not echoed (it may be a secret).
TEST(ParseKafkaConfigFileTest, ErrorsNameTheVariableAndTheFile) {
  std::string path = WriteTemp("sasl.password\n");
  auto malformed = ParseKafkaConfigFile(path);
  EXPECT_TRUE(absl::IsInvalidArgument(malformed.status())) << malformed.status();
  EXPECT_THAT(std::string(malformed.status().message()),
              AllOf(StartsWith("KAFKA_CONFIG_FILE: \"" + path + "\" line 1"),
                    ::testing::Not(HasSubstr("sasl.password"))));
  auto missing = ParseKafkaConfigFile("/nonexistent/kafka.conf");
  EXPECT_THAT(std::string(missing.status().message()),
              StartsWith("KAFKA_CONFIG_FILE: cannot read \"/nonexistent/kafka.conf\": "));
}

TEST(BuildConfTest, UnknownPropertyIsInvalidArgumentNamingIt) {
  auto conf = BuildConf({{"linger.ms", "5"}, {"no.such.property", "1"}});
  ASSERT_TRUE(absl::IsInvalidArgument(conf.status()));
  EXPECT_THAT(conf.status().message(), HasSubstr("no.such.property"));
}

TEST(BuildConfTest, InvalidValueIsInvalidArgumentNamingIt) {
  auto conf = BuildConf({{"linger.ms", "soon"}});
  ASSERT_TRUE(absl::IsInvalidArgument(conf.status()));
  EXPECT_THAT(conf.status().message(), HasSubstr("linger.ms"));
}

TEST(BuildConfTest, ClientPrefixesApplyToOneClientOnly) {
  KafkaProperties props = {{"producer.linger.ms", "2"}, {"consumer.fetch.wait.max.ms", "7"}};
  auto producer = BuildConf(props, ClientKind::kProducer);
  ASSERT_TRUE(producer.ok()) << producer.status();
  char value[64];
  size_t size = sizeof(value);
  ASSERT_EQ(rd_kafka_conf_get(producer->get(), "linger.ms", value, &size), RD_KAFKA_CONF_OK);
  EXPECT_STREQ(value, "2");
  size = sizeof(value);
  ASSERT_EQ(rd_kafka_conf_get(producer->get(), "fetch.wait.max.ms", value, &size),
            RD_KAFKA_CONF_OK);
  EXPECT_STRNE(value, "7");
}

TEST(KafkaMessageBusCreateTest, RejectsBadOptions) {
  KafkaMessageBusOptions no_servers;
  EXPECT_TRUE(absl::IsInvalidArgument(KafkaMessageBus::Create(no_servers).status()));

  KafkaMessageBusOptions bad_property;
  bad_property.bootstrap_servers = "127.0.0.1:1";
  bad_property.properties = {{"acks", "sometimes"}};
  auto bus = KafkaMessageBus::Create(bad_property);
  ASSERT_TRUE(absl::IsInvalidArgument(bus.status()));
  EXPECT_THAT(bus.status().message(), HasSubstr("acks"));

  KafkaMessageBusOptions zero_capacity;
  zero_capacity.bootstrap_servers = "127.0.0.1:1";
  zero_capacity.capacity = 0;
  EXPECT_TRUE(absl::IsInvalidArgument(KafkaMessageBus::Create(zero_capacity).status()));
}

TEST(KafkaErrorToStatusTest, MapsToCanonicalCodes) {
  EXPECT_TRUE(KafkaErrorToStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "x").ok());
  EXPECT_TRUE(
      absl::IsInvalidArgument(KafkaErrorToStatus(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, "publish")));
  EXPECT_TRUE(absl::IsPermissionDenied(
      KafkaErrorToStatus(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "publish")));
  EXPECT_TRUE(absl::IsUnavailable(KafkaErrorToStatus(RD_KAFKA_RESP_ERR__TRANSPORT, "publish")));
  EXPECT_THAT(KafkaErrorToStatus(RD_KAFKA_RESP_ERR__TRANSPORT, "publish to t").message(),
              HasSubstr("publish to t"));
}

}  // namespace
}  // namespace edge::kafka::internal
