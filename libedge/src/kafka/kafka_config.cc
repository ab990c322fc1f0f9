#include "kafka_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace edge::kafka {
namespace internal {
namespace {

constexpr absl::string_view kProducerPrefix = "producer.";
constexpr absl::string_view kConsumerPrefix = "consumer.";

void LogCallback(const rd_kafka_t* rk, int level, const char* facility, const char* line) {
  auto* opaque = static_cast<ClientOpaque*>(rd_kafka_opaque(rk));
  if (opaque == nullptr || opaque->logger == nullptr) return;
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
  LogLevel ours = level <= 3   ? LogLevel::kError
                  : level == 4 ? LogLevel::kWarn
                  : level <= 6 ? LogLevel::kInfo
                               : LogLevel::kDebug;
  if (!opaque->logger->Enabled(ours)) return;
  opaque->logger->Log(ours, "librdkafka",
                      {{"client", rd_kafka_name(rk)}, {"facility", facility}, {"detail", line}});
}

}  // namespace

absl::StatusOr<ConfPtr> BuildConf(const KafkaProperties& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [name, value] : properties) {
    if (name.empty()) return absl::InvalidArgumentError("Kafka property with an empty name");
    if (rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("Kafka property '", name, "'='", value, "': ", errstr));
    }
  }
  return conf;
}

absl::StatusOr<ConfPtr> BuildConf(const KafkaProperties& properties, ClientKind kind) {
  KafkaProperties mine;
  mine.reserve(properties.size());
  absl::string_view own = kind == ClientKind::kProducer ? kProducerPrefix : kConsumerPrefix;
  absl::string_view other = kind == ClientKind::kProducer ? kConsumerPrefix : kProducerPrefix;
  for (const auto& [name, value] : properties) {
    if (absl::StartsWith(name, other)) continue;
    if (absl::StartsWith(name, own)) {
      mine.emplace_back(name.substr(own.size()), value);
    } else {
      mine.emplace_back(name, value);
    }
  }
  return BuildConf(mine);
}

KafkaProperties ProducerProperties(const KafkaMessageBusOptions& options) {
  KafkaProperties props = {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "5"},
      {"partitioner", "murmur2_random"},
      {"reconnect.backoff.max.ms", "1000"},
  };
  props.insert(props.end(), options.properties.begin(), options.properties.end());
  return props;
}

KafkaProperties ConsumerProperties(const KafkaMessageBusOptions& options) {
  KafkaProperties props = {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"group.id", options.group_id},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "earliest"},
      {"allow.auto.create.topics", "true"},
      {"fetch.wait.max.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      // Prefetched, not yet handed out: bounded in bytes (librdkafka's
      // default is 64 MiB per client).
      {"queued.max.messages.kbytes", "16384"},
  };
  props.insert(props.end(), options.properties.begin(), options.properties.end());
  return props;
}

void SetClientOpaque(rd_kafka_conf_t* conf, ClientOpaque* opaque) {
  rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_conf_set_log_cb(conf, &LogCallback);
}

absl::Status KafkaErrorToStatus(rd_kafka_resp_err_t err, absl::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  std::string message =
      absl::StrCat(context, ": ", rd_kafka_err2str(err), " (", rd_kafka_err2name(err), ")");
  switch (err) {
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
      return absl::InvalidArgumentError(message);
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return absl::PermissionDeniedError(message);
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
      return absl::UnauthenticatedError(message);
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return absl::AlreadyExistsError(message);
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_BROKER:
      return absl::NotFoundError(message);
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return absl::DeadlineExceededError(message);
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return absl::ResourceExhaustedError(message);
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
      return absl::CancelledError(message);
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__STATE:
      return absl::FailedPreconditionError(message);
    default:
      return absl::UnavailableError(message);
  }
}

bool IsPermanentDeliveryError(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return true;
    default:
      return false;
  }
}

}  // namespace internal

absl::StatusOr<KafkaProperties> ParseKafkaConfigFile(const std::string& path) {
  const std::string quoted = absl::StrCat("\"", absl::CHexEscape(path), "\"");
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("KAFKA_CONFIG_FILE: cannot read ", quoted, ": ", std::strerror(errno)));
  }
  KafkaProperties props;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    // The line itself is not quoted back: it may hold a secret.
    size_t eq = text.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("KAFKA_CONFIG_FILE: ", quoted, " line ",
                                                     number, ": expected property=value"));
    }
    absl::string_view name = absl::StripAsciiWhitespace(text.substr(0, eq));
    absl::string_view value = absl::StripAsciiWhitespace(text.substr(eq + 1));
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("KAFKA_CONFIG_FILE: ", quoted, " line ", number, ": empty property name"));
    }
    props.emplace_back(std::string(name), std::string(value));
  }
  if (in.bad()) {
    return absl::DataLossError(
        absl::StrCat("KAFKA_CONFIG_FILE: error reading ", quoted, ": ", std::strerror(errno)));
  }
  return props;
}

}  // namespace edge::kafka
