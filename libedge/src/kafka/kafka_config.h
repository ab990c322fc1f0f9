// librdkafka configuration and error conversion: the one place where
// librdkafka settings are built and its error codes become absl::Status.
#ifndef EDGE_SRC_KAFKA_KAFKA_CONFIG_H_
#define EDGE_SRC_KAFKA_KAFKA_CONFIG_H_

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "edge/kafka/kafka_message_bus.h"
#include "edge/logger.h"

namespace edge::kafka::internal {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

enum class ClientKind { kProducer, kConsumer };

// A configuration holding `properties` in order; a property librdkafka does
// not know or rejects is InvalidArgument naming it. With `kind`, names
// prefixed "producer." / "consumer." apply (without the prefix) only to that
// client; without it such names are passed through unchanged.
absl::StatusOr<ConfPtr> BuildConf(const KafkaProperties& properties);
absl::StatusOr<ConfPtr> BuildConf(const KafkaProperties& properties, ClientKind kind);

// The defaults for the bus's producer / consumer, followed by the user's
// properties (which win).
KafkaProperties ProducerProperties(const KafkaMessageBusOptions& options);
KafkaProperties ConsumerProperties(const KafkaMessageBusOptions& options);

// What a client's opaque points to: its owner, and where its logs go.
struct ClientOpaque {
  Logger* logger = nullptr;
  void* owner = nullptr;
};

// Sets `opaque` as the conf's opaque and routes librdkafka's log lines to
// opaque->logger. `opaque` must outlive the client.
void SetClientOpaque(rd_kafka_conf_t* conf, ClientOpaque* opaque);

// RD_KAFKA_RESP_ERR_NO_ERROR is OK; others map to canonical codes with
// `context` and librdkafka's description in the message.
absl::Status KafkaErrorToStatus(rd_kafka_resp_err_t err, absl::string_view context);

// True for delivery errors that sending the record again cannot fix.
bool IsPermanentDeliveryError(rd_kafka_resp_err_t err);

}  // namespace edge::kafka::internal

#endif  // EDGE_SRC_KAFKA_KAFKA_CONFIG_H_
