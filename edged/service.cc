#include "service.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "descriptors.h"
#include "edge/embedded_kafka.h"
#include "edge/etcd_tracker.h"
#include "edge/grpc_peer_transport.h"
#include "edge/kafka_message_bus.h"
#include "edge/local_tracker.h"

namespace edge {
namespace {

// Descriptors kept free for Kafka, etcd, logs and refused connections.
constexpr int64_t kDescriptorHeadroom = 256;

// The address other edges and backends reach this edge at: the listening
// address, with a wildcard host replaced by this host's name.
std::string AdvertisedAddress(const std::string& listen) {
  size_t colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof(name) - 1) == 0 ? name : "localhost";
  }
  return absl::StrCat(host, ":", port);
}

}  // namespace

EdgedService::EdgedService(const EdgedConfig& config, Logger* logger)
    : config_(config), logger_(logger) {}

EdgedService::~EdgedService() { Shutdown(); }

absl::StatusOr<std::unique_ptr<EdgedService>> EdgedService::Create(const EdgedConfig& config,
                                                                   Logger* logger) {
  if (absl::Status files = CheckConfigFiles(config); !files.ok()) return files;
  std::unique_ptr<EdgedService> service(new EdgedService(config, logger));
  EdgedService& s = *service;
  s.clock_ = NewRealClock();

  absl::StatusOr<int64_t> limit = DescriptorBudget::RaiseLimit();
  if (!limit.ok()) return limit.status();
  s.descriptors_ = std::make_unique<DescriptorBudget>(*limit, kDescriptorHeadroom);

  // Kafka: the configured cluster, or a broker inside this process.
  kafka::KafkaMessageBusOptions bus_options;
  if (config.kafka_bootstrap_servers.has_value()) {
    s.kafka_bootstrap_servers_ = *config.kafka_bootstrap_servers;
  } else {
    auto embedded = kafka::EmbeddedKafka::Create(1);
    if (!embedded.ok()) return embedded.status();
    s.embedded_kafka_ = std::move(*embedded);
    s.kafka_bootstrap_servers_ = s.embedded_kafka_->bootstrap_servers();
    for (const std::string& topic : {config.topics.commands, config.topics.deadletter}) {
      if (absl::Status created = s.embedded_kafka_->CreateTopic(topic, 1); !created.ok()) {
        return created;
      }
    }
  }
  bus_options.bootstrap_servers = s.kafka_bootstrap_servers_;
  bus_options.group_id = config.kafka_group_id;
  bus_options.client_id = absl::StrCat("edge-", config.edge_id);
  bus_options.logger = logger;
  if (config.kafka_config_file.has_value()) {
    auto properties = kafka::ParseKafkaConfigFile(*config.kafka_config_file);
    if (!properties.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("KAFKA_CONFIG_FILE: ", properties.status().message()));
    }
    bus_options.properties = std::move(*properties);
  }
  auto bus = kafka::KafkaMessageBus::Create(std::move(bus_options));
  if (!bus.ok()) {
    return absl::Status(bus.status().code(), absl::StrCat("Kafka: ", bus.status().message()));
  }
  s.bus_ = std::move(*bus);

  GrpcPeerTransportOptions grpc;
  grpc.address = config.grpc_server_address;
  grpc.keepalive_time = config.grpc_keepalive_time;
  grpc.keepalive_timeout = config.grpc_keepalive_timeout;
  grpc.max_message_bytes = config.grpc_max_message_bytes;
  grpc.cert_file = config.tls_cert_file.value_or("");
  grpc.key_file = config.tls_key_file.value_or("");
  grpc.client_ca_file = config.tls_client_ca_file.value_or("");
  grpc.clock = s.clock_.get();
  grpc.logger = logger;
  auto transport = GrpcPeerTransport::Create(std::move(grpc));
  if (!transport.ok()) return transport.status();
  s.transport_ = std::move(*transport);

  if (config.tracker == TrackerKind::kEtcd) {
    EtcdTrackerOptions etcd;
    etcd.edge_id = config.edge_id;
    etcd.advertised_address = AdvertisedAddress(config.grpc_server_address);
    etcd.endpoints = config.etcd_endpoints;
    etcd.lease_ttl = config.tracker_lease_ttl;
    etcd.key_prefix = config.tracker_key_prefix;
    etcd.clock = s.clock_.get();
    etcd.logger = logger;
    auto tracker = EtcdTracker::Create(std::move(etcd));
    if (!tracker.ok()) return tracker.status();
    s.tracker_ = std::move(*tracker);
  } else {
    s.tracker_ = std::make_unique<LocalTracker>(config.edge_id);
  }

  EdgeOptions options = ToEdgeOptions(config);
  DescriptorBudget* descriptors = s.descriptors_.get();
  options.has_descriptor_headroom = [descriptors] { return descriptors->HasHeadroom(); };
  auto edge = Edge::Create(std::move(options), EdgeParts{s.transport_.get(), s.bus_.get(),
                                                         s.tracker_.get(), s.clock_.get(), logger});
  if (!edge.ok()) return edge.status();
  s.edge_ = std::move(*edge);
  return service;
}

absl::Status EdgedService::Start() {
  if (absl::Status started = edge_->Start(); !started.ok()) return started;
  logger_->Info("edged listening",
                {{"edge_id", config_.edge_id},
                 {"grpc", absl::StrCat(config_.grpc_server_address.substr(
                                           0, config_.grpc_server_address.rfind(':')),
                                       ":", transport_->port())},
                 {"tls", transport_->tls() ? "on" : "off"},
                 {"commands_topic", config_.topics.commands},
                 {"kafka", kafka_bootstrap_servers_}});
  if (embedded_kafka_ != nullptr) {
    logger_->Warn(
        "using the embedded Kafka broker (KAFKA_BOOTSTRAP_SERVERS is unset): for trying out "
        "and tests only, it keeps nothing across restarts",
        {{"bootstrap_servers", kafka_bootstrap_servers_}});
  }
  return absl::OkStatus();
}

void EdgedService::Drain() { edge_->Drain(); }

absl::Status EdgedService::ReloadCredentials() { return transport_->ReloadCredentials(); }

void EdgedService::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (edge_ != nullptr) edge_->Shutdown(clock_->Now() + config_.shutdown_timeout);
}

int EdgedService::grpc_port() const { return transport_->port(); }

}  // namespace edge
