#include "service.h"

#include <unistd.h>

#include <memory>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "edge/descriptors.h"
#include "edge/etcd/etcd_tracker.h"
#include "edge/grpc/grpc_peer_transport.h"
#include "edge/kafka/embedded_kafka.h"
#include "edge/kafka/kafka_message_bus.h"
#include "edge/local_tracker.h"
#include "edge/metrics/metrics_server.h"
#include "edge/metrics/prometheus_metrics.h"

namespace edge {
namespace {

// How long the readiness probe waits for etcd, and how often it asks.
constexpr absl::Duration kTrackerProbeTimeout = absl::Seconds(1);
constexpr absl::Duration kTrackerProbeEvery = absl::Seconds(1);
// How long GET /peers/{id} waits for etcd to say where a peer is.
constexpr absl::Duration kAdminLookupTimeout = absl::Seconds(2);

// Calls `start(done)` and waits (up to `timeout` and a margin) for `done`.
// For the admin API's worker threads only, never a gRPC or Kafka thread.
template <typename T, typename Start>
absl::StatusOr<T> AwaitResult(absl::Duration timeout, Start start) {
  struct Wait {
    absl::Mutex mu;
    std::optional<absl::StatusOr<T>> result ABSL_GUARDED_BY(mu);
  };
  auto wait = std::make_shared<Wait>();
  start([wait](absl::StatusOr<T> result) {
    absl::MutexLock lock(&wait->mu);
    wait->result = std::move(result);
  });
  absl::MutexLock lock(&wait->mu);
  wait->mu.AwaitWithTimeout(
      absl::Condition(
          +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS { return w->result.has_value(); },
          wait.get()),
      timeout + absl::Seconds(1));
  if (!wait->result.has_value()) return absl::DeadlineExceededError("etcd did not answer");
  return *std::move(wait->result);
}

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

// Partitions of each topic on the embedded broker: 8 × ~5 MiB kept per
// topic, and keys (peers) spread over them.
constexpr int kEmbeddedTopicPartitions = 8;

}  // namespace

struct EdgedService::TrackerProbe {
  absl::Mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu) =
      absl::UnavailableError("the tracker has not been probed yet");
  bool stopped ABSL_GUARDED_BY(mu) = false;
  // A probe between its timer firing and its answer: Shutdown waits for it.
  bool running ABSL_GUARDED_BY(mu) = false;
  // With an etcd tracker that does not fail open, readiness needs etcd.
  bool asks_tracker = false;
  Clock::TimerId timer ABSL_GUARDED_BY(mu) = 0;
};

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
  s.descriptors_ = std::make_unique<DescriptorBudget>(*limit, DescriptorBudget::kDefaultHeadroom);

  // Kafka: the configured cluster, or a broker inside this process.
  kafka::KafkaMessageBusOptions bus_options;
  if (config.kafka_bootstrap_servers.has_value()) {
    s.kafka_bootstrap_servers_ = *config.kafka_bootstrap_servers;
  } else {
    auto embedded = kafka::EmbeddedKafka::Create(1);
    if (!embedded.ok()) return embedded.status();
    s.embedded_kafka_ = std::move(*embedded);
    s.kafka_bootstrap_servers_ = s.embedded_kafka_->bootstrap_servers();
    // Every topic edged uses exists from the start, as on a real cluster
    // (auto-creation on first use costs the first record of each topic
    // several metadata retries, ~0.6 s). Event kinds may share a topic.
    // Each partition of the embedded broker keeps only its latest ~5 MiB
    // (or 100k batches): several partitions give a burst room.
    const Topics& t = config.topics;
    const std::set<std::string> topics = {t.commands,
                                          t.deadletter,
                                          t.lifecycle,
                                          t.catalog_updates,
                                          t.file_delete_responses,
                                          t.file_hash_responses,
                                          t.file_offers,
                                          t.webrtc_signaling};
    for (const std::string& topic : topics) {
      if (absl::Status created = s.embedded_kafka_->CreateTopic(topic, kEmbeddedTopicPartitions);
          !created.ok()) {
        return created;
      }
    }
  }
  bus_options.bootstrap_servers = s.kafka_bootstrap_servers_;
  bus_options.group_id = config.kafka_group_id;
  bus_options.capacity_bytes = static_cast<size_t>(config.event_buffer_max_bytes);
  bus_options.client_id = absl::StrCat("edge-", config.edge_id);
  bus_options.logger = logger;
  // The first event of each kind does not wait for its topic's metadata.
  {
    const Topics& t = config.topics;
    bus_options.warm_topics = {
        t.deadletter,          t.lifecycle,   t.catalog_updates, t.file_delete_responses,
        t.file_hash_responses, t.file_offers, t.webrtc_signaling};
  }
  // metrics_ is made below, before the bus starts reading.
  EdgedService* self = &s;
  bus_options.on_offset_reset = [self](const std::string& topic, int32_t, int64_t skipped) {
    if (self->metrics_ != nullptr) self->metrics_->KafkaOffsetReset(topic, skipped);
  };
  if (config.kafka_config_file.has_value()) {
    auto properties = kafka::ParseKafkaConfigFile(*config.kafka_config_file);
    if (!properties.ok()) {
      // Invalid configuration whatever the cause (contract §8: exit code 2);
      // the message already names KAFKA_CONFIG_FILE and the file.
      return absl::InvalidArgumentError(properties.status().message());
    }
    bus_options.properties = std::move(*properties);
  }
  // The producer refuses a record over message.max.bytes (librdkafka's
  // default 1000000); events are kept below it by this margin for the key
  // (a peer_id, at most 128 bytes) and the record's framing.
  constexpr int64_t kRecordMargin = 512;
  int64_t bus_limit = 1000000;
  for (const auto& [name, value] : bus_options.properties) {
    if (name != "message.max.bytes") continue;
    if (!absl::SimpleAtoi(value, &bus_limit) || bus_limit < 4096 + kRecordMargin) {
      return absl::InvalidArgumentError(absl::StrCat(
          "KAFKA_CONFIG_FILE: message.max.bytes \"", value, "\" must be an integer of at least ",
          4096 + kRecordMargin, " (the largest event record edged may publish)"));
    }
  }
  const size_t max_event_bytes = static_cast<size_t>(bus_limit - kRecordMargin);
  // A peer message may be larger than the bus can take as one event
  // (control characters even grow sixfold in JSON). Catalog updates are
  // split to fit; any other such message ends its stream with
  // RESOURCE_EXHAUSTED. Said once at start, naming both limits.
  if (static_cast<int64_t>(config.grpc_max_message_bytes) > bus_limit - kRecordMargin) {
    logger->Warn(
        "peer messages may be larger than Kafka takes as one record: catalog updates are split, "
        "other peer messages whose event does not fit are refused (RESOURCE_EXHAUSTED)",
        {{"GRPC_MAX_MESSAGE_BYTES", absl::StrCat(config.grpc_max_message_bytes)},
         {"kafka_message.max.bytes", absl::StrCat(bus_limit)}});
  }
  auto bus = kafka::KafkaMessageBus::Create(std::move(bus_options));
  if (!bus.ok()) {
    return absl::Status(bus.status().code(), absl::StrCat("Kafka: ", bus.status().message()));
  }
  s.bus_ = std::move(*bus);

  grpc_transport::GrpcPeerTransportOptions grpc;
  grpc.address = config.grpc_server_address;
  grpc.keepalive_time = config.grpc_keepalive_time;
  grpc.keepalive_timeout = config.grpc_keepalive_timeout;
  grpc.max_message_bytes = config.grpc_max_message_bytes;
  grpc.max_streams_per_connection = config.grpc_max_streams_per_connection;
  grpc.max_call_starts_per_connection_per_sec = config.grpc_max_calls_per_connection_per_sec;
  grpc.call_start_burst = 5.0 * config.grpc_max_calls_per_connection_per_sec;
  grpc.max_concurrent_streams = config.grpc_max_concurrent_streams;
  grpc.max_connection_idle = config.grpc_max_connection_idle;
  grpc.handshake_timeout = config.grpc_handshake_timeout;
  grpc.listener_probe_interval = config.grpc_listener_probe_interval;
  grpc.enable_reflection = config.grpc_server_reflection;
  grpc.identity_cn_fallback = config.peer_id_cn_fallback;
  grpc.cert_file = config.tls_cert_file.value_or("");
  grpc.key_file = config.tls_key_file.value_or("");
  grpc.client_ca_file = config.tls_client_ca_file.value_or("");
  grpc.clock = s.clock_.get();
  grpc.logger = logger;
  auto transport = grpc_transport::GrpcPeerTransport::Create(std::move(grpc));
  if (!transport.ok()) return transport.status();
  s.transport_ = std::move(*transport);

  if (config.tracker == TrackerKind::kEtcd) {
    etcd::EtcdTrackerOptions etcd;
    etcd.edge_id = config.edge_id;
    etcd.advertised_address = AdvertisedAddress(config.grpc_server_address);
    etcd.endpoints = config.etcd_endpoints;
    etcd.lease_ttl = config.tracker_lease_ttl;
    etcd.key_prefix = config.tracker_key_prefix;
    etcd.clock = s.clock_.get();
    etcd.logger = logger;
    etcd.tls = config.etcd_tls;
    etcd.tls_ca_file = config.etcd_ca_file.value_or("");
    etcd.tls_cert_file = config.etcd_cert_file.value_or("");
    etcd.tls_key_file = config.etcd_key_file.value_or("");
    if (config.etcd_username.has_value()) {
      auto password = ReadSecretFile("ETCD_PASSWORD_FILE", *config.etcd_password_file);
      if (!password.ok()) return password.status();
      etcd.username = *config.etcd_username;
      etcd.password = *std::move(password);
    }
    auto tracker = etcd::EtcdTracker::Create(std::move(etcd));
    if (!tracker.ok()) return tracker.status();
    s.etcd_ = tracker->get();
    s.tracker_ = std::move(*tracker);

  } else {
    s.tracker_ = std::make_unique<LocalTracker>(config.edge_id);
  }

  if (config.metrics_address.has_value()) {
    if (absl::Status metrics = s.CreateMetrics(); !metrics.ok()) return metrics;
    s.probe_ = std::make_shared<TrackerProbe>();
    s.probe_->asks_tracker = config.tracker == TrackerKind::kEtcd && !config.tracker_fail_open;
  }

  EdgeOptions options = ToEdgeOptions(config);
  options.max_event_bytes = max_event_bytes;
  DescriptorBudget* descriptors = s.descriptors_.get();
  options.has_descriptor_headroom = [descriptors] { return descriptors->HasHeadroom(); };
  EdgeParts parts{s.transport_.get(), s.bus_.get(), s.tracker_.get(), s.clock_.get(), logger};
  if (s.metrics_ != nullptr) {
    parts.bus = s.instrumented_bus_.get();
    parts.tracker = s.instrumented_tracker_.get();
    parts.metrics = s.metrics_.get();
  }
  auto edge = Edge::Create(std::move(options), parts);
  if (!edge.ok()) return edge.status();
  s.edge_ = std::move(*edge);
  return service;
}

absl::Status EdgedService::CreateMetrics() {
  auto metrics = metrics::PrometheusMetrics::Create();
  if (!metrics.ok()) return metrics.status();
  metrics_ = std::move(*metrics);
  const Topics& t = config_.topics;
  metrics_->DeclareKafkaTopics(Direction::kIn, {t.commands});
  metrics_->DeclareKafkaTopics(
      Direction::kOut, {t.deadletter, t.lifecycle, t.catalog_updates, t.file_delete_responses,
                        t.file_hash_responses, t.file_offers, t.webrtc_signaling});
  instrumented_bus_ = InstrumentBus(bus_.get(), metrics_.get(), clock_.get());
  instrumented_tracker_ = InstrumentTracker(tracker_.get(), metrics_.get(), clock_.get());
  metrics::MetricsServerOptions http;
  http.address = *config_.metrics_address;
  http.metrics = metrics_->registry();
  http.ready = [this] { return Readiness(); };
  // Liveness: gRPC 1.51 never accepts again after one accept4 failed for
  // want of descriptors; a restart is the only cure.
  http.healthy = [this] { return transport_->listener_status(); };
  http.drain = [this] { Drain(); };
  if (config_.admin_token_file.has_value()) {
    auto token = ReadSecretFile("ADMIN_TOKEN_FILE", *config_.admin_token_file);
    if (!token.ok()) return token.status();
    http.admin_token = *std::move(token);
  }
  http.find_peer = [this](const std::string& peer_id) { return FindPeer(peer_id); };
  http.list_peers = [this](const std::string& after, size_t limit) {
    return ListPeers(after, limit);
  };
  http.kick_peer = [this](const std::string& peer_id) {
    return edge_->Kick(peer_id, "disconnected by the operator");
  };
  http.logger = logger_;
  auto server = metrics::MetricsServer::Create(std::move(http));
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("METRICS_ADDRESS: ", server.status().message()));
  }
  metrics_server_ = std::move(*server);
  return absl::OkStatus();
}

absl::Status EdgedService::Readiness() {
  if (stopping_.load()) return absl::UnavailableError("shutting down");
  if (edge_->draining()) return absl::UnavailableError("draining");
  if (!edge_->Ready()) {
    return absl::UnavailableError(
        "not ready: starting (the command topic is not read yet) or event buffer full");
  }
  if (probe_ == nullptr || !probe_->asks_tracker) return absl::OkStatus();
  absl::MutexLock lock(&probe_->mu);
  return probe_->status;
}

void EdgedService::ProbeTracker(std::shared_ptr<TrackerProbe> probe) {
  // Only `probe` is touched until it is known not to be stopped: a timer
  // may fire while the service shuts down.
  {
    absl::MutexLock lock(&probe->mu);
    if (probe->stopped) return;
    probe->running = true;
  }
  auto finish = [this, probe](absl::Status tracker) {
    {
      absl::MutexLock lock(&probe->mu);
      probe->status = std::move(tracker);
    }
    metrics_->SetReady(Readiness().ok());
    absl::MutexLock lock(&probe->mu);
    if (!probe->stopped) {
      // RunAt never runs inline and takes only the clock's own lock.
      probe->timer =
          clock_->RunAt(clock_->Now() + kTrackerProbeEvery, [this, probe] { ProbeTracker(probe); });
    }
    probe->running = false;
  };
  if (!probe->asks_tracker) {
    finish(absl::OkStatus());
    return;
  }
  // Ask etcd about a key no peer can have (peer ids never hold '/'): any
  // answer, found or not, means it is reachable.
  tracker_->Lookup("readyz/probe", clock_->Now() + kTrackerProbeTimeout,
                   [finish = std::move(finish)](absl::StatusOr<std::string> holder) mutable {
                     finish(holder.ok() || absl::IsNotFound(holder.status())
                                ? absl::OkStatus()
                                : absl::UnavailableError(absl::StrCat("tracker unreachable: ",
                                                                      holder.status().message())));
                   });
}

absl::StatusOr<metrics::AdminPeer> EdgedService::FindPeer(const std::string& peer_id) {
  absl::StatusOr<PeerInfo> here = edge_->FindPeer(peer_id);
  if (here.ok()) {
    metrics::AdminPeer peer;
    peer.peer_id = peer_id;
    peer.edge_id = config_.edge_id;
    peer.connected_at = here->connected_at;
    peer.last_activity = here->last_activity;
    peer.epoch = here->epoch;
    return peer;
  }
  if (etcd_ == nullptr || !absl::IsNotFound(here.status())) return here.status();
  absl::StatusOr<std::string> holder =
      AwaitResult<std::string>(kAdminLookupTimeout, [&](auto done) {
        etcd_->Lookup(peer_id, clock_->Now() + kAdminLookupTimeout, std::move(done));
      });
  if (!holder.ok()) return holder.status();
  metrics::AdminPeer peer;
  peer.peer_id = peer_id;
  peer.edge_id = *holder;
  absl::StatusOr<std::string> address =
      AwaitResult<std::string>(kAdminLookupTimeout, [&](auto done) {
        etcd_->EdgeAddress(*holder, clock_->Now() + kAdminLookupTimeout, std::move(done));
      });
  if (address.ok()) {
    peer.address = *std::move(address);
  } else if (!absl::IsNotFound(address.status())) {
    return address.status();
  }
  return peer;
}

std::vector<metrics::AdminPeer> EdgedService::ListPeers(const std::string& after, size_t limit) {
  std::vector<metrics::AdminPeer> page;
  for (PeerInfo& info : edge_->ListPeers(after, limit)) {
    metrics::AdminPeer peer;
    peer.peer_id = std::move(info.peer_id);
    peer.edge_id = config_.edge_id;
    peer.connected_at = info.connected_at;
    peer.last_activity = info.last_activity;
    peer.epoch = info.epoch;
    page.push_back(std::move(peer));
  }
  return page;
}

absl::Status EdgedService::Start() {
  // The metrics endpoint first: a taken port fails before peers are admitted.
  if (metrics_server_ != nullptr) {
    if (absl::Status listening = metrics_server_->Start(); !listening.ok()) return listening;
  }
  if (absl::Status started = edge_->Start(); !started.ok()) return started;
  if (probe_ != nullptr) ProbeTracker(probe_);
  logger_->Info(
      "edged listening",
      {{"edge_id", config_.edge_id},
       {"grpc",
        absl::StrCat(config_.grpc_server_address.substr(0, config_.grpc_server_address.rfind(':')),
                     ":", transport_->port())},
       {"tls", transport_->tls() ? "on" : "off"},
       {"metrics",
        metrics_server_ == nullptr
            ? std::string("off")
            : absl::StrCat(config_.metrics_address->substr(0, config_.metrics_address->rfind(':')),
                           ":", metrics_server_->port())},
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

void EdgedService::Drain() {
  transport_->SetServing(false);
  edge_->Drain();
}

absl::Status EdgedService::ReloadCredentials() { return transport_->ReloadCredentials(); }

void EdgedService::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  stopping_.store(true);
  if (transport_ != nullptr) transport_->SetServing(false);
  if (probe_ != nullptr) {
    Clock::TimerId timer;
    {
      absl::MutexLock lock(&probe_->mu);
      probe_->stopped = true;
      timer = probe_->timer;
    }
    clock_->Cancel(timer);
  }
  if (edge_ != nullptr) edge_->Shutdown(clock_->Now() + config_.shutdown_timeout);
  if (probe_ != nullptr) {
    // The tracker is shut down: a probe still out has been answered or
    // fails at once.
    absl::MutexLock lock(&probe_->mu);
    probe_->mu.Await(absl::Condition(
        +[](TrackerProbe* p) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !p->running; }, probe_.get()));
  }
  // Last, so that /metrics and /readyz answer while the edge shuts down.
  if (metrics_server_ != nullptr) metrics_server_->Shutdown();
}

int EdgedService::grpc_port() const { return transport_->port(); }

int EdgedService::metrics_port() const {
  return metrics_server_ == nullptr ? 0 : metrics_server_->port();
}

}  // namespace edge
