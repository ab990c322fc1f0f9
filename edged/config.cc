#include "config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "edge/etcd/etcd_tracker.h"
#include "edge/host_port.h"
#include "edge/peer_id.h"

namespace edge {
namespace {

constexpr size_t kMaxTopicBytes = 249;  // Kafka's limit on topic names.
constexpr absl::string_view kTopicRule =
    "1 to 249 characters of [A-Za-z0-9._-], not \".\" or \"..\"";
constexpr absl::string_view kEdgeIdRule = "1 to 128 bytes of [A-Za-z0-9._:@-]";

std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

bool IsTopicChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool IsValidTopicName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxTopicBytes) return false;
  if (name == "." || name == "..") return false;
  for (char c : name) {
    if (!IsTopicChar(c)) return false;
  }
  return true;
}

bool IsPrintableWithoutSpace(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool AllDigits(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Collects values and problems variable by variable. Every problem names
// its variable; a variable with a problem keeps its default, so later
// checks can tell (Failed) and avoid reporting a consequence twice.
class EnvParser {
 public:
  explicit EnvParser(const EnvLookup& lookup) : lookup_(lookup) {}

  std::optional<std::string> Get(absl::string_view name) const { return lookup_(name); }

  void Error(absl::string_view name, absl::string_view problem) {
    errors_.push_back(absl::StrCat(name, ": ", problem));
    failed_.insert(std::string(name));
  }
  // A value read by one of libedge's own parsers (`parse` returns a
  // StatusOr<T>), so that edged and embedding services accept the same
  // values; its error is reported as the parser words it.
  template <typename T, typename Parse>
  void Parsed(absl::string_view name, Parse parse, T* out) {
    std::optional<std::string> raw = Get(name);
    if (!raw) return;
    absl::StatusOr<T> parsed = parse(*raw);
    if (parsed.ok()) {
      *out = *std::move(parsed);
    } else {
      Error(name, parsed.status());
    }
  }

  // A parser's error; a leading "NAME: " in its message is not repeated.
  void Error(absl::string_view name, const absl::Status& status) {
    absl::string_view message = status.message();
    absl::ConsumePrefix(&message, absl::StrCat(name, ": "));
    Error(name, message);
  }
  bool Failed(absl::string_view name) const { return failed_.count(std::string(name)) > 0; }

  void Int(absl::string_view name, int64_t min, int64_t max, int* out) {
    int64_t value;
    if (ParseInt(name, min, max, &value)) *out = static_cast<int>(value);
  }
  void Int64(absl::string_view name, int64_t min, int64_t max, int64_t* out) {
    int64_t value;
    if (ParseInt(name, min, max, &value)) *out = value;
  }
  void Millis(absl::string_view name, int64_t min, int64_t max, absl::Duration* out) {
    int64_t value;
    if (ParseInt(name, min, max, &value)) *out = absl::Milliseconds(value);
  }
  void Seconds(absl::string_view name, int64_t min, int64_t max, absl::Duration* out) {
    int64_t value;
    if (ParseInt(name, min, max, &value)) *out = absl::Seconds(value);
  }

  void Bool(absl::string_view name, bool* out) {
    std::optional<std::string> raw = Get(name);
    if (!raw) return;
    std::string value = absl::AsciiStrToLower(*raw);
    if (value == "true" || value == "1" || value == "yes") {
      *out = true;
    } else if (value == "false" || value == "0" || value == "no") {
      *out = false;
    } else {
      Error(name, absl::StrCat(Quote(*raw), " is not a boolean (true, false, 1, 0, yes, no)"));
    }
  }

  // A value that must not be empty when set; unset keeps the default.
  bool NonEmpty(absl::string_view name, std::string* out) {
    std::optional<std::string> raw = Get(name);
    if (!raw) return false;
    if (raw->empty()) {
      Error(name, "must not be empty");
      return false;
    }
    *out = *raw;
    return true;
  }

  // A variable whose default is "unset": empty counts as unset.
  void Optional(absl::string_view name, std::optional<std::string>* out) {
    std::optional<std::string> raw = Get(name);
    if (raw && !raw->empty()) *out = *raw;
  }

  template <typename E>
  void Enum(absl::string_view name, std::initializer_list<std::pair<absl::string_view, E>> choices,
            E* out) {
    std::optional<std::string> raw = Get(name);
    if (!raw) return;
    std::string value = absl::AsciiStrToLower(*raw);
    std::vector<absl::string_view> names;
    for (const auto& choice : choices) {
      if (value == choice.first) {
        *out = choice.second;
        return;
      }
      names.push_back(choice.first);
    }
    Error(name, absl::StrCat(Quote(*raw), " is not one of ", absl::StrJoin(names, ", ")));
  }

  absl::Status Finish() const {
    if (errors_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(errors_, "\n"));
  }

 private:
  bool ParseInt(absl::string_view name, int64_t min, int64_t max, int64_t* out) {
    std::optional<std::string> raw = Get(name);
    if (!raw) return false;
    int64_t value = 0;
    // Digits only: SimpleAtoi alone would accept spaces and a '+'.
    if (!AllDigits(*raw) || !absl::SimpleAtoi(*raw, &value) || value < min || value > max) {
      Error(name, absl::StrCat(Quote(*raw), " is not an integer in [", min, ", ", max, "]"));
      return false;
    }
    *out = value;
    return true;
  }

  const EnvLookup& lookup_;
  std::vector<std::string> errors_;
  std::set<std::string> failed_;
};

void ParseEdgeId(EnvParser& env, absl::string_view hostname, EdgedConfig& config) {
  std::optional<std::string> raw = env.Get("EDGE_ID");
  if (!raw) {
    if (!ValidatePeerId(hostname, "EDGE_ID").ok()) {
      env.Error("EDGE_ID",
                absl::StrCat("not set, and the host name ", Quote(hostname),
                             " is not a valid edge id (", kEdgeIdRule, "); set EDGE_ID"));
      return;
    }
    config.edge_id = std::string(hostname);
    return;
  }
  if (!ValidatePeerId(*raw, "EDGE_ID").ok()) {
    env.Error("EDGE_ID", absl::StrCat(Quote(*raw), " is not a valid edge id (", kEdgeIdRule, ")"));
    return;
  }
  config.edge_id = *raw;
}

void ParseAddress(EnvParser& env, absl::string_view name, std::string* out) {
  std::string value;
  if (!env.NonEmpty(name, &value)) return;
  absl::StatusOr<HostPort> address = ParseHostPort(value, kListenPort);
  if (!address.ok()) {
    env.Error(name,
              absl::StrCat(Quote(value), " ", address.status().message(), " (expected host:port)"));
    return;
  }
  *out = value;
}

// `[scheme://]host[:port]`, comma-separated, as librdkafka accepts them.
void ParseBootstrapServers(EnvParser& env, EdgedConfig& config) {
  constexpr absl::string_view kName = "KAFKA_BOOTSTRAP_SERVERS";
  std::optional<std::string> raw;
  env.Optional(kName, &raw);
  if (!raw) return;
  std::vector<std::string> brokers;
  for (absl::string_view entry : absl::StrSplit(*raw, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    absl::string_view address = entry;
    size_t scheme_end = address.find("://");
    if (scheme_end != absl::string_view::npos) {
      address.remove_prefix(scheme_end + 3);
    }
    bool has_port =
        !address.empty() && address.back() != ']' && address.find(':') != absl::string_view::npos;
    std::string problem = "is empty";
    if (!address.empty()) {
      absl::StatusOr<HostPort> parsed = ParseHostPort(
          has_port ? std::string(address) : absl::StrCat(address, ":9092"), kConnectPort);
      problem = parsed.ok() ? "" : std::string(parsed.status().message());
    }
    if (!problem.empty()) {
      env.Error(kName,
                absl::StrCat("broker ", Quote(entry), " ", problem, " (expected host[:port],...)"));
      return;
    }
    brokers.emplace_back(entry);
  }
  config.kafka_bootstrap_servers = absl::StrJoin(brokers, ",");
}

// The library's parser (edge/etcd_tracker.h): the one set of rules for
// ETCD_ENDPOINTS; https:// sets etcd_tls.
void ConfigureEtcdEndpoints(EnvParser& env, EdgedConfig& config) {
  constexpr absl::string_view kName = "ETCD_ENDPOINTS";
  std::string raw;
  if (!env.NonEmpty(kName, &raw)) return;
  bool tls = false;
  absl::StatusOr<std::vector<std::string>> endpoints = etcd::ParseEtcdEndpoints(raw, &tls);
  if (!endpoints.ok()) {
    env.Error(kName, endpoints.status());
    return;
  }
  config.etcd_tls = tls;
  config.etcd_endpoints = std::move(*endpoints);
}

void ParseEtcdSecurity(EnvParser& env, EdgedConfig& config) {
  env.Optional("ETCD_CA_FILE", &config.etcd_ca_file);
  env.Optional("ETCD_CERT_FILE", &config.etcd_cert_file);
  env.Optional("ETCD_KEY_FILE", &config.etcd_key_file);
  env.Optional("ETCD_USERNAME", &config.etcd_username);
  env.Optional("ETCD_PASSWORD_FILE", &config.etcd_password_file);
  if (config.etcd_cert_file.has_value() != config.etcd_key_file.has_value()) {
    env.Error(config.etcd_cert_file ? "ETCD_KEY_FILE" : "ETCD_CERT_FILE",
              "must be set together with ETCD_CERT_FILE / ETCD_KEY_FILE "
              "(a client certificate needs its key)");
  }
  if (config.etcd_username.has_value() != config.etcd_password_file.has_value()) {
    env.Error(config.etcd_username ? "ETCD_PASSWORD_FILE" : "ETCD_USERNAME",
              "must be set together with ETCD_USERNAME / ETCD_PASSWORD_FILE");
  }
  if (!config.etcd_tls && !env.Failed("ETCD_ENDPOINTS")) {
    for (absl::string_view name : {"ETCD_CA_FILE", "ETCD_CERT_FILE"}) {
      const auto& file = name == "ETCD_CA_FILE" ? config.etcd_ca_file : config.etcd_cert_file;
      if (file) {
        env.Error(name, "requires https:// ETCD_ENDPOINTS (it is used only over TLS)");
      }
    }
  }
}

void ParseTopics(EnvParser& env, EdgedConfig& config) {
  struct EventTopic {
    absl::string_view name;
    std::string* field;
  };
  const EventTopic event_topics[] = {
      {"PEER_LIFECYCLE_EVENTS_TOPIC", &config.topics.lifecycle},
      {"PEER_CATALOG_UPDATES_TOPIC", &config.topics.catalog_updates},
      {"FILE_DELETE_RESPONSES_TOPIC", &config.topics.file_delete_responses},
      {"FILE_HASH_RESPONSES_TOPIC", &config.topics.file_hash_responses},
      {"FILE_OFFERS_TOPIC", &config.topics.file_offers},
      {"WEBRTC_SIGNALING_TOPIC", &config.topics.webrtc_signaling},
  };
  for (const EventTopic& topic : event_topics) {
    std::string value;
    if (!env.NonEmpty(topic.name, &value)) continue;
    if (!IsValidTopicName(value)) {
      env.Error(topic.name,
                absl::StrCat(Quote(value), " is not a Kafka topic name (", kTopicRule, ")"));
      continue;
    }
    *topic.field = value;
  }

  env.NonEmpty("EDGE_COMMANDS_TOPIC_PATTERN", &config.commands_topic_pattern);
  env.NonEmpty("DEADLETTER_TOPIC_PATTERN", &config.deadletter_topic_pattern);
  // The patterns can only be judged once the edge id they take is known.
  if (env.Failed("EDGE_ID")) return;
  struct Pattern {
    absl::string_view name;
    const std::string& pattern;
    std::string* resolved;
  };
  const Pattern patterns[] = {
      {"EDGE_COMMANDS_TOPIC_PATTERN", config.commands_topic_pattern, &config.topics.commands},
      {"DEADLETTER_TOPIC_PATTERN", config.deadletter_topic_pattern, &config.topics.deadletter},
  };
  for (const Pattern& p : patterns) {
    if (env.Failed(p.name)) continue;
    std::string resolved = ResolveTopicPattern(p.pattern, config.edge_id);
    if (!IsValidTopicName(resolved)) {
      env.Error(p.name, absl::StrCat(Quote(p.pattern), " gives ", Quote(resolved), " for EDGE_ID ",
                                     Quote(config.edge_id), ", which is not a Kafka topic name (",
                                     kTopicRule, "); only {edge_id} and {} are replaced"));
      continue;
    }
    *p.resolved = std::move(resolved);
  }
  if (!env.Failed("EDGE_COMMANDS_TOPIC_PATTERN") && !env.Failed("DEADLETTER_TOPIC_PATTERN") &&
      config.topics.commands == config.topics.deadletter) {
    env.Error("DEADLETTER_TOPIC_PATTERN",
              absl::StrCat("resolves to ", Quote(config.topics.deadletter),
                           ", the command topic itself"));
  }
}

void ParseKafka(EnvParser& env, EdgedConfig& config) {
  ParseBootstrapServers(env, config);
  env.Optional("KAFKA_CONFIG_FILE", &config.kafka_config_file);
  std::string group = "edge-{edge_id}";
  env.NonEmpty("KAFKA_GROUP_ID", &group);
  if (!env.Failed("KAFKA_GROUP_ID") && !IsPrintableWithoutSpace(group)) {
    env.Error("KAFKA_GROUP_ID",
              absl::StrCat(Quote(group), " contains spaces or control characters"));
  }
  config.kafka_group_id = ResolveTopicPattern(group, config.edge_id);
}

void ParseTls(EnvParser& env, EdgedConfig& config) {
  env.Optional("GRPC_TLS_CERT_FILE", &config.tls_cert_file);
  env.Optional("GRPC_TLS_KEY_FILE", &config.tls_key_file);
  env.Optional("GRPC_TLS_CLIENT_CA_FILE", &config.tls_client_ca_file);
  env.Bool("PEER_ID_FROM_CERT", &config.peer_id_from_cert);
  env.Bool("PEER_ID_FROM_CERT_CN_FALLBACK", &config.peer_id_cn_fallback);
  bool has_cert = config.tls_cert_file.has_value();
  bool has_key = config.tls_key_file.has_value();
  if (has_cert != has_key) {
    env.Error(has_cert ? "GRPC_TLS_KEY_FILE" : "GRPC_TLS_CERT_FILE",
              "must be set together with GRPC_TLS_CERT_FILE / "
              "GRPC_TLS_KEY_FILE (a certificate needs its key)");
    return;
  }
  if (config.tls_client_ca_file && !has_cert) {
    env.Error("GRPC_TLS_CLIENT_CA_FILE",
              "requires GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE (client "
              "certificates are only asked for over TLS)");
    return;
  }
  if (config.peer_id_cn_fallback && !config.peer_id_from_cert) {
    env.Error("PEER_ID_FROM_CERT_CN_FALLBACK",
              "true requires PEER_ID_FROM_CERT=true (it only changes how a "
              "certificate names its peer)");
  }
  if (config.peer_id_from_cert && !config.tls_client_ca_file) {
    env.Error("PEER_ID_FROM_CERT",
              "true requires GRPC_TLS_CLIENT_CA_FILE, GRPC_TLS_CERT_FILE and "
              "GRPC_TLS_KEY_FILE (the peer id is bound to a verified client "
              "certificate)");
  }
}

void ParseTracker(EnvParser& env, EdgedConfig& config) {
  env.Enum<TrackerKind>("TRACKER", {{"local", TrackerKind::kLocal}, {"etcd", TrackerKind::kEtcd}},
                        &config.tracker);
  ConfigureEtcdEndpoints(env, config);
  ParseEtcdSecurity(env, config);
  env.Seconds("TRACKER_LEASE_TTL_SEC", 2, 3600, &config.tracker_lease_ttl);
  env.Bool("TRACKER_FAIL_OPEN", &config.tracker_fail_open);
  std::string prefix;
  if (env.NonEmpty("TRACKER_KEY_PREFIX", &prefix)) {
    if (!IsPrintableWithoutSpace(prefix) || prefix.back() != '/') {
      env.Error("TRACKER_KEY_PREFIX", absl::StrCat(Quote(prefix),
                                                   " must end with '/' and hold no spaces or "
                                                   "control characters"));
    } else {
      config.tracker_key_prefix = prefix;
    }
  }
  // With a cluster tracker commands are forwarded to the edge holding the
  // peer, which needs one command topic per edge.
  if (config.tracker == TrackerKind::kEtcd && !env.Failed("EDGE_COMMANDS_TOPIC_PATTERN") &&
      ResolveTopicPattern(config.commands_topic_pattern, "a") ==
          ResolveTopicPattern(config.commands_topic_pattern, "b")) {
    env.Error("EDGE_COMMANDS_TOPIC_PATTERN",
              absl::StrCat(Quote(config.commands_topic_pattern),
                           " must contain {edge_id} or {} when TRACKER=etcd, "
                           "so that each edge has its own command topic"));
  }
}

}  // namespace

absl::StatusOr<EdgedConfig> ConfigFromEnvironment(const EnvLookup& lookup,
                                                  absl::string_view hostname) {
  EnvParser env(lookup);
  EdgedConfig config;

  ParseEdgeId(env, hostname, config);
  ParseAddress(env, "GRPC_SERVER_ADDRESS", &config.grpc_server_address);

  env.Int("MAX_PEERS", 1, 1000000, &config.max_peers);
  env.Enum<DuplicatePolicy>(
      "DUPLICATE_POLICY",
      {{"reject", DuplicatePolicy::kReject}, {"replace", DuplicatePolicy::kReplace}},
      &config.duplicate_policy);
  env.Seconds("PEER_TIMEOUT_SEC", 1, 86400, &config.peer_timeout);
  env.Int("PEER_SEND_QUEUE_MAX", 1, 1000000, &config.peer_send_queue_max);
  env.Int64("PEER_SEND_QUEUE_MAX_BYTES", 65536, int64_t{1} << 40,
            &config.peer_send_queue_max_bytes);
  env.Int64("EVENT_BUFFER_MAX_BYTES", int64_t{1} << 20, int64_t{1} << 40,
            &config.event_buffer_max_bytes);
  env.Int("PEER_MAX_MESSAGES_PER_SEC", 0, 1000000, &config.peer_max_messages_per_sec);
  env.Int("MAX_NEW_STREAMS_PER_SEC", 0, 1000000, &config.max_new_streams_per_sec);
  env.Bool("CATALOG_PULL_ON_CONNECT", &config.catalog_pull_on_connect);

  env.Millis("GRPC_KEEPALIVE_TIME_MS", 10, 86400000, &config.grpc_keepalive_time);
  env.Millis("GRPC_KEEPALIVE_TIMEOUT_MS", 10, 3600000, &config.grpc_keepalive_timeout);
  env.Int("GRPC_MAX_MESSAGE_BYTES", 1024, INT_MAX, &config.grpc_max_message_bytes);
  env.Int("GRPC_MAX_STREAMS_PER_CONNECTION", 0, 1000000, &config.grpc_max_streams_per_connection);
  env.Int("GRPC_MAX_CALLS_PER_CONNECTION_PER_SEC", 0, 1000000,
          &config.grpc_max_calls_per_connection_per_sec);
  env.Int("GRPC_MAX_CONCURRENT_STREAMS", 0, 1000000, &config.grpc_max_concurrent_streams);
  env.Millis("GRPC_MAX_CONNECTION_IDLE_MS", 0, 86400000, &config.grpc_max_connection_idle);
  env.Millis("GRPC_HANDSHAKE_TIMEOUT_MS", 100, 3600000, &config.grpc_handshake_timeout);
  env.Millis("GRPC_LISTENER_PROBE_INTERVAL_MS", 0, 3600000, &config.grpc_listener_probe_interval);
  env.Bool("GRPC_SERVER_REFLECTION", &config.grpc_server_reflection);
  ParseTls(env, config);

  ParseTopics(env, config);
  ParseKafka(env, config);

  env.Millis("COMMAND_HOLD_MS", 0, 3600000, &config.command_hold);
  env.Int("COMMAND_HOLD_MAX", 1, 10000000, &config.command_hold_max);
  env.Millis("WEBRTC_REPLY_TIMEOUT_MS", 1, 3600000, &config.webrtc_reply_timeout);
  env.Seconds("WEBRTC_SESSION_TTL_SEC", 1, 86400, &config.webrtc_session_ttl);
  env.Int("WEBRTC_MAX_SESSIONS_PER_PEER", 1, 1000000, &config.webrtc_max_sessions_per_peer);

  ParseTracker(env, config);

  if (std::optional<std::string> metrics = env.Get("METRICS_ADDRESS")) {
    if (metrics->empty()) {
      config.metrics_address.reset();
    } else {
      std::string address;
      ParseAddress(env, "METRICS_ADDRESS", &address);
      if (!env.Failed("METRICS_ADDRESS")) config.metrics_address = address;
    }
  }
  env.Optional("ADMIN_TOKEN_FILE", &config.admin_token_file);
  env.Seconds("SHUTDOWN_TIMEOUT_SEC", 1, 3600, &config.shutdown_timeout);
  env.Int("DRAIN_RATE_PER_SEC", 1, 1000000, &config.drain_rate_per_sec);

  env.Parsed(
      "LOG_LEVEL", [](const std::string& raw) { return ParseLogLevel(absl::AsciiStrToLower(raw)); },
      &config.log_level);
  env.Parsed(
      "LOG_FORMAT",
      [](const std::string& raw) { return ParseLogFormat(absl::AsciiStrToLower(raw)); },
      &config.log_format);

  absl::Status status = env.Finish();
  if (!status.ok()) return status;
  return config;
}

absl::StatusOr<EdgedConfig> ConfigFromEnvironment() {
  char hostname[HOST_NAME_MAX + 1] = {};
  if (::gethostname(hostname, sizeof(hostname) - 1) != 0) hostname[0] = '\0';
  return ConfigFromEnvironment(
      [](absl::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        if (value == nullptr) return std::nullopt;
        return std::string(value);
      },
      hostname);
}

absl::Status CheckConfigFiles(const EdgedConfig& config) {
  struct File {
    absl::string_view name;
    const std::optional<std::string>& path;
  };
  const File files[] = {
      {"GRPC_TLS_CERT_FILE", config.tls_cert_file},
      {"GRPC_TLS_KEY_FILE", config.tls_key_file},
      {"GRPC_TLS_CLIENT_CA_FILE", config.tls_client_ca_file},
      {"KAFKA_CONFIG_FILE", config.kafka_config_file},
      {"ADMIN_TOKEN_FILE", config.admin_token_file},
      {"ETCD_CA_FILE", config.etcd_ca_file},
      {"ETCD_CERT_FILE", config.etcd_cert_file},
      {"ETCD_KEY_FILE", config.etcd_key_file},
      {"ETCD_PASSWORD_FILE", config.etcd_password_file},
  };
  std::vector<std::string> errors;
  for (const File& file : files) {
    if (!file.path) continue;
    struct stat info;
    if (::stat(file.path->c_str(), &info) != 0 || ::access(file.path->c_str(), R_OK) != 0) {
      errors.push_back(
          absl::StrCat(file.name, ": cannot read ", Quote(*file.path), ": ", std::strerror(errno)));
    } else if (!S_ISREG(info.st_mode)) {
      errors.push_back(absl::StrCat(file.name, ": ", Quote(*file.path), " is not a regular file"));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

absl::StatusOr<std::string> ReadSecretFile(absl::string_view name, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": cannot read ", Quote(path), ": ", std::strerror(errno)));
  }
  std::string secret((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": error reading ", Quote(path)));
  }
  if (absl::EndsWith(secret, "\r\n")) {
    secret.resize(secret.size() - 2);
  } else if (absl::EndsWith(secret, "\n")) {
    secret.pop_back();
  }
  if (secret.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", Quote(path), " is empty"));
  }
  return secret;
}

EdgeOptions ToEdgeOptions(const EdgedConfig& config) {
  EdgeOptions options;
  options.edge_id = config.edge_id;
  options.topics = config.topics;
  options.commands_topic_pattern = config.commands_topic_pattern;
  options.max_peers = config.max_peers;
  options.duplicate_policy = config.duplicate_policy;
  options.peer_timeout = config.peer_timeout;
  options.peer_send_queue_max = static_cast<size_t>(config.peer_send_queue_max);
  options.peer_send_queue_max_bytes = static_cast<size_t>(config.peer_send_queue_max_bytes);
  options.max_message_bytes = static_cast<size_t>(config.grpc_max_message_bytes);
  options.catalog_pull_on_connect = config.catalog_pull_on_connect;
  options.peer_id_from_cert = config.peer_id_from_cert;
  options.tracker_fail_open = config.tracker_fail_open;
  options.webrtc_reply_timeout = config.webrtc_reply_timeout;
  options.command_hold = config.command_hold;
  options.command_hold_max = static_cast<size_t>(config.command_hold_max);
  options.webrtc_session_ttl = config.webrtc_session_ttl;
  options.webrtc_max_sessions_per_peer = config.webrtc_max_sessions_per_peer;
  options.peer_max_messages_per_sec = config.peer_max_messages_per_sec;
  options.max_new_streams_per_sec = config.max_new_streams_per_sec;
  options.drain_rate_per_sec = config.drain_rate_per_sec;
  return options;
}

}  // namespace edge
