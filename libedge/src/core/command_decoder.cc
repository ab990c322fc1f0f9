#include "command_decoder.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "edge/ids.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/type.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace edge {
namespace {

namespace gp = giggityflix_grpc_peer;

constexpr int kMaxScreenshots = 100;
// request_id, edge_id and framing added to the payload on the wire.
constexpr size_t kEnvelopeBytes = 512;
constexpr char kTypeUrlPrefix[] = "type.googleapis.com";
// A value up to this size is parsed by the thread's reused parser, which
// keeps buffers of ~15 bytes per byte of the largest value it has seen; a
// larger one gets a parser of its own, freed after it.
constexpr size_t kReusedParserMaxBytes = 64 * 1024;

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

// Typed, strict access to the members of a JSON object (whose member names
// are unique: see RepeatedName). The first type error is kept in `error`;
// absent and null members read as empty.
class Members {
 public:
  explicit Members(simdjson::dom::object object) : object_(object) {}

  const std::string& error() const { return error_; }

  std::string String(const char* name) {
    simdjson::dom::element v;
    if (!Find(name, &v)) return "";
    std::string_view s;
    if (v.get_string().get(s) != simdjson::SUCCESS) return Wrong(name, "a string"), "";
    return std::string(s);
  }

  bool StringArray(const char* name, google::protobuf::RepeatedPtrField<std::string>* out) {
    simdjson::dom::element v;
    if (!Find(name, &v)) return true;
    simdjson::dom::array array;
    if (v.get_array().get(array) != simdjson::SUCCESS) {
      return Wrong(name, "an array of strings"), false;
    }
    for (simdjson::dom::element item : array) {
      std::string_view s;
      if (item.get_string().get(s) != simdjson::SUCCESS) {
        return Wrong(name, "an array of strings"), false;
      }
      out->Add(std::string(s));
    }
    return true;
  }

  // An integer; `fallback` when absent. JSON numbers are read as doubles
  // (whatever their spelling: 3, 3.0 and 3e0 are the same integer).
  std::optional<int64_t> Integer(const char* name, int64_t fallback) {
    simdjson::dom::element v;
    if (!Find(name, &v)) return fallback;
    double d = NAN;
    if (v.get_double().get(d) != simdjson::SUCCESS) d = NAN;
    if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > 1e15) {
      Wrong(name, "an integer");
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }

  // True with `out` set when the member is an array; false when it is absent
  // or (then `error` says so) of another type.
  bool List(const char* name, simdjson::dom::array* out) {
    simdjson::dom::element v;
    if (!Find(name, &v)) return false;
    if (v.get_array().get(*out) != simdjson::SUCCESS) return Wrong(name, "an array"), false;
    return true;
  }

  bool Object(const char* name, simdjson::dom::element* out) {
    if (!Find(name, out)) return false;
    if (!out->is_object()) return Wrong(name, "an object"), false;
    return true;
  }

 private:
  // The member called `name`, unless it is null.
  bool Find(const char* name, simdjson::dom::element* out) const {
    const std::string_view wanted(name);
    for (simdjson::dom::key_value_pair field : object_) {
      if (field.key == wanted) {
        *out = field.value;
        return !out->is_null();
      }
    }
    return false;
  }

  void Wrong(const char* name, const char* expected) {
    if (error_.empty()) error_ = absl::StrCat("field ", name, " must be ", expected);
  }

  simdjson::dom::object object_;
  std::string error_;
};

// The first member name that appears twice in one object within `value`.
// protobuf's parser, which read commands before, refused such values (a
// `google.protobuf.Struct` is a map), and the contract leaves them without a
// meaning: they stay invalid_json.
std::optional<std::string> RepeatedName(simdjson::dom::element value) {
  switch (value.type()) {
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object object = value.get_object().value_unsafe();
      constexpr size_t kSearchedInPlace = 16;
      if (object.size() <= kSearchedInPlace) {
        std::string_view names[kSearchedInPlace];
        size_t n = 0;
        for (simdjson::dom::key_value_pair field : object) {
          for (size_t i = 0; i < n; ++i) {
            if (names[i] == field.key) return std::string(field.key);
          }
          names[n++] = field.key;
        }
      } else {
        absl::flat_hash_set<std::string_view> names;
        for (simdjson::dom::key_value_pair field : object) {
          if (!names.insert(field.key).second) return std::string(field.key);
        }
      }
      for (simdjson::dom::key_value_pair field : object) {
        if (auto name = RepeatedName(field.value)) return name;
      }
      return std::nullopt;
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array array = value.get_array().value_unsafe();
      for (simdjson::dom::element item : array) {
        if (auto name = RepeatedName(item)) return name;
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// JSON (and protobuf's parser before) takes an integer of any length, read
// as the nearest double; simdjson refuses one beyond 64 bits. `json` with
// each integer of 19 digits or more written with a ".0" (read as the same
// double), or nullopt when it has none.
std::optional<std::string> WidenLongIntegers(absl::string_view json) {
  constexpr size_t kLongDigits = 19;
  std::string out;
  size_t copied = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && !absl::ascii_isdigit(c)) continue;
    // A number token: -?digits, then maybe a fraction or an exponent.
    size_t end = i + (c == '-' ? 1 : 0);
    size_t digits_start = end;
    while (end < json.size() && absl::ascii_isdigit(json[end])) ++end;
    const size_t digits = end - digits_start;
    const bool integer =
        end == json.size() || (json[end] != '.' && json[end] != 'e' && json[end] != 'E');
    if (digits >= kLongDigits && integer) {
      out.append(json.data() + copied, end - copied);
      out.append(".0");
      copied = end;
    }
    while (end < json.size() &&
           (absl::ascii_isdigit(json[end]) || json[end] == '.' || json[end] == 'e' ||
            json[end] == 'E' || json[end] == '+' || json[end] == '-')) {
      ++end;
    }
    i = end - 1;
  }
  if (copied == 0) return std::nullopt;
  out.append(json.data() + copied, json.size() - copied);
  return out;
}

void AppendJsonString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[(c >> 4) & 0xF]);
      out->push_back(kHex[c & 0xF]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// Writes `value` as JSON text for protobuf's parser, as a
// `google.protobuf.Struct` holding it would have been written (the webrtc
// member used to be read into one, then written out): numbers are doubles,
// so 1e2 reads as 100 and an integer beyond 2^53 is rounded.
void AppendJson(simdjson::dom::element value, std::string* out) {
  switch (value.type()) {
    case simdjson::dom::element_type::OBJECT: {
      simdjson::dom::object object = value.get_object().value_unsafe();
      out->push_back('{');
      bool first = true;
      for (simdjson::dom::key_value_pair field : object) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(field.key, out);
        out->push_back(':');
        AppendJson(field.value, out);
      }
      out->push_back('}');
      return;
    }
    case simdjson::dom::element_type::ARRAY: {
      simdjson::dom::array array = value.get_array().value_unsafe();
      out->push_back('[');
      bool first = true;
      for (simdjson::dom::element item : array) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(item, out);
      }
      out->push_back(']');
      return;
    }
    case simdjson::dom::element_type::STRING:
      AppendJsonString(value.get_string().value_unsafe(), out);
      return;
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE: {
      char buffer[32];
      auto [end, ec] =
          std::to_chars(buffer, buffer + sizeof(buffer), value.get_double().value_unsafe());
      out->append(buffer, ec == std::errc() ? end : buffer);
      return;
    }
    case simdjson::dom::element_type::BOOL:
      out->append(value.get_bool().value_unsafe() ? "true" : "false");
      return;
    case simdjson::dom::element_type::NULL_VALUE:
      out->append("null");
      return;
  }
}

// Parses the `webrtc` member into `out` (an Edge- or PeerWebRTCMessage):
// strictly, since unknown fields inside a protobuf message are typos.
std::string ParseWebRtc(Members& members, google::protobuf::Message* out) {
  simdjson::dom::element object;
  bool present = members.Object("webrtc", &object);
  if (!members.error().empty()) return members.error();
  if (!present) return "field webrtc must be an object (a WebRTC message in protobuf JSON)";
  std::string text;
  AppendJson(object, &text);
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
      simdjson::dom::array files;
      bool present = in.List("files", &files);
      if (!in.error().empty()) return in.error();
      if (!present) return "";
      int i = -1;
      for (simdjson::dom::element item : files) {
        ++i;
        simdjson::dom::object object;
        if (item.get_object().get(object) != simdjson::SUCCESS) {
          return absl::StrCat("batch_file_offer_response: files[", i, "] must be an object");
        }
        Members file(object);
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
  if (!simdjson::validate_utf8(value.data(), value.size())) {
    return Fail(DeadLetterReason::kInvalidJson, "value is not valid UTF-8");
  }
  // Nesting first, in one linear pass, so the refusal names the depth and
  // the byte whatever else is wrong further on (contract limit, kMaxJsonDepth).
  if (std::string too_deep = CheckJsonDepth(value); !too_deep.empty()) {
    return Fail(DeadLetterReason::kInvalidJson, std::move(too_deep));
  }

  // One validating parse of the whole value (ignored members included); then
  // it must be an object. The parser keeps its buffers for the next command
  // of this thread, unless the value was large.
  thread_local simdjson::dom::parser reused_parser;
  std::optional<simdjson::dom::parser> large_parser;
  simdjson::dom::parser* parser = &reused_parser;
  if (value.size() > kReusedParserMaxBytes) parser = &large_parser.emplace();
  // The value is copied into the parser's padded buffer (simdjson reads a
  // few bytes past the end; a Kafka record's value carries no such padding).
  simdjson::dom::element root;
  simdjson::error_code parse_error = parser->parse(value.data(), value.size()).get(root);
  if (parse_error == simdjson::NUMBER_ERROR) {
    if (std::optional<std::string> widened = WidenLongIntegers(value)) {
      if (parser->parse(*widened).get(root) == simdjson::SUCCESS) parse_error = simdjson::SUCCESS;
    }
  }
  if (parse_error != simdjson::SUCCESS) {
    return Fail(DeadLetterReason::kInvalidJson,
                absl::StrCat("not valid JSON: ", simdjson::error_message(parse_error)));
  }
  if (std::optional<std::string> name = RepeatedName(root)) {
    return Fail(DeadLetterReason::kInvalidJson,
                absl::StrCat("not valid JSON: member name \"", absl::CHexEscape(*name),
                             "\" appears twice in one object"));
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    return Fail(DeadLetterReason::kInvalidCommand, "value is JSON but not an object");
  }

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
