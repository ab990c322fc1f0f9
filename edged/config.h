// edged's configuration: the environment variables of contract §8, parsed
// strictly into typed fields.
//
// Parsing is a pure function of a variable lookup and the host name, so it is
// tested without touching the process environment. Every invalid value is an
// INVALID_ARGUMENT whose message names the variable and says what is
// accepted; all problems found are reported together, one per line.
//
//   absl::StatusOr<edge::EdgedConfig> config = edge::ConfigFromEnvironment();
//   if (!config.ok()) {
//     std::cerr << config.status().message() << "\n";
//     return 2;  // contract §8: invalid configuration exits with code 2
//   }
//   edge::EdgeOptions options = edge::ToEdgeOptions(*config);
#ifndef EDGE_EDGED_CONFIG_H_
#define EDGE_EDGED_CONFIG_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/edge.h"
#include "edge/logger.h"
#include "edge/topic_pattern.h"  // ResolveTopicPattern

namespace edge {

enum class TrackerKind { kLocal, kEtcd };

// The variable that sets each field is named beside it or in its group's
// comment; the defaults are those of contract §8 (docs/configuration.md).
struct EdgedConfig {
  std::string edge_id;                                // EDGE_ID
  std::string grpc_server_address = "0.0.0.0:50051";  // GRPC_SERVER_ADDRESS

  // Admission and peers.
  int max_peers = 10000;  // MAX_PEERS
  // DUPLICATE_POLICY
  DuplicatePolicy duplicate_policy = DuplicatePolicy::kReject;
  absl::Duration peer_timeout = absl::Seconds(120);  // PEER_TIMEOUT_SEC
  int peer_send_queue_max = 1024;                    // PEER_SEND_QUEUE_MAX
  int64_t peer_send_queue_max_bytes = 16 << 20;      // PEER_SEND_QUEUE_MAX_BYTES
  int peer_max_messages_per_sec = 1000;              // PEER_MAX_MESSAGES_PER_SEC; 0: off
  int max_new_streams_per_sec = 0;                   // MAX_NEW_STREAMS_PER_SEC; 0: off
  bool catalog_pull_on_connect = true;               // CATALOG_PULL_ON_CONNECT

  // gRPC server: GRPC_KEEPALIVE_TIME_MS, GRPC_KEEPALIVE_TIMEOUT_MS,
  // GRPC_MAX_MESSAGE_BYTES.
  absl::Duration grpc_keepalive_time = absl::Milliseconds(30000);
  absl::Duration grpc_keepalive_timeout = absl::Milliseconds(10000);
  int grpc_max_message_bytes = 4194304;
  // Hostile connections (docs/operations.md, "gRPC transport defaults"):
  // GRPC_MAX_STREAMS_PER_CONNECTION, GRPC_MAX_CALLS_PER_CONNECTION_PER_SEC
  // (0: off; burst of 5 s' worth), GRPC_MAX_CONCURRENT_STREAMS,
  // GRPC_MAX_CONNECTION_IDLE_MS (0: never), GRPC_HANDSHAKE_TIMEOUT_MS,
  // GRPC_LISTENER_PROBE_INTERVAL_MS (0: no probe), GRPC_SERVER_REFLECTION.
  int grpc_max_streams_per_connection = 2;
  int grpc_max_calls_per_connection_per_sec = 50;
  int grpc_max_concurrent_streams = 100;
  absl::Duration grpc_max_connection_idle = absl::Milliseconds(60000);
  absl::Duration grpc_handshake_timeout = absl::Milliseconds(10000);
  absl::Duration grpc_listener_probe_interval = absl::Milliseconds(5000);
  bool grpc_server_reflection = false;

  // TLS. No certificate: plaintext. A client CA: clients must present a
  // certificate signed by it.
  std::optional<std::string> tls_cert_file;       // GRPC_TLS_CERT_FILE
  std::optional<std::string> tls_key_file;        // GRPC_TLS_KEY_FILE
  std::optional<std::string> tls_client_ca_file;  // GRPC_TLS_CLIENT_CA_FILE
  bool peer_id_from_cert = false;                 // PEER_ID_FROM_CERT
  // PEER_ID_FROM_CERT_CN_FALLBACK: a certificate without the peer URI SAN
  // is named by its CN.
  bool peer_id_cn_fallback = false;

  // Kafka: KAFKA_BOOTSTRAP_SERVERS (unset: the embedded broker),
  // KAFKA_GROUP_ID (with `{edge_id}` resolved), KAFKA_CONFIG_FILE.
  std::optional<std::string> kafka_bootstrap_servers;
  std::string kafka_group_id;
  std::optional<std::string> kafka_config_file;
  // EVENT_BUFFER_MAX_BYTES: records waiting for the broker, in bytes, past
  // which the edge is saturated (§2 row 4, §3, §5).
  int64_t event_buffer_max_bytes = 256 << 20;

  // EDGE_COMMANDS_TOPIC_PATTERN and DEADLETTER_TOPIC_PATTERN as given; the
  // command pattern names other edges' command topics. This edge's own
  // command and dead-letter topics are resolved in `topics`, as are the
  // event topics of §5 (PEER_LIFECYCLE_EVENTS_TOPIC, ...).
  std::string commands_topic_pattern = "edge-commands-{edge_id}";
  std::string deadletter_topic_pattern = "edge-commands-{edge_id}.deadletter";
  Topics topics;

  // Commands for a peer no edge holds (§4): COMMAND_HOLD_MS (0: off),
  // COMMAND_HOLD_MAX.
  absl::Duration command_hold = absl::Milliseconds(30000);
  int command_hold_max = 100000;

  // WebRTC signaling (§6): WEBRTC_REPLY_TIMEOUT_MS, WEBRTC_SESSION_TTL_SEC.
  absl::Duration webrtc_reply_timeout = absl::Milliseconds(10000);
  absl::Duration webrtc_session_ttl = absl::Seconds(300);
  int webrtc_max_sessions_per_peer = 32;  // WEBRTC_MAX_SESSIONS_PER_PEER

  // Tracker (§9): TRACKER, ETCD_ENDPOINTS (each as host:port),
  // TRACKER_LEASE_TTL_SEC, TRACKER_FAIL_OPEN, TRACKER_KEY_PREFIX.
  TrackerKind tracker = TrackerKind::kLocal;
  std::vector<std::string> etcd_endpoints = {"127.0.0.1:2379"};
  absl::Duration tracker_lease_ttl = absl::Seconds(10);
  bool tracker_fail_open = false;
  std::string tracker_key_prefix = "/giggityflix/";
  // etcd over TLS (contract §10): `https://` endpoints (all or none).
  // ETCD_CA_FILE verifies the server (unset: the system's roots);
  // ETCD_CERT_FILE + ETCD_KEY_FILE are the client certificate (TLS only);
  // ETCD_USERNAME + ETCD_PASSWORD_FILE log in to etcd's authentication.
  bool etcd_tls = false;
  std::optional<std::string> etcd_ca_file;
  std::optional<std::string> etcd_cert_file;
  std::optional<std::string> etcd_key_file;
  std::optional<std::string> etcd_username;
  std::optional<std::string> etcd_password_file;

  // Operations. METRICS_ADDRESS set but empty: no metrics endpoint.
  std::optional<std::string> metrics_address = "0.0.0.0:9464";
  // ADMIN_TOKEN_FILE: the admin API's bearer token; unset: admin refused.
  std::optional<std::string> admin_token_file;
  absl::Duration shutdown_timeout = absl::Seconds(15);  // SHUTDOWN_TIMEOUT_SEC
  int drain_rate_per_sec = 500;                         // DRAIN_RATE_PER_SEC
  LogLevel log_level = LogLevel::kInfo;                 // LOG_LEVEL
  LogFormat log_format = LogFormat::kText;              // LOG_FORMAT
};

// Returns the value of an environment variable, or nullopt when it is unset.
using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// Parses the configuration from `lookup`. EDGE_ID defaults to `hostname`.
// Unset variables take §8's defaults. Variables whose default is "unset"
// (TLS files, KAFKA_BOOTSTRAP_SERVERS, KAFKA_CONFIG_FILE) treat an empty
// value as unset; METRICS_ADDRESS="" disables metrics; every other variable
// rejects an empty value. Reads no files.
absl::StatusOr<EdgedConfig> ConfigFromEnvironment(const EnvLookup& lookup,
                                                  absl::string_view hostname);

// The same, from the process environment and gethostname(2).
absl::StatusOr<EdgedConfig> ConfigFromEnvironment();

// Checks that the files the configuration names (TLS files, the Kafka
// config file, the admin token, etcd's TLS files and password) exist and
// are readable; the error names the variable.
absl::Status CheckConfigFiles(const EdgedConfig& config);

// Reads a secret file (ADMIN_TOKEN_FILE, ETCD_PASSWORD_FILE): its content
// without one trailing newline. An empty secret is an error naming `name`.
absl::StatusOr<std::string> ReadSecretFile(absl::string_view name, const std::string& path);

// The options of the edge core that this configuration determines. Fields
// the environment does not set (tracker_timeout, has_descriptor_headroom)
// keep EdgeOptions' defaults.
EdgeOptions ToEdgeOptions(const EdgedConfig& config);

}  // namespace edge

#endif  // EDGE_EDGED_CONFIG_H_
