#include "core/command_decoder.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "core/command.pb.h"
#include "core/ids.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace edge {
namespace {

namespace gp = giggityflix_grpc_peer;
using google::protobuf::util::JsonParseOptions;
using google::protobuf::util::JsonStringToMessage;

constexpr int kMaxScreenshots = 100;
// request_id, edge_id and framing added to the payload on the wire.
constexpr size_t kEnvelopeBytes = 512;

const absl::flat_hash_map<absl::string_view, CommandType>& CommandTypes() {
  static const auto* types = new absl::flat_hash_map<absl::string_view, CommandType>{
      {"file_delete", CommandType::kFileDelete},
      {"file_hash", CommandType::kFileHash},
      {"file_remap", CommandType::kFileRemap},
      {"screenshot", CommandType::kScreenshot},
      {"catalog_announcement", CommandType::kCatalogAnnouncement},
      {"batch_file_offer_response", CommandType::kBatchFileOfferResponse},
      {"webrtc", CommandType::kWebRtc},
      {"webrtc_reply", CommandType::kWebRtcReply},
      {"disconnect", CommandType::kDisconnect},
  };
  return *types;
}

DecodeResult Fail(DeadLetterReason reason, std::string detail, std::string peer_id = "") {
  DecodeResult result;
  result.error = CommandError{reason, std::move(detail), std::move(peer_id)};
  return result;
}

// Parses the `webrtc` member into `out` (an Edge- or PeerWebRTCMessage).
std::string ParseWebRtc(const internal::CommandJson& json, google::protobuf::Message* out) {
  if (!json.has_webrtc() || json.webrtc().kind_case() != google::protobuf::Value::kStructValue) {
    return "field webrtc must be an object (a WebRTC message in protobuf JSON)";
  }
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(json.webrtc(), &text).ok()) {
    return "field webrtc cannot be re-encoded";
  }
  JsonParseOptions strict;  // Unknown fields inside a protobuf message are typos: reject.
  auto status = JsonStringToMessage(text, out, strict);
  if (!status.ok()) {
    return absl::StrCat("field webrtc is not a valid ", out->GetDescriptor()->name(), ": ",
                        std::string(status.message()));
  }
  const auto* oneof = out->GetDescriptor()->FindOneofByName("payload");
  if (!out->GetReflection()->HasOneof(*out, oneof)) {
    return absl::StrCat("field webrtc has no payload (one of ",
                        out->GetDescriptor()->name() == "EdgeWebRTCMessage"
                            ? "stream_session_request, sdp_answer, ice_candidate"
                            : "stream_session_response, sdp_offer, ice_candidate",
                        ")");
  }
  return "";
}

// Fills command.message / command.reply from the parsed JSON; returns an
// error detail, or "" when the command is complete.
std::string Build(const internal::CommandJson& json, Command& command) {
  gp::EdgeMessage& m = command.message;
  switch (command.type) {
    case CommandType::kFileDelete: {
      if (json.catalog_ids().empty()) return "file_delete needs a non-empty catalog_ids array";
      for (const auto& id : json.catalog_ids()) {
        if (id.empty()) return "file_delete: catalog_ids holds an empty string";
      }
      *m.mutable_file_delete_request()->mutable_catalog_ids() = json.catalog_ids();
      return "";
    }
    case CommandType::kFileHash: {
      if (json.catalog_id().empty()) return "file_hash needs catalog_id";
      auto* r = m.mutable_file_hash_request();
      r->set_catalog_id(json.catalog_id());
      *r->mutable_hash_types() = json.hash_types();
      return "";
    }
    case CommandType::kFileRemap: {
      if (json.old_catalog_id().empty() || json.new_catalog_id().empty()) {
        return "file_remap needs old_catalog_id and new_catalog_id";
      }
      auto* r = m.mutable_file_remap_request();
      r->set_old_catalog_id(json.old_catalog_id());
      r->set_new_catalog_id(json.new_catalog_id());
      return "";
    }
    case CommandType::kScreenshot: {
      if (json.catalog_id().empty()) return "screenshot needs catalog_id";
      int quantity = json.has_quantity() ? json.quantity() : 1;
      if (quantity < 1 || quantity > kMaxScreenshots) {
        return absl::StrCat("screenshot: quantity ", quantity, " is outside [1, ", kMaxScreenshots, "]");
      }
      auto* r = m.mutable_screenshot_capture_request();
      r->set_catalog_id(json.catalog_id());
      r->set_quantity(quantity);
      r->set_upload_token(json.upload_token());
      r->set_upload_endpoint(json.upload_endpoint());
      return "";
    }
    case CommandType::kCatalogAnnouncement:
      m.mutable_catalog_announcement_request();
      return "";
    case CommandType::kBatchFileOfferResponse: {
      auto* r = m.mutable_batch_file_offer_response();
      for (int i = 0; i < json.files_size(); ++i) {
        const auto& f = json.files(i);
        if (f.relative_path().empty() || f.catalog_id().empty()) {
          return absl::StrCat("batch_file_offer_response: files[", i,
                              "] needs relative_path and catalog_id");
        }
        auto* out = r->add_files();
        out->set_relative_path(f.relative_path());
        out->set_catalog_id(f.catalog_id());
      }
      return "";
    }
    case CommandType::kWebRtc: {
      std::string error = ParseWebRtc(json, m.mutable_webrtc());
      if (!error.empty()) return error;
      if (m.webrtc().request_id().empty()) m.mutable_webrtc()->set_request_id(command.request_id);
      return "";
    }
    case CommandType::kWebRtcReply: {
      std::string error = ParseWebRtc(json, &command.reply);
      if (!error.empty()) return error;
      if (command.request_id.empty()) command.request_id = command.reply.request_id();
      if (command.request_id.empty()) {
        return "webrtc_reply needs the request_id of the pending WebRTCOperations call";
      }
      command.reply.set_request_id(command.request_id);
      return "";
    }
    case CommandType::kDisconnect:
      command.reason = json.reason();
      return "";
  }
  return "unhandled command type";
}

}  // namespace

DecodeResult DecodeCommand(absl::string_view value, size_t max_message_bytes) {
  if (!IsValidUtf8(value)) return Fail(DeadLetterReason::kInvalidJson, "value is not valid UTF-8");

  internal::CommandJson json;
  JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;  // §4: unknown extra fields are ignored.
  google::protobuf::StringPiece input(value.data(), value.size());
  auto parsed = JsonStringToMessage(input, &json, lenient);
  if (!parsed.ok()) {
    // Tell malformed JSON from well-formed JSON of the wrong shape.
    google::protobuf::Value any;
    if (!JsonStringToMessage(input, &any, lenient).ok()) {
      return Fail(DeadLetterReason::kInvalidJson,
                  absl::StrCat("not valid JSON: ", std::string(parsed.message())));
    }
    if (any.kind_case() != google::protobuf::Value::kStructValue) {
      return Fail(DeadLetterReason::kInvalidCommand, "value is JSON but not an object");
    }
    return Fail(DeadLetterReason::kInvalidCommand,
                absl::StrCat("field of the wrong type: ", std::string(parsed.message())));
  }

  if (json.type().empty()) return Fail(DeadLetterReason::kInvalidCommand, "missing field type", json.peer_id());
  auto type = CommandTypes().find(json.type());
  if (type == CommandTypes().end()) {
    return Fail(DeadLetterReason::kUnknownType, absl::StrCat("unknown type \"", json.type(), "\""),
                json.peer_id());
  }
  if (json.peer_id().empty()) return Fail(DeadLetterReason::kInvalidCommand, "missing field peer_id");
  if (auto valid = ValidatePeerId(json.peer_id()); !valid.ok()) {
    return Fail(DeadLetterReason::kInvalidCommand, std::string(valid.message()), json.peer_id());
  }

  DecodeResult result;
  Command& command = result.command;
  command.type = type->second;
  command.peer_id = json.peer_id();
  command.request_id = json.request_id();
  std::string error = Build(json, command);
  if (!error.empty()) return Fail(DeadLetterReason::kInvalidCommand, error, json.peer_id());
  size_t size = command.message.ByteSizeLong() + command.reply.ByteSizeLong() + kEnvelopeBytes;
  if (size > max_message_bytes) {
    return Fail(DeadLetterReason::kInvalidCommand,
                absl::StrCat("the command needs ", size, " bytes on the peer stream; at most ",
                             max_message_bytes, " allowed"),
                json.peer_id());
  }
  return result;
}

}  // namespace edge
