#include "core/command_decoder.h"

#include <climits>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
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

// A fast path for the common shape of a command: one flat JSON object whose
// members are the snake_case fields below, with strings free of escapes,
// arrays of such strings, and an integer quantity. protobuf's JSON parser
// builds type descriptions anew on every call (some 20 times the cost of
// this). Returns false, having decided nothing, for anything else (escapes,
// null, nested objects, camelCase or unknown names, duplicates, malformed
// JSON): the caller then parses with protobuf, so results are identical.
class FastCommandParser {
 public:
  explicit FastCommandParser(absl::string_view in) : in_(in) {}

  bool Parse(internal::CommandJson* json) {
    SkipSpace();
    if (!Consume('{')) return false;
    SkipSpace();
    if (Consume('}')) return AtEnd();
    uint32_t seen = 0;
    while (true) {
      absl::string_view key;
      SkipSpace();
      if (!String(&key)) return false;
      SkipSpace();
      if (!Consume(':')) return false;
      SkipSpace();
      const int field = FieldIndex(key);
      if (field < 0 || (seen & (1u << field)) != 0) return false;
      seen |= 1u << field;
      if (!Value(field, json)) return false;
      SkipSpace();
      if (Consume(',')) continue;
      if (Consume('}')) return AtEnd();
      return false;
    }
  }

 private:
  enum Field {
    kType, kPeerId, kRequestId, kCatalogIds, kCatalogId, kHashTypes, kOldCatalogId,
    kNewCatalogId, kQuantity, kUploadToken, kUploadEndpoint, kReason,
  };

  static int FieldIndex(absl::string_view key) {
    static constexpr absl::string_view kNames[] = {
        "type", "peer_id", "request_id", "catalog_ids", "catalog_id", "hash_types",
        "old_catalog_id", "new_catalog_id", "quantity", "upload_token", "upload_endpoint",
        "reason"};
    for (int i = 0; i < static_cast<int>(sizeof(kNames) / sizeof(kNames[0])); ++i) {
      if (kNames[i] == key) return i;
    }
    return -1;
  }

  bool Value(int field, internal::CommandJson* json) {
    absl::string_view text;
    switch (field) {
      case kCatalogIds:
        return StringArray(json->mutable_catalog_ids());
      case kHashTypes:
        return StringArray(json->mutable_hash_types());
      case kQuantity: {
        int32_t quantity;
        if (!Int32(&quantity)) return false;
        json->set_quantity(quantity);
        return true;
      }
      default:
        break;
    }
    if (!String(&text)) return false;
    std::string value(text);
    switch (field) {
      case kType: json->set_type(std::move(value)); break;
      case kPeerId: json->set_peer_id(std::move(value)); break;
      case kRequestId: json->set_request_id(std::move(value)); break;
      case kCatalogId: json->set_catalog_id(std::move(value)); break;
      case kOldCatalogId: json->set_old_catalog_id(std::move(value)); break;
      case kNewCatalogId: json->set_new_catalog_id(std::move(value)); break;
      case kUploadToken: json->set_upload_token(std::move(value)); break;
      case kUploadEndpoint: json->set_upload_endpoint(std::move(value)); break;
      case kReason: json->set_reason(std::move(value)); break;
      default: return false;
    }
    return true;
  }

  bool StringArray(google::protobuf::RepeatedPtrField<std::string>* out) {
    if (!Consume('[')) return false;
    SkipSpace();
    if (Consume(']')) return true;
    while (true) {
      absl::string_view text;
      SkipSpace();
      if (!String(&text)) return false;
      out->Add(std::string(text));
      SkipSpace();
      if (Consume(',')) continue;
      return Consume(']');
    }
  }

  // A string without escapes or control characters (the input is valid
  // UTF-8 already).
  bool String(absl::string_view* out) {
    if (!Consume('"')) return false;
    const size_t begin = pos_;
    while (pos_ < in_.size()) {
      const unsigned char c = static_cast<unsigned char>(in_[pos_]);
      if (c == '"') {
        *out = in_.substr(begin, pos_ - begin);
        ++pos_;
        return true;
      }
      if (c == '\\' || c < 0x20) return false;
      ++pos_;
    }
    return false;
  }

  // -?(0|[1-9][0-9]*) within int32; no fraction or exponent.
  bool Int32(int32_t* out) {
    const bool negative = Consume('-');
    if (pos_ >= in_.size() || !absl::ascii_isdigit(in_[pos_])) return false;
    if (in_[pos_] == '0' && pos_ + 1 < in_.size() && absl::ascii_isdigit(in_[pos_ + 1])) {
      return false;
    }
    int64_t value = 0;
    while (pos_ < in_.size() && absl::ascii_isdigit(in_[pos_])) {
      value = value * 10 + (in_[pos_++] - '0');
      if (value > int64_t{1} << 32) return false;
    }
    if (pos_ < in_.size() && (in_[pos_] == '.' || in_[pos_] == 'e' || in_[pos_] == 'E')) {
      return false;
    }
    if (negative) value = -value;
    if (value < INT32_MIN || value > INT32_MAX) return false;
    *out = static_cast<int32_t>(value);
    return true;
  }

  bool Consume(char c) {
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void SkipSpace() {
    while (pos_ < in_.size() &&
           (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\n' || in_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == in_.size();
  }

  const absl::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

DecodeResult DecodeCommand(absl::string_view value, size_t max_message_bytes) {
  if (!IsValidUtf8(value)) return Fail(DeadLetterReason::kInvalidJson, "value is not valid UTF-8");

  internal::CommandJson json;
  JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;  // §4: unknown extra fields are ignored.
  google::protobuf::StringPiece input(value.data(), value.size());
  google::protobuf::util::Status parsed;
  if (!FastCommandParser(value).Parse(&json)) {
    json.Clear();
    parsed = JsonStringToMessage(input, &json, lenient);
  }
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
