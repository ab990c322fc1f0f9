#include "config.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using Env = std::map<std::string, std::string>;

absl::StatusOr<EdgedConfig> Parse(const Env& env, absl::string_view hostname = "edge-host") {
  return ConfigFromEnvironment(
      [&env](absl::string_view name) -> std::optional<std::string> {
        auto it = env.find(std::string(name));
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      hostname);
}

// Expects `env` to be rejected with a message that starts with `variable`.
void ExpectRejected(const Env& env, absl::string_view variable, absl::string_view detail = "") {
  absl::StatusOr<EdgedConfig> config = Parse(env);
  ASSERT_FALSE(config.ok()) << "accepted " << variable;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), StartsWith(absl::StrCat(variable, ": ")));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(detail));
}

TEST(ConfigTest, EmptyEnvironmentGivesContractDefaults) {
  absl::StatusOr<EdgedConfig> config = Parse({}, "host-7");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->edge_id, "host-7");
  EXPECT_EQ(config->grpc_server_address, "0.0.0.0:50051");
  EXPECT_EQ(config->max_peers, 10000);
  EXPECT_EQ(config->duplicate_policy, DuplicatePolicy::kReject);
  EXPECT_EQ(config->peer_timeout, absl::Seconds(120));
  EXPECT_EQ(config->peer_send_queue_max, 1024);
  EXPECT_EQ(config->grpc_keepalive_time, absl::Milliseconds(30000));
  EXPECT_EQ(config->grpc_keepalive_timeout, absl::Milliseconds(10000));
  EXPECT_EQ(config->grpc_max_message_bytes, 4194304);
  EXPECT_FALSE(config->tls_cert_file.has_value());
  EXPECT_FALSE(config->tls_key_file.has_value());
  EXPECT_FALSE(config->tls_client_ca_file.has_value());
  EXPECT_FALSE(config->peer_id_from_cert);
  EXPECT_FALSE(config->kafka_bootstrap_servers.has_value());
  EXPECT_EQ(config->kafka_group_id, "edge-host-7");
  EXPECT_FALSE(config->kafka_config_file.has_value());
  EXPECT_EQ(config->commands_topic_pattern, "edge-commands-{edge_id}");
  EXPECT_EQ(config->deadletter_topic_pattern, "edge-commands-{edge_id}.deadletter");
  EXPECT_EQ(config->topics.commands, "edge-commands-host-7");
  EXPECT_EQ(config->topics.deadletter, "edge-commands-host-7.deadletter");
  EXPECT_EQ(config->topics.lifecycle, "peer-lifecycle-events");
  EXPECT_EQ(config->topics.catalog_updates, "peer-catalog-updates");
  EXPECT_EQ(config->topics.file_delete_responses, "file-delete-responses");
  EXPECT_EQ(config->topics.file_hash_responses, "file-hash-responses");
  EXPECT_EQ(config->topics.file_offers, "peer-file-offers");
  EXPECT_EQ(config->topics.webrtc_signaling, "webrtc-signaling");
  EXPECT_TRUE(config->catalog_pull_on_connect);
  EXPECT_EQ(config->webrtc_reply_timeout, absl::Milliseconds(10000));
  EXPECT_EQ(config->webrtc_session_ttl, absl::Seconds(300));
  EXPECT_EQ(config->tracker, TrackerKind::kLocal);
  EXPECT_THAT(config->etcd_endpoints, ElementsAre("127.0.0.1:2379"));
  EXPECT_EQ(config->tracker_lease_ttl, absl::Seconds(10));
  EXPECT_FALSE(config->tracker_fail_open);
  EXPECT_EQ(config->tracker_key_prefix, "/giggityflix/");
  EXPECT_EQ(config->metrics_address, std::optional<std::string>("0.0.0.0:9464"));
  EXPECT_EQ(config->shutdown_timeout, absl::Seconds(15));
  EXPECT_EQ(config->drain_rate_per_sec, 500);
  EXPECT_EQ(config->peer_max_messages_per_sec, 1000);
  EXPECT_EQ(config->max_new_streams_per_sec, 0);
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->log_format, LogFormat::kText);
}

TEST(ConfigTest, EdgeIdDefaultsToHostNameAndCanBeSet) {
  EXPECT_EQ(Parse({}, "node1.example.org")->edge_id, "node1.example.org");
  EXPECT_EQ(Parse({{"EDGE_ID", "edge-a_1.b"}}, "host")->edge_id, "edge-a_1.b");
}

TEST(ConfigTest, RejectsInvalidEdgeId) {
  ExpectRejected({{"EDGE_ID", ""}}, "EDGE_ID", "[A-Za-z0-9._:@-]");
  ExpectRejected({{"EDGE_ID", "edge 1"}}, "EDGE_ID", "\"edge 1\"");
  ExpectRejected({{"EDGE_ID", "edge/1"}}, "EDGE_ID");
  ExpectRejected({{"EDGE_ID", std::string(129, 'e')}}, "EDGE_ID");
  EXPECT_TRUE(Parse({{"EDGE_ID", std::string(128, 'e')}}).ok());
}

TEST(ConfigTest, RejectsUnusableHostNameWhenEdgeIdUnset) {
  absl::StatusOr<EdgedConfig> config = Parse({}, "");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(std::string(config.status().message()),
              StartsWith("EDGE_ID: not set, and the host name"));
  EXPECT_TRUE(Parse({{"EDGE_ID", "e1"}}, "").ok());
}

TEST(ConfigTest, EdgeIdWithCharactersKafkaRejectsFailsTopicResolution) {
  // ':' is allowed in an id but not in a topic name.
  ExpectRejected({{"EDGE_ID", "edge:1"}}, "EDGE_COMMANDS_TOPIC_PATTERN",
                 "\"edge-commands-edge:1\"");
  EXPECT_TRUE(Parse({{"EDGE_ID", "edge:1"},
                     {"EDGE_COMMANDS_TOPIC_PATTERN", "commands"},
                     {"DEADLETTER_TOPIC_PATTERN", "commands.dead"}})
                  .ok());
}

TEST(ConfigTest, ResolvesBothPlaceholdersInTopicPatterns) {
  absl::StatusOr<EdgedConfig> config = Parse({{"EDGE_ID", "e7"},
                                              {"EDGE_COMMANDS_TOPIC_PATTERN", "cmd.{}.{edge_id}"},
                                              {"DEADLETTER_TOPIC_PATTERN", "dead-{}"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->topics.commands, "cmd.e7.e7");
  EXPECT_EQ(config->topics.deadletter, "dead-e7");
  EXPECT_EQ(config->commands_topic_pattern, "cmd.{}.{edge_id}");
  EXPECT_EQ(ResolveTopicPattern("x-{edge_id}-{}", "z"), "x-z-z");
  EXPECT_EQ(ResolveTopicPattern("plain", "z"), "plain");
}

TEST(ConfigTest, RejectsInvalidTopicPatterns) {
  ExpectRejected({{"EDGE_COMMANDS_TOPIC_PATTERN", "cmd-{edge}"}}, "EDGE_COMMANDS_TOPIC_PATTERN",
                 "only {edge_id} and {}");
  ExpectRejected({{"EDGE_COMMANDS_TOPIC_PATTERN", ""}}, "EDGE_COMMANDS_TOPIC_PATTERN",
                 "must not be empty");
  ExpectRejected({{"DEADLETTER_TOPIC_PATTERN", "dead letters"}}, "DEADLETTER_TOPIC_PATTERN");
  ExpectRejected({{"DEADLETTER_TOPIC_PATTERN", "edge-commands-{}"}}, "DEADLETTER_TOPIC_PATTERN",
                 "the command topic itself");
  ExpectRejected({{"EDGE_COMMANDS_TOPIC_PATTERN", std::string(250, 'c')}},
                 "EDGE_COMMANDS_TOPIC_PATTERN");
}

TEST(ConfigTest, EtcdTrackerNeedsPerEdgeCommandTopic) {
  ExpectRejected({{"TRACKER", "etcd"}, {"EDGE_COMMANDS_TOPIC_PATTERN", "cmds"}},
                 "EDGE_COMMANDS_TOPIC_PATTERN", "TRACKER=etcd");
  EXPECT_TRUE(Parse({{"TRACKER", "local"}, {"EDGE_COMMANDS_TOPIC_PATTERN", "cmds"}}).ok());
}

TEST(ConfigTest, EventTopicsAreValidatedAsKafkaNames) {
  const char* names[] = {"PEER_LIFECYCLE_EVENTS_TOPIC", "PEER_CATALOG_UPDATES_TOPIC",
                         "FILE_DELETE_RESPONSES_TOPIC", "FILE_HASH_RESPONSES_TOPIC",
                         "FILE_OFFERS_TOPIC",           "WEBRTC_SIGNALING_TOPIC"};
  for (const char* name : names) {
    SCOPED_TRACE(name);
    ExpectRejected({{name, "bad/topic"}}, name, "[A-Za-z0-9._-]");
    ExpectRejected({{name, ""}}, name, "must not be empty");
    ExpectRejected({{name, ".."}}, name);
  }
  absl::StatusOr<EdgedConfig> config = Parse({{"PEER_LIFECYCLE_EVENTS_TOPIC", "a.life"},
                                              {"PEER_CATALOG_UPDATES_TOPIC", "a.cat"},
                                              {"FILE_DELETE_RESPONSES_TOPIC", "a.del"},
                                              {"FILE_HASH_RESPONSES_TOPIC", "a.hash"},
                                              {"FILE_OFFERS_TOPIC", "a.offer"},
                                              {"WEBRTC_SIGNALING_TOPIC", "a_rtc-1"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->topics.lifecycle, "a.life");
  EXPECT_EQ(config->topics.catalog_updates, "a.cat");
  EXPECT_EQ(config->topics.file_delete_responses, "a.del");
  EXPECT_EQ(config->topics.file_hash_responses, "a.hash");
  EXPECT_EQ(config->topics.file_offers, "a.offer");
  EXPECT_EQ(config->topics.webrtc_signaling, "a_rtc-1");
}

TEST(ConfigTest, IntegersAreStrictAndRanged) {
  ExpectRejected({{"MAX_PEERS", "abc"}}, "MAX_PEERS", "\"abc\" is not an integer in [1, 1000000]");
  ExpectRejected({{"MAX_PEERS", "0"}}, "MAX_PEERS");
  ExpectRejected({{"MAX_PEERS", "1000001"}}, "MAX_PEERS");
  ExpectRejected({{"MAX_PEERS", " 5"}}, "MAX_PEERS");
  ExpectRejected({{"MAX_PEERS", "+5"}}, "MAX_PEERS");
  ExpectRejected({{"MAX_PEERS", "-5"}}, "MAX_PEERS");
  ExpectRejected({{"MAX_PEERS", ""}}, "MAX_PEERS");
  ExpectRejected({{"MAX_PEERS", "99999999999999999999999"}}, "MAX_PEERS");
  EXPECT_EQ(Parse({{"MAX_PEERS", "1"}})->max_peers, 1);
  EXPECT_EQ(Parse({{"MAX_PEERS", "1000000"}})->max_peers, 1000000);
}

TEST(ConfigTest, ParsesEveryNumericVariable) {
  absl::StatusOr<EdgedConfig> config = Parse({{"PEER_TIMEOUT_SEC", "7"},
                                              {"PEER_SEND_QUEUE_MAX", "8"},
                                              {"GRPC_KEEPALIVE_TIME_MS", "1500"},
                                              {"GRPC_KEEPALIVE_TIMEOUT_MS", "250"},
                                              {"GRPC_MAX_MESSAGE_BYTES", "65536"},
                                              {"WEBRTC_REPLY_TIMEOUT_MS", "20"},
                                              {"WEBRTC_SESSION_TTL_SEC", "30"},
                                              {"TRACKER_LEASE_TTL_SEC", "4"},
                                              {"SHUTDOWN_TIMEOUT_SEC", "3"},
                                              {"DRAIN_RATE_PER_SEC", "9"},
                                              {"PEER_MAX_MESSAGES_PER_SEC", "0"},
                                              {"MAX_NEW_STREAMS_PER_SEC", "250"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->peer_timeout, absl::Seconds(7));
  EXPECT_EQ(config->peer_send_queue_max, 8);
  EXPECT_EQ(config->grpc_keepalive_time, absl::Milliseconds(1500));
  EXPECT_EQ(config->grpc_keepalive_timeout, absl::Milliseconds(250));
  EXPECT_EQ(config->grpc_max_message_bytes, 65536);
  EXPECT_EQ(config->webrtc_reply_timeout, absl::Milliseconds(20));
  EXPECT_EQ(config->webrtc_session_ttl, absl::Seconds(30));
  EXPECT_EQ(config->tracker_lease_ttl, absl::Seconds(4));
  EXPECT_EQ(config->shutdown_timeout, absl::Seconds(3));
  EXPECT_EQ(config->drain_rate_per_sec, 9);
  EXPECT_EQ(config->peer_max_messages_per_sec, 0);
  EXPECT_EQ(config->max_new_streams_per_sec, 250);

  const char* names[] = {
      "PEER_TIMEOUT_SEC",          "PEER_SEND_QUEUE_MAX",       "GRPC_KEEPALIVE_TIME_MS",
      "GRPC_KEEPALIVE_TIMEOUT_MS", "GRPC_MAX_MESSAGE_BYTES",    "WEBRTC_REPLY_TIMEOUT_MS",
      "WEBRTC_SESSION_TTL_SEC",    "TRACKER_LEASE_TTL_SEC",     "SHUTDOWN_TIMEOUT_SEC",
      "DRAIN_RATE_PER_SEC",        "PEER_MAX_MESSAGES_PER_SEC", "MAX_NEW_STREAMS_PER_SEC"};
  for (const char* name : names) {
    SCOPED_TRACE(name);
    ExpectRejected({{name, "1.5"}}, name, "is not an integer in [");
    ExpectRejected({{name, "99999999999"}}, name);
  }
  ExpectRejected({{"GRPC_MAX_MESSAGE_BYTES", "1023"}}, "GRPC_MAX_MESSAGE_BYTES");
  ExpectRejected({{"TRACKER_LEASE_TTL_SEC", "1"}}, "TRACKER_LEASE_TTL_SEC");
  ExpectRejected({{"PEER_TIMEOUT_SEC", "0"}}, "PEER_TIMEOUT_SEC");
}

TEST(ConfigTest, ByteBoundsParseAndReachTheirParts) {
  absl::StatusOr<EdgedConfig> defaults = Parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->peer_send_queue_max_bytes, 16 << 20);
  EXPECT_EQ(defaults->event_buffer_max_bytes, 256 << 20);
  absl::StatusOr<EdgedConfig> config =
      Parse({{"PEER_SEND_QUEUE_MAX_BYTES", "1048576"}, {"EVENT_BUFFER_MAX_BYTES", "8589934592"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->peer_send_queue_max_bytes, 1048576);
  EXPECT_EQ(config->event_buffer_max_bytes, int64_t{8} << 30);
  EXPECT_EQ(ToEdgeOptions(*config).peer_send_queue_max_bytes, 1048576u);
  for (const char* name : {"PEER_SEND_QUEUE_MAX_BYTES", "EVENT_BUFFER_MAX_BYTES"}) {
    SCOPED_TRACE(name);
    ExpectRejected({{name, "1.5"}}, name, "is not an integer in [");
    ExpectRejected({{name, "1024"}}, name);
    ExpectRejected({{name, "99999999999999999"}}, name);
    ExpectRejected({{name, ""}}, name);
  }
}

TEST(ConfigTest, CommandHoldHasTheContractDefaultsAndBounds) {
  absl::StatusOr<EdgedConfig> defaults = Parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->command_hold, absl::Milliseconds(30000));
  EXPECT_EQ(defaults->command_hold_max, 100000);
  absl::StatusOr<EdgedConfig> config = Parse({{"COMMAND_HOLD_MS", "0"}, {"COMMAND_HOLD_MAX", "7"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->command_hold, absl::ZeroDuration());
  EdgeOptions options = ToEdgeOptions(*config);
  EXPECT_EQ(options.command_hold, absl::ZeroDuration());
  EXPECT_EQ(options.command_hold_max, 7u);
  ExpectRejected({{"COMMAND_HOLD_MS", "-1"}}, "COMMAND_HOLD_MS");
  ExpectRejected({{"COMMAND_HOLD_MS", "1.5"}}, "COMMAND_HOLD_MS", "is not an integer in [");
  ExpectRejected({{"COMMAND_HOLD_MAX", "0"}}, "COMMAND_HOLD_MAX");
  ExpectRejected({{"COMMAND_HOLD_MAX", "99999999999"}}, "COMMAND_HOLD_MAX");
}

TEST(ConfigTest, BooleansAcceptOnlyTheDocumentedWords) {
  for (const char* yes : {"true", "TRUE", "True", "1", "yes", "YES"}) {
    EXPECT_TRUE(Parse({{"TRACKER_FAIL_OPEN", yes}})->tracker_fail_open) << yes;
  }
  for (const char* no : {"false", "FALSE", "0", "no", "No"}) {
    EXPECT_FALSE(Parse({{"CATALOG_PULL_ON_CONNECT", no}})->catalog_pull_on_connect) << no;
  }
  for (const char* bad : {"", "on", "off", "2", "y", "true "}) {
    SCOPED_TRACE(bad);
    ExpectRejected({{"CATALOG_PULL_ON_CONNECT", bad}}, "CATALOG_PULL_ON_CONNECT",
                   "true, false, 1, 0, yes, no");
    ExpectRejected({{"TRACKER_FAIL_OPEN", bad}}, "TRACKER_FAIL_OPEN");
    ExpectRejected({{"PEER_ID_FROM_CERT", bad}}, "PEER_ID_FROM_CERT");
  }
}

TEST(ConfigTest, EnumsAcceptTheirValuesOnly) {
  EXPECT_EQ(Parse({{"DUPLICATE_POLICY", "replace"}})->duplicate_policy, DuplicatePolicy::kReplace);
  EXPECT_EQ(Parse({{"DUPLICATE_POLICY", "Reject"}})->duplicate_policy, DuplicatePolicy::kReject);
  ExpectRejected({{"DUPLICATE_POLICY", "kick"}}, "DUPLICATE_POLICY",
                 "\"kick\" is not one of reject, replace");
  EXPECT_EQ(Parse({{"TRACKER", "etcd"}})->tracker, TrackerKind::kEtcd);
  ExpectRejected({{"TRACKER", "consul"}}, "TRACKER", "local, etcd");
  ExpectRejected({{"TRACKER", ""}}, "TRACKER");

  absl::StatusOr<EdgedConfig> config = Parse({{"LOG_LEVEL", "DEBUG"}, {"LOG_FORMAT", "json"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(Parse({{"LOG_LEVEL", "warn"}})->log_level, LogLevel::kWarn);
  ExpectRejected({{"LOG_LEVEL", "verbose"}}, "LOG_LEVEL", "verbose");
  ExpectRejected({{"LOG_FORMAT", "xml"}}, "LOG_FORMAT", "text, json");
}

TEST(ConfigTest, ServerAddressMustBeHostPort) {
  EXPECT_EQ(Parse({{"GRPC_SERVER_ADDRESS", "127.0.0.1:0"}})->grpc_server_address, "127.0.0.1:0");
  EXPECT_TRUE(Parse({{"GRPC_SERVER_ADDRESS", "[::]:50051"}}).ok());
  EXPECT_TRUE(Parse({{"GRPC_SERVER_ADDRESS", "localhost:65535"}}).ok());
  for (const char* bad : {"", "50051", ":50051", "host:", "host:65536", "host:port", "::1:50051",
                          "[::1:50051", "[]:1", "ho st:1", "host:-1"}) {
    SCOPED_TRACE(bad);
    ExpectRejected({{"GRPC_SERVER_ADDRESS", bad}}, "GRPC_SERVER_ADDRESS");
  }
}

TEST(ConfigTest, EmptyMetricsAddressDisablesMetrics) {
  EXPECT_FALSE(Parse({{"METRICS_ADDRESS", ""}})->metrics_address.has_value());
  EXPECT_EQ(Parse({{"METRICS_ADDRESS", "127.0.0.1:0"}})->metrics_address,
            std::optional<std::string>("127.0.0.1:0"));
  ExpectRejected({{"METRICS_ADDRESS", "9464"}}, "METRICS_ADDRESS", "expected host:port");
}

TEST(ConfigTest, TlsFilesMustComeTogether) {
  absl::StatusOr<EdgedConfig> config = Parse({{"GRPC_TLS_CERT_FILE", "/c.pem"},
                                              {"GRPC_TLS_KEY_FILE", "/k.pem"},
                                              {"GRPC_TLS_CLIENT_CA_FILE", "/ca.pem"},
                                              {"PEER_ID_FROM_CERT", "true"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->tls_cert_file, std::optional<std::string>("/c.pem"));
  EXPECT_EQ(config->tls_key_file, std::optional<std::string>("/k.pem"));
  EXPECT_EQ(config->tls_client_ca_file, std::optional<std::string>("/ca.pem"));
  EXPECT_TRUE(config->peer_id_from_cert);

  ExpectRejected({{"GRPC_TLS_CERT_FILE", "/c.pem"}}, "GRPC_TLS_KEY_FILE");
  ExpectRejected({{"GRPC_TLS_KEY_FILE", "/k.pem"}}, "GRPC_TLS_CERT_FILE");
  ExpectRejected({{"GRPC_TLS_CLIENT_CA_FILE", "/ca.pem"}}, "GRPC_TLS_CLIENT_CA_FILE");
  ExpectRejected({{"PEER_ID_FROM_CERT", "yes"}}, "PEER_ID_FROM_CERT", "GRPC_TLS_CLIENT_CA_FILE");
  ExpectRejected({{"PEER_ID_FROM_CERT", "true"},
                  {"GRPC_TLS_CERT_FILE", "/c.pem"},
                  {"GRPC_TLS_KEY_FILE", "/k.pem"}},
                 "PEER_ID_FROM_CERT");
  // Empty means unset for variables whose default is unset.
  EXPECT_FALSE(
      Parse({{"GRPC_TLS_CERT_FILE", ""}, {"GRPC_TLS_KEY_FILE", ""}})->tls_cert_file.has_value());
}

TEST(ConfigTest, HostileConnectionBoundsHaveSafeDefaultsAndCanBeSet) {
  absl::StatusOr<EdgedConfig> config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_max_streams_per_connection, 2);
  EXPECT_EQ(config->grpc_max_calls_per_connection_per_sec, 50);
  EXPECT_EQ(config->grpc_max_concurrent_streams, 100);
  EXPECT_EQ(config->grpc_max_connection_idle, absl::Seconds(60));
  EXPECT_EQ(config->grpc_handshake_timeout, absl::Seconds(10));
  EXPECT_EQ(config->grpc_listener_probe_interval, absl::Seconds(5));
  EXPECT_FALSE(config->grpc_server_reflection);
  EXPECT_FALSE(config->peer_id_cn_fallback);
  EXPECT_EQ(config->webrtc_max_sessions_per_peer, 32);
  EXPECT_EQ(
      ToEdgeOptions(*Parse({{"WEBRTC_MAX_SESSIONS_PER_PEER", "3"}})).webrtc_max_sessions_per_peer,
      3);
  ExpectRejected({{"WEBRTC_MAX_SESSIONS_PER_PEER", "0"}}, "WEBRTC_MAX_SESSIONS_PER_PEER");

  config = Parse({{"GRPC_MAX_STREAMS_PER_CONNECTION", "0"},
                  {"GRPC_MAX_CALLS_PER_CONNECTION_PER_SEC", "0"},
                  {"GRPC_MAX_CONCURRENT_STREAMS", "7"},
                  {"GRPC_MAX_CONNECTION_IDLE_MS", "0"},
                  {"GRPC_HANDSHAKE_TIMEOUT_MS", "2500"},
                  {"GRPC_LISTENER_PROBE_INTERVAL_MS", "0"},
                  {"GRPC_SERVER_REFLECTION", "true"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_max_streams_per_connection, 0);
  EXPECT_EQ(config->grpc_max_calls_per_connection_per_sec, 0);
  EXPECT_EQ(config->grpc_max_concurrent_streams, 7);
  EXPECT_EQ(config->grpc_max_connection_idle, absl::ZeroDuration());
  EXPECT_EQ(config->grpc_handshake_timeout, absl::Milliseconds(2500));
  EXPECT_EQ(config->grpc_listener_probe_interval, absl::ZeroDuration());
  EXPECT_TRUE(config->grpc_server_reflection);

  ExpectRejected({{"GRPC_MAX_STREAMS_PER_CONNECTION", "-1"}}, "GRPC_MAX_STREAMS_PER_CONNECTION");
  ExpectRejected({{"GRPC_HANDSHAKE_TIMEOUT_MS", "0"}}, "GRPC_HANDSHAKE_TIMEOUT_MS");
  ExpectRejected({{"GRPC_SERVER_REFLECTION", "on"}}, "GRPC_SERVER_REFLECTION");
}

TEST(ConfigTest, CommonNameFallbackIsOptInAndNeedsCertificateBinding) {
  absl::StatusOr<EdgedConfig> config = Parse({{"GRPC_TLS_CERT_FILE", "/c.pem"},
                                              {"GRPC_TLS_KEY_FILE", "/k.pem"},
                                              {"GRPC_TLS_CLIENT_CA_FILE", "/ca.pem"},
                                              {"PEER_ID_FROM_CERT", "true"},
                                              {"PEER_ID_FROM_CERT_CN_FALLBACK", "true"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->peer_id_cn_fallback);
  ExpectRejected({{"PEER_ID_FROM_CERT_CN_FALLBACK", "true"}}, "PEER_ID_FROM_CERT_CN_FALLBACK",
                 "PEER_ID_FROM_CERT=true");
}

TEST(ConfigTest, KafkaSettings) {
  absl::StatusOr<EdgedConfig> config =
      Parse({{"EDGE_ID", "e2"},
             {"KAFKA_BOOTSTRAP_SERVERS", "k1:9092, SSL://k2:9093,k3,[::1]:9094"},
             {"KAFKA_GROUP_ID", "group-{}"},
             {"KAFKA_CONFIG_FILE", "/etc/edge/kafka.properties"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->kafka_bootstrap_servers,
            std::optional<std::string>("k1:9092,SSL://k2:9093,k3,[::1]:9094"));
  EXPECT_EQ(config->kafka_group_id, "group-e2");
  EXPECT_EQ(config->kafka_config_file, std::optional<std::string>("/etc/edge/kafka.properties"));
  EXPECT_FALSE(Parse({{"KAFKA_BOOTSTRAP_SERVERS", ""}})->kafka_bootstrap_servers.has_value());

  ExpectRejected({{"KAFKA_BOOTSTRAP_SERVERS", "k1:9092,,k2"}}, "KAFKA_BOOTSTRAP_SERVERS",
                 "is empty");
  ExpectRejected({{"KAFKA_BOOTSTRAP_SERVERS", "k1:0"}}, "KAFKA_BOOTSTRAP_SERVERS", "[1, 65535]");
  ExpectRejected({{"KAFKA_BOOTSTRAP_SERVERS", "k 1:9092"}}, "KAFKA_BOOTSTRAP_SERVERS");
  ExpectRejected({{"KAFKA_GROUP_ID", ""}}, "KAFKA_GROUP_ID");
  ExpectRejected({{"KAFKA_GROUP_ID", "my group"}}, "KAFKA_GROUP_ID");
}

TEST(ConfigTest, TrackerSettings) {
  absl::StatusOr<EdgedConfig> config =
      Parse({{"TRACKER", "etcd"},
             {"ETCD_ENDPOINTS", "10.0.0.1:2379, http://etcd-2:2379/"},
             {"TRACKER_FAIL_OPEN", "true"},
             {"TRACKER_KEY_PREFIX", "/prod/"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->etcd_endpoints, ElementsAre("10.0.0.1:2379", "etcd-2:2379"));
  EXPECT_TRUE(config->tracker_fail_open);
  EXPECT_EQ(config->tracker_key_prefix, "/prod/");

  ExpectRejected({{"ETCD_ENDPOINTS", ""}}, "ETCD_ENDPOINTS");
  ExpectRejected({{"ETCD_ENDPOINTS", "etcd"}}, "ETCD_ENDPOINTS", "host:port");
  ExpectRejected({{"ETCD_ENDPOINTS", "a:1,"}}, "ETCD_ENDPOINTS", "is empty");
  // https:// is TLS for all endpoints or none (contract §10).
  ExpectRejected({{"ETCD_ENDPOINTS", "https://a:2379,b:2379"}}, "ETCD_ENDPOINTS", "mixes https://");
  ExpectRejected({{"TRACKER_KEY_PREFIX", "/prod"}}, "TRACKER_KEY_PREFIX", "must end with '/'");
  ExpectRejected({{"TRACKER_KEY_PREFIX", ""}}, "TRACKER_KEY_PREFIX");
  ExpectRejected({{"TRACKER_KEY_PREFIX", "/a b/"}}, "TRACKER_KEY_PREFIX");
}

TEST(ConfigTest, EtcdTlsAndAuthentication) {
  absl::StatusOr<EdgedConfig> config =
      Parse({{"TRACKER", "etcd"},
             {"ETCD_ENDPOINTS", "https://etcd-1:2379,https://10.0.0.2:2379/"},
             {"ETCD_CA_FILE", "/etc/edged/etcd-ca.pem"},
             {"ETCD_CERT_FILE", "/etc/edged/etcd.pem"},
             {"ETCD_KEY_FILE", "/etc/edged/etcd.key"},
             {"ETCD_USERNAME", "edge"},
             {"ETCD_PASSWORD_FILE", "/etc/edged/etcd-password"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->etcd_tls);
  EXPECT_THAT(config->etcd_endpoints, ElementsAre("etcd-1:2379", "10.0.0.2:2379"));
  EXPECT_EQ(config->etcd_ca_file, "/etc/edged/etcd-ca.pem");
  EXPECT_EQ(config->etcd_cert_file, "/etc/edged/etcd.pem");
  EXPECT_EQ(config->etcd_key_file, "/etc/edged/etcd.key");
  EXPECT_EQ(config->etcd_username, "edge");
  EXPECT_EQ(config->etcd_password_file, "/etc/edged/etcd-password");

  absl::StatusOr<EdgedConfig> plain = Parse({{"ETCD_ENDPOINTS", "etcd-1:2379"}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->etcd_tls);

  ExpectRejected({{"ETCD_ENDPOINTS", "https://a:2379"}, {"ETCD_CERT_FILE", "c.pem"}},
                 "ETCD_KEY_FILE", "together");
  ExpectRejected({{"ETCD_USERNAME", "edge"}}, "ETCD_PASSWORD_FILE", "together");
  ExpectRejected({{"ETCD_ENDPOINTS", "a:2379"}, {"ETCD_CA_FILE", "ca.pem"}}, "ETCD_CA_FILE",
                 "https://");
}

TEST(ConfigTest, AdminTokenFile) {
  absl::StatusOr<EdgedConfig> config = Parse({{"ADMIN_TOKEN_FILE", "/run/edged/admin-token"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->admin_token_file, "/run/edged/admin-token");
  absl::StatusOr<EdgedConfig> unset = Parse({{"ADMIN_TOKEN_FILE", ""}});
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_FALSE(unset->admin_token_file.has_value());
}

TEST(ConfigTest, ReportsEveryInvalidVariable) {
  absl::StatusOr<EdgedConfig> config =
      Parse({{"MAX_PEERS", "x"}, {"TRACKER", "y"}, {"LOG_FORMAT", "z"}});
  ASSERT_FALSE(config.ok());
  std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("MAX_PEERS: \"x\""));
  EXPECT_THAT(message, HasSubstr("TRACKER: \"y\""));
  EXPECT_THAT(message, HasSubstr("LOG_FORMAT: "));
}

TEST(ConfigTest, QuotesControlCharactersInMessages) {
  ExpectRejected({{"MAX_PEERS", "1\n2"}}, "MAX_PEERS", "\"1\\n2\"");
}

TEST(ConfigTest, ToEdgeOptionsCarriesEverySetting) {
  absl::StatusOr<EdgedConfig> config = Parse({{"EDGE_ID", "e9"},
                                              {"MAX_PEERS", "12"},
                                              {"DUPLICATE_POLICY", "replace"},
                                              {"PEER_TIMEOUT_SEC", "13"},
                                              {"PEER_SEND_QUEUE_MAX", "14"},
                                              {"CATALOG_PULL_ON_CONNECT", "false"},
                                              {"GRPC_TLS_CERT_FILE", "c"},
                                              {"GRPC_TLS_KEY_FILE", "k"},
                                              {"GRPC_TLS_CLIENT_CA_FILE", "ca"},
                                              {"PEER_ID_FROM_CERT", "true"},
                                              {"TRACKER_FAIL_OPEN", "true"},
                                              {"WEBRTC_REPLY_TIMEOUT_MS", "15"},
                                              {"WEBRTC_SESSION_TTL_SEC", "16"},
                                              {"PEER_MAX_MESSAGES_PER_SEC", "17"},
                                              {"MAX_NEW_STREAMS_PER_SEC", "19"},
                                              {"DRAIN_RATE_PER_SEC", "18"},
                                              {"FILE_OFFERS_TOPIC", "offers"},
                                              {"GRPC_MAX_MESSAGE_BYTES", "2048"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EdgeOptions options = ToEdgeOptions(*config);
  EXPECT_EQ(options.edge_id, "e9");
  EXPECT_EQ(options.topics.commands, "edge-commands-e9");
  EXPECT_EQ(options.topics.deadletter, "edge-commands-e9.deadletter");
  EXPECT_EQ(options.topics.file_offers, "offers");
  EXPECT_EQ(options.topics.lifecycle, "peer-lifecycle-events");
  EXPECT_EQ(options.commands_topic_pattern, "edge-commands-{edge_id}");
  EXPECT_EQ(options.max_peers, 12);
  EXPECT_EQ(options.duplicate_policy, DuplicatePolicy::kReplace);
  EXPECT_EQ(options.peer_timeout, absl::Seconds(13));
  EXPECT_EQ(options.peer_send_queue_max, 14u);
  EXPECT_EQ(options.max_message_bytes, 2048u);
  EXPECT_FALSE(options.catalog_pull_on_connect);
  EXPECT_TRUE(options.peer_id_from_cert);
  EXPECT_TRUE(options.tracker_fail_open);
  EXPECT_EQ(options.webrtc_reply_timeout, absl::Milliseconds(15));
  EXPECT_EQ(options.webrtc_session_ttl, absl::Seconds(16));
  EXPECT_EQ(options.peer_max_messages_per_sec, 17);
  EXPECT_EQ(options.max_new_streams_per_sec, 19);
  EXPECT_EQ(options.drain_rate_per_sec, 18);
}

class ConfigFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir_template[] = "/tmp/edged_config_test.XXXXXX";
    ASSERT_NE(::mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
  }
  void TearDown() override {
    for (const std::string& file : files_) std::remove(file.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string Write(const std::string& name, const std::string& content) {
    std::string path = absl::StrCat(dir_, "/", name);
    std::ofstream(path) << content;
    files_.push_back(path);
    return path;
  }

  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(ConfigFilesTest, ChecksThatNamedFilesAreReadable) {
  EdgedConfig config;
  EXPECT_TRUE(CheckConfigFiles(config).ok());
  config.tls_cert_file = Write("cert.pem", "cert");
  config.tls_key_file = Write("key.pem", "key");
  EXPECT_TRUE(CheckConfigFiles(config).ok());

  config.tls_client_ca_file = absl::StrCat(dir_, "/missing.pem");
  absl::Status status = CheckConfigFiles(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), StartsWith("GRPC_TLS_CLIENT_CA_FILE: cannot read"));

  config.tls_client_ca_file.reset();
  config.kafka_config_file = dir_;
  EXPECT_THAT(std::string(CheckConfigFiles(config).message()), HasSubstr("KAFKA_CONFIG_FILE: "));
}

}  // namespace
}  // namespace edge
