#include "command_decoder.h"

#include <cmath>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "edge/ids.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace edge {
namespace {

namespace gp = giggityflix_grpc_peer;
using google::protobuf::ListValue;
using google::protobuf::Struct;
using google::protobuf::Value;

constexpr int kMaxScreenshots = 100;
// request_id, edge_id and framing added to the payload on the wire.
constexpr size_t kEnvelopeBytes = 512;
constexpr char kTypeUrlPrefix[] = "type.googleapis.com";

// protobuf's JSON parser resolves the type descriptions of the target
// message on every call, which costs far more than the parse itself. This
// resolver keeps what it resolved, for the life of the process (the types
// are the generated ones: a small, fixed set).
class CachingTypeResolver final : public google::protobuf::util::TypeResolver {
 public:
  CachingTypeResolver()
      : inner_(google::protobuf::util::NewTypeResolverForDescriptorPool(
            kTypeUrlPrefix, google::protobuf::DescriptorPool::generated_pool())) {}

  google::protobuf::util::Status ResolveMessageType(const std::string& url,
                                                    google::protobuf::Type* type) override {
    return Resolve(url, type, [&] { return inner_->ResolveMessageType(url, type); });
  }
  google::protobuf::util::Status ResolveEnumType(const std::string& url,
                                                 google::protobuf::Enum* type) override {
    return Resolve(url, type, [&] { return inner_->ResolveEnumType(url, type); });
  }

 private:
  template <typename T, typename Load>
  google::protobuf::util::Status Resolve(const std::string& url, T* out, Load load)
      ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::ReaderMutexLock lock(&mu_);
      const auto& cache = CacheLocked(out);
      auto it = cache.find(url);
      if (it != cache.end()) {
        *out = it->second;
        return google::protobuf::util::Status();
      }
    }
    google::protobuf::util::Status status = load();
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      CacheLocked(out).emplace(url, *out);
    }
    return status;
  }

  // The cache of T's descriptions, chosen by the type of the output.
  absl::flat_hash_map<std::string, google::protobuf::Type>& CacheLocked(google::protobuf::Type*)
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return types_;
  }
  absl::flat_hash_map<std::string, google::protobuf::Enum>& CacheLocked(google::protobuf::Enum*)
      ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return enums_;
  }

  const std::unique_ptr<google::protobuf::util::TypeResolver> inner_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, google::protobuf::Type> types_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, google::protobuf::Enum> enums_ ABSL_GUARDED_BY(mu_);
};

// Parses JSON into `out` with protobuf's parser; unknown fields are errors.
// Returns "" or the parser's message.
std::string ParseJson(absl::string_view json, google::protobuf::Message* out) {
  static auto* resolver = new CachingTypeResolver();
  std::string binary;
  google::protobuf::util::JsonParseOptions strict;
  auto status = google::protobuf::util::JsonToBinaryString(
      resolver, absl::StrCat(kTypeUrlPrefix, "/", out->GetDescriptor()->full_name()),
      google::protobuf::StringPiece(json.data(), json.size()), &binary, strict);
  if (!status.ok()) return std::string(status.message());
  if (!out->ParseFromString(binary)) return "the parsed message does not decode";
  return "";
}

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

// Typed, strict access to the members of the command object. The first
// type error is kept in `error`; absent and null members read as empty.
class Members {
 public:
  explicit Members(const Struct& object) : object_(object) {}

  const std::string& error() const { return error_; }

  std::string String(const char* name) {
    const Value* v = Find(name);
    if (v == nullptr) return "";
    if (v->kind_case() != Value::kStringValue) return Wrong(name, "a string");
    return v->string_value();
  }

  bool StringArray(const char* name, google::protobuf::RepeatedPtrField<std::string>* out) {
    const Value* v = Find(name);
    if (v == nullptr) return true;
    if (v->kind_case() != Value::kListValue) return Wrong(name, "an array of strings"), false;
    for (const Value& item : v->list_value().values()) {
      if (item.kind_case() != Value::kStringValue) {
        return Wrong(name, "an array of strings"), false;
      }
      out->Add(std::string(item.string_value()));
    }
    return true;
  }

  // An integer; `fallback` when absent.
  std::optional<int64_t> Integer(const char* name, int64_t fallback) {
    const Value* v = Find(name);
    if (v == nullptr) return fallback;
    double d = v->kind_case() == Value::kNumberValue ? v->number_value() : NAN;
    if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 1e15) {
      Wrong(name, "an integer");
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }

  const ListValue* List(const char* name) {
    const Value* v = Find(name);
    if (v == nullptr) return nullptr;
    if (v->kind_case() != Value::kListValue) return Wrong(name, "an array"), nullptr;
    return &v->list_value();
  }

  const Struct* Object(const char* name) {
    const Value* v = Find(name);
    if (v == nullptr) return nullptr;
    if (v->kind_case() != Value::kStructValue) return Wrong(name, "an object"), nullptr;
    return &v->struct_value();
  }

 private:
  const Value* Find(const char* name) const {
    auto it = object_.fields().find(name);
    if (it == object_.fields().end() || it->second.kind_case() == Value::kNullValue) return nullptr;
    return &it->second;
  }

  std::string Wrong(const char* name, const char* expected) {
    if (error_.empty()) error_ = absl::StrCat("field ", name, " must be ", expected);
    return "";
  }

  const Struct& object_;
  std::string error_;
};

// Parses the `webrtc` member into `out` (an Edge- or PeerWebRTCMessage):
// strictly, since unknown fields inside a protobuf message are typos.
std::string ParseWebRtc(Members& members, google::protobuf::Message* out) {
  const Struct* object = members.Object("webrtc");
  if (!members.error().empty()) return members.error();
  if (object == nullptr)
    return "field webrtc must be an object (a WebRTC message in protobuf JSON)";
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(*object, &text).ok()) {
    return "field webrtc cannot be re-encoded";
  }
  std::string error = ParseJson(text, out);
  if (!error.empty()) {
    return absl::StrCat("field webrtc is not a valid ", out->GetDescriptor()->name(), ": ", error);
  }
  const auto* oneof = out->GetDescriptor()->FindOneofByName("payload");
  if (!out->GetReflection()->HasOneof(*out, oneof)) {
    return absl::StrCat("field webrtc has no payload (one of ",
                        out->GetDescriptor()->name() == "EdgeWebRTCMessage"
                            ? "stream_session_request, sdp_answer, ice_candidate"
                            : "stream_session_response, sdp_offer, ice_candidate",
                        ")");
  }
  if (WebRtcSessionId(*out).empty()) {
    return absl::StrCat("webrtc: the ", WebRtcKind(*out), " has no session_id");
  }
  return "";
}

// Fills command.message / command.reply from the members; returns an error
// detail, or "" when the command is complete.
std::string Build(Members& in, Command& command) {
  gp::EdgeMessage& m = command.message;
  std::string error;
  switch (command.type) {
    case CommandType::kFileDelete: {
      auto* ids = m.mutable_file_delete_request()->mutable_catalog_ids();
      if (!in.StringArray("catalog_ids", ids)) return in.error();
      if (ids->empty()) return "file_delete needs a non-empty catalog_ids array";
      for (const auto& id : *ids) {
        if (id.empty()) return "file_delete: catalog_ids holds an empty string";
      }
      return "";
    }
    case CommandType::kFileHash: {
      auto* r = m.mutable_file_hash_request();
      r->set_catalog_id(in.String("catalog_id"));
      if (!in.StringArray("hash_types", r->mutable_hash_types())) return in.error();
      if (!in.error().empty()) return in.error();
      if (r->catalog_id().empty()) return "file_hash needs catalog_id";
      return "";
    }
    case CommandType::kFileRemap: {
      auto* r = m.mutable_file_remap_request();
      r->set_old_catalog_id(in.String("old_catalog_id"));
      r->set_new_catalog_id(in.String("new_catalog_id"));
      if (!in.error().empty()) return in.error();
      if (r->old_catalog_id().empty() || r->new_catalog_id().empty()) {
        return "file_remap needs old_catalog_id and new_catalog_id";
      }
      return "";
    }
    case CommandType::kScreenshot: {
      auto* r = m.mutable_screenshot_capture_request();
      r->set_catalog_id(in.String("catalog_id"));
      r->set_upload_token(in.String("upload_token"));
      r->set_upload_endpoint(in.String("upload_endpoint"));
      std::optional<int64_t> quantity = in.Integer("quantity", 1);
      if (!in.error().empty()) return in.error();
      if (r->catalog_id().empty()) return "screenshot needs catalog_id";
      if (*quantity < 1 || *quantity > kMaxScreenshots) {
        return absl::StrCat("screenshot: quantity ", *quantity, " is outside [1, ", kMaxScreenshots,
                            "]");
      }
      r->set_quantity(static_cast<int32_t>(*quantity));
      return "";
    }
    case CommandType::kCatalogAnnouncement:
      m.mutable_catalog_announcement_request();
      return "";
    case CommandType::kBatchFileOfferResponse: {
      auto* r = m.mutable_batch_file_offer_response();
      const ListValue* files = in.List("files");
      if (!in.error().empty()) return in.error();
      if (files == nullptr) return "";
      for (int i = 0; i < files->values_size(); ++i) {
        const Value& item = files->values(i);
        if (item.kind_case() != Value::kStructValue) {
          return absl::StrCat("batch_file_offer_response: files[", i, "] must be an object");
        }
        Members file(item.struct_value());
        auto* out = r->add_files();
        out->set_relative_path(file.String("relative_path"));
        out->set_catalog_id(file.String("catalog_id"));
        if (!file.error().empty()) {
          return absl::StrCat("batch_file_offer_response: files[", i, "]: ", file.error());
        }
        if (out->relative_path().empty() || out->catalog_id().empty()) {
          return absl::StrCat("batch_file_offer_response: files[", i,
                              "] needs relative_path and catalog_id");
        }
      }
      return "";
    }
    case CommandType::kWebRtc: {
      error = ParseWebRtc(in, m.mutable_webrtc());
      if (!error.empty()) return error;
      if (m.webrtc().request_id().empty()) m.mutable_webrtc()->set_request_id(command.request_id);
      return "";
    }
    case CommandType::kWebRtcReply: {
      error = ParseWebRtc(in, &command.reply);
      if (!error.empty()) return error;
      if (command.request_id.empty()) command.request_id = command.reply.request_id();
      if (command.request_id.empty()) {
        return "webrtc_reply needs the request_id of the pending WebRTCOperations call";
      }
      command.reply.set_request_id(command.request_id);
      return "";
    }
    case CommandType::kDisconnect:
      command.reason = in.String("reason");
      return in.error();
  }
  return "unhandled command type";
}

}  // namespace

std::string CheckJsonDepth(absl::string_view json) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // The escaped character, whatever it is, cannot end the string.
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > kMaxJsonDepth) {
          return absl::StrCat("JSON nested deeper than ", kMaxJsonDepth, " levels (at byte ", i,
                              ")");
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;  // Unbalanced input is the parser's to refuse.
        break;
      default:
        break;
    }
  }
  return "";
}

DecodeResult DecodeCommand(absl::string_view value, size_t max_message_bytes) {
  if (!IsValidUtf8(value)) return Fail(DeadLetterReason::kInvalidJson, "value is not valid UTF-8");
  // Nesting first, in one linear pass: the parser's cost grows faster than
  // the input with depth, and it runs on the one consumer thread.
  if (std::string too_deep = CheckJsonDepth(value); !too_deep.empty()) {
    return Fail(DeadLetterReason::kInvalidJson, std::move(too_deep));
  }

  // One parse, into any JSON value; then it must be an object.
  Value parsed;
  std::string parse_error = ParseJson(value, &parsed);
  if (!parse_error.empty()) {
    return Fail(DeadLetterReason::kInvalidJson, absl::StrCat("not valid JSON: ", parse_error));
  }
  if (parsed.kind_case() != Value::kStructValue) {
    return Fail(DeadLetterReason::kInvalidCommand, "value is JSON but not an object");
  }
  const Struct& object = parsed.struct_value();

  Members in(object);
  std::string type = in.String("type");
  std::string peer_id = in.String("peer_id");
  std::string request_id = in.String("request_id");
  // The peer_id is named in the dead letter whenever it could be read.
  std::string named_peer = ValidatePeerId(peer_id).ok() ? peer_id : "";
  if (!in.error().empty()) return Fail(DeadLetterReason::kInvalidCommand, in.error(), named_peer);
  if (type.empty())
    return Fail(DeadLetterReason::kInvalidCommand, "missing field type", named_peer);
  auto known = CommandTypes().find(type);
  if (known == CommandTypes().end()) {
    return Fail(DeadLetterReason::kUnknownType, absl::StrCat("unknown type \"", type, "\""),
                named_peer);
  }
  if (peer_id.empty()) return Fail(DeadLetterReason::kInvalidCommand, "missing field peer_id");
  if (auto valid = ValidatePeerId(peer_id); !valid.ok()) {
    return Fail(DeadLetterReason::kInvalidCommand, std::string(valid.message()));
  }

  DecodeResult result;
  Command& command = result.command;
  command.type = known->second;
  command.peer_id = peer_id;
  command.request_id = std::move(request_id);
  std::string expires_at = in.String("expires_at");
  if (!in.error().empty()) return Fail(DeadLetterReason::kInvalidCommand, in.error(), peer_id);
  if (!expires_at.empty()) {
    absl::Time at;
    std::string why;
    if (!absl::ParseTime(absl::RFC3339_full, expires_at, &at, &why)) {
      return Fail(DeadLetterReason::kInvalidCommand,
                  absl::StrCat("field expires_at must be an RFC 3339 time: ", why), peer_id);
    }
    command.expires_at = at;
  }
  std::string error = Build(in, command);
  if (!error.empty()) return Fail(DeadLetterReason::kInvalidCommand, error, peer_id);
  size_t size = command.message.ByteSizeLong() + command.reply.ByteSizeLong() + kEnvelopeBytes;
  if (size > max_message_bytes) {
    return Fail(DeadLetterReason::kInvalidCommand,
                absl::StrCat("the command needs ", size, " bytes on the peer stream; at most ",
                             max_message_bytes, " allowed"),
                peer_id);
  }
  return result;
}

}  // namespace edge
