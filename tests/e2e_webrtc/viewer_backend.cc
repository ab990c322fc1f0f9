#include "e2e_webrtc/viewer_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

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
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "";
  return out;
}

std::string Command(const std::string& type, const std::string& peer_id,
                    const std::string& request_id, const google::protobuf::Message& webrtc) {
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

// How long an accessor may take to read what the topics hold now.
constexpr absl::Duration kCatchUpTimeout = absl::Seconds(10);

SignalingEvent ParseSignaling(const IncomingRecord& record) {
  Struct json;
  (void)google::protobuf::util::JsonStringToMessage(record.value, &json);
  SignalingEvent e;
  e.key = record.key;
  e.peer_id = StringField(json, "peer_id");
  e.edge_id = StringField(json, "edge_id");
  e.request_id = StringField(json, "request_id");
  e.session_id = StringField(json, "session_id");
  e.kind = StringField(json, "kind");
  e.origin = StringField(json, "origin");
  e.timestamp = StringField(json, "timestamp");
  auto message = json.fields().find("message");
  if (message != json.fields().end()) e.message_json = ToJson(message->second);
  e.raw = record.value;
  return e;
}

DeadLetter ParseDeadLetter(const IncomingRecord& record) {
  Struct json;
  (void)google::protobuf::util::JsonStringToMessage(record.value, &json);
  DeadLetter d;
  d.key = record.key;
  d.peer_id = StringField(json, "peer_id");
  d.reason = StringField(json, "reason");
  d.detail = StringField(json, "detail");
  d.original_message = StringField(json, "original_message");
  return d;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ViewerBackend>> ViewerBackend::Create(ViewerBackendOptions options) {
  auto producer = KafkaClient::Create(options.bootstrap_servers);
  if (!producer.ok()) return producer.status();
  auto signaling = TopicReader::Create(options.bootstrap_servers, options.signaling_topic);
  if (!signaling.ok()) return signaling.status();
  auto deadletter = TopicReader::Create(options.bootstrap_servers, options.deadletter_topic);
  if (!deadletter.ok()) return deadletter.status();
  return std::unique_ptr<ViewerBackend>(new ViewerBackend(
      std::move(options), *std::move(producer), *std::move(signaling), *std::move(deadletter)));
}

ViewerBackend::ViewerBackend(ViewerBackendOptions options, std::unique_ptr<KafkaClient> producer,
                             std::unique_ptr<TopicReader> signaling_reader,
                             std::unique_ptr<TopicReader> deadletter_reader)
    : options_(std::move(options)),
      producer_(std::move(producer)),
      signaling_reader_(std::move(signaling_reader)),
      deadletter_reader_(std::move(deadletter_reader)) {}

ViewerBackend::~ViewerBackend() = default;

absl::Status ViewerBackend::SendAsync(const std::string& key, const std::string& json) {
  absl::MutexLock lock(&mu_);
  queued_.emplace_back(key, json);
  return absl::OkStatus();
}

absl::Status ViewerBackend::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, std::string>> queued;
  queued.swap(queued_);
  if (queued.empty()) return absl::OkStatus();
  return producer_->ProduceAll(options_.commands_topic, queued, timeout);
}

absl::Status ViewerBackend::Send(const std::string& key, const std::string& json) {
  if (absl::Status queued = SendAsync(key, json); !queued.ok()) return queued;
  return Flush();
}

std::string ViewerBackend::ReplyCommand(const std::string& peer_id, const std::string& request_id,
                                        const gp::PeerWebRTCMessage& reply) {
  return Command("webrtc_reply", peer_id, request_id, reply);
}

std::string ViewerBackend::WebRtcCommand(const std::string& peer_id, const std::string& request_id,
                                         const gp::EdgeWebRTCMessage& message) {
  return Command("webrtc", peer_id, request_id, message);
}

void ViewerBackend::ParseNewLocked() {
  const std::vector<IncomingRecord>& signaling = signaling_reader_->records();
  for (size_t i = signaling_.size(); i < signaling.size(); ++i)
    signaling_.push_back(ParseSignaling(signaling[i]));
  const std::vector<IncomingRecord>& letters = deadletter_reader_->records();
  for (size_t i = dead_letters_.size(); i < letters.size(); ++i)
    dead_letters_.push_back(ParseDeadLetter(letters[i]));
}

void ViewerBackend::CatchUpLocked() {
  for (TopicReader* reader : {signaling_reader_.get(), deadletter_reader_.get()}) {
    absl::Status caught_up = reader->CatchUp(kCatchUpTimeout);
    EXPECT_TRUE(caught_up.ok()) << caught_up;
  }
  ParseNewLocked();
}

std::vector<SignalingEvent> ViewerBackend::Signaling() {
  absl::MutexLock lock(&mu_);
  CatchUpLocked();
  return signaling_;
}

std::vector<DeadLetter> ViewerBackend::DeadLetters() {
  absl::MutexLock lock(&mu_);
  CatchUpLocked();
  return dead_letters_;
}

bool ViewerBackend::WaitForSignaling(size_t n, absl::Duration timeout,
                                     const std::function<bool(const SignalingEvent&)>& pred) {
  absl::MutexLock lock(&mu_);
  size_t count = 0;
  size_t counted = 0;
  // WaitUntil runs the predicate on this thread, with mu_ still held.
  return signaling_reader_->WaitUntil(
      [&](const std::vector<IncomingRecord>&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        ParseNewLocked();
        for (; counted < signaling_.size(); ++counted) {
          if (pred == nullptr || pred(signaling_[counted])) ++count;
        }
        return count >= n;
      },
      timeout);
}

bool ViewerBackend::WaitForDeadLetters(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return deadletter_reader_->WaitUntil(
      [&](const std::vector<IncomingRecord>& letters) { return letters.size() >= n; }, timeout);
}

}  // namespace edge::testing
