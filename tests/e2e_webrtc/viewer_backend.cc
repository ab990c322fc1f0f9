#include "e2e_webrtc/viewer_backend.h"

#include <librdkafka/rdkafka.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace edge::testing {
namespace {

namespace gp = giggityflix_grpc_peer;
using google::protobuf::Struct;
using google::protobuf::Value;

std::string StringField(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  if (it == s.fields().end() || !it->second.has_string_value()) return "";
  return it->second.string_value();
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok())
    return "";
  return out;
}

std::string Command(const std::string& type, const std::string& peer_id,
                    const std::string& request_id,
                    const google::protobuf::Message& webrtc) {
  Struct command;
  auto& fields = *command.mutable_fields();
  fields["type"].set_string_value(type);
  fields["peer_id"].set_string_value(peer_id);
  if (!request_id.empty()) fields["request_id"].set_string_value(request_id);
  Value message;
  (void)google::protobuf::util::JsonStringToMessage(ToJson(webrtc), &message);
  fields["webrtc"] = std::move(message);
  return ToJson(command);
}

rd_kafka_t* NewClient(
    rd_kafka_type_t type,
    const std::vector<std::pair<std::string, std::string>>& properties,
    void* opaque, std::string* error) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      *error = errstr;
      return nullptr;
    }
  }
  if (type == RD_KAFKA_PRODUCER) {
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_conf_set_dr_msg_cb(
        conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void* o) {
          if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            static_cast<std::atomic<int>*>(o)->fetch_add(1);
        });
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    *error = errstr;
  }
  return rk;
}

}  // namespace

struct ViewerBackend::Clients {
  ~Clients() {
    if (consumer != nullptr) {
      rd_kafka_consumer_close(consumer);
      rd_kafka_destroy(consumer);
    }
    if (producer != nullptr) {
      rd_kafka_flush(producer, 5000);
      rd_kafka_destroy(producer);
    }
  }
  std::atomic<int> failed_deliveries{0};
  rd_kafka_t* producer = nullptr;
  rd_kafka_t* consumer = nullptr;
};

absl::StatusOr<std::unique_ptr<ViewerBackend>> ViewerBackend::Create(
    ViewerBackendOptions options) {
  auto clients = std::make_unique<Clients>();
  std::string error;
  clients->producer =
      NewClient(RD_KAFKA_PRODUCER,
                {{"bootstrap.servers", options.bootstrap_servers},
                 {"enable.idempotence", "true"},
                 {"linger.ms", "1"}},
                &clients->failed_deliveries, &error);
  if (clients->producer == nullptr) return absl::InternalError(error);
  clients->consumer =
      NewClient(RD_KAFKA_CONSUMER,
                {{"bootstrap.servers", options.bootstrap_servers},
                 {"group.id", "viewer-backend"},
                 {"enable.auto.commit", "false"},
                 {"fetch.wait.max.ms", "10"}},
                nullptr, &error);
  if (clients->consumer == nullptr) return absl::InternalError(error);
  rd_kafka_poll_set_consumer(clients->consumer);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(
      options.signaling_partitions + options.deadletter_partitions);
  for (int p = 0; p < options.signaling_partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, options.signaling_topic.c_str(), p)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  for (int p = 0; p < options.deadletter_partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, options.deadletter_topic.c_str(), p)
        ->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_resp_err_t err = rd_kafka_assign(clients->consumer, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("assign: ", rd_kafka_err2str(err)));
  }
  std::unique_ptr<ViewerBackend> backend(
      new ViewerBackend(std::move(options), std::move(clients)));
  backend->reader_ = std::thread([b = backend.get()] { b->ReadLoop(); });
  return backend;
}

ViewerBackend::ViewerBackend(ViewerBackendOptions options,
                             std::unique_ptr<Clients> clients)
    : options_(std::move(options)), clients_(std::move(clients)) {}

ViewerBackend::~ViewerBackend() {
  stop_ = true;
  if (reader_.joinable()) reader_.join();
}

absl::Status ViewerBackend::SendAsync(const std::string& key,
                                      const std::string& json) {
  rd_kafka_resp_err_t err = rd_kafka_producev(
      clients_->producer, RD_KAFKA_V_TOPIC(options_.commands_topic.c_str()),
      RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(json.data()), json.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  rd_kafka_poll(clients_->producer, 0);  // serve delivery reports
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("produce: ", rd_kafka_err2str(err)));
  }
  return absl::OkStatus();
}

absl::Status ViewerBackend::Flush(absl::Duration timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(
      clients_->producer, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::DeadlineExceededError(
        absl::StrCat("flush: ", rd_kafka_err2str(err)));
  }
  int failed = clients_->failed_deliveries.exchange(0);
  if (failed > 0)
    return absl::UnavailableError(
        absl::StrCat(failed, " commands not delivered"));
  return absl::OkStatus();
}

absl::Status ViewerBackend::Send(const std::string& key,
                                 const std::string& json) {
  if (absl::Status sent = SendAsync(key, json); !sent.ok()) return sent;
  return Flush();
}

std::string ViewerBackend::ReplyCommand(const std::string& peer_id,
                                        const std::string& request_id,
                                        const gp::PeerWebRTCMessage& reply) {
  return Command("webrtc_reply", peer_id, request_id, reply);
}

std::string ViewerBackend::WebRtcCommand(const std::string& peer_id,
                                         const std::string& request_id,
                                         const gp::EdgeWebRTCMessage& message) {
  return Command("webrtc", peer_id, request_id, message);
}

void ViewerBackend::ReadLoop() {
  while (!stop_) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(clients_->consumer, 20);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::string topic = rd_kafka_topic_name(m->rkt);
      std::string key =
          m->key ? std::string(static_cast<const char*>(m->key), m->key_len)
                 : "";
      std::string value =
          m->payload ? std::string(static_cast<const char*>(m->payload), m->len)
                     : "";
      Struct json;
      (void)google::protobuf::util::JsonStringToMessage(value, &json);
      absl::MutexLock lock(&mu_);
      if (topic == options_.signaling_topic) {
        SignalingEvent& e = signaling_.emplace_back();
        e.key = key;
        e.peer_id = StringField(json, "peer_id");
        e.edge_id = StringField(json, "edge_id");
        e.request_id = StringField(json, "request_id");
        e.session_id = StringField(json, "session_id");
        e.kind = StringField(json, "kind");
        e.origin = StringField(json, "origin");
        e.timestamp = StringField(json, "timestamp");
        auto message = json.fields().find("message");
        if (message != json.fields().end())
          e.message_json = ToJson(message->second);
        e.raw = std::move(value);
      } else {
        DeadLetter& d = dead_letters_.emplace_back();
        d.key = key;
        d.peer_id = StringField(json, "peer_id");
        d.reason = StringField(json, "reason");
        d.detail = StringField(json, "detail");
        d.original_message = StringField(json, "original_message");
      }
    }
    rd_kafka_message_destroy(m);
  }
}

std::vector<SignalingEvent> ViewerBackend::Signaling() {
  absl::MutexLock lock(&mu_);
  return signaling_;
}

std::vector<DeadLetter> ViewerBackend::DeadLetters() {
  absl::MutexLock lock(&mu_);
  return dead_letters_;
}

bool ViewerBackend::WaitForSignaling(
    size_t n, absl::Duration timeout,
    const std::function<bool(const SignalingEvent&)>& pred) {
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t count = 0;
    for (const SignalingEvent& e : signaling_) {
      if (pred == nullptr || pred(e)) ++count;
    }
    return count >= n;
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool ViewerBackend::WaitForDeadLetters(size_t n, absl::Duration timeout) {
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return dead_letters_.size() >= n;
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace edge::testing
