#include "core/events.h"

#include <map>

#include "absl/strings/escaping.h"
#include "core/ids.h"
#include "core/json_writer.h"
#include "google/protobuf/util/json_util.h"

namespace edge {
namespace {

using giggityflix_grpc_peer::CatalogErrorReason_Name;

// 10000-01-01T00:00:00Z in Unix milliseconds.
constexpr int64_t kYear10000Millis = 253402300800000;

// Opens the event object with the fields every event has.
JsonWriter Begin(std::string& out, const EventHeader& h) {
  out.reserve(160);
  JsonWriter json(out);
  json.Field("peer_id", h.peer_id).Field("edge_id", h.edge_id).Field("timestamp", FormatTimestamp(h.now));
  return json;
}

const google::protobuf::FieldDescriptor* PayloadField(const google::protobuf::Message& m) {
  const auto* oneof = m.GetDescriptor()->FindOneofByName("payload");
  if (oneof == nullptr) return nullptr;
  return m.GetReflection()->GetOneofFieldDescriptor(m, oneof);
}

}  // namespace

std::string FormatTimestamp(absl::Time t) {
  // Every event carries one or two: formatted by hand for years 1970-9999
  // (absl::FormatTime costs several times more), by absl otherwise.
  const int64_t ms = absl::ToUnixMillis(t);
  if (ms < 0 || ms >= kYear10000Millis) {
    return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
  }
  const int64_t days = ms / 86400000;
  int64_t rest = ms % 86400000;
  const int millis = static_cast<int>(rest % 1000);
  rest /= 1000;
  const int second = static_cast<int>(rest % 60);
  const int minute = static_cast<int>(rest / 60 % 60);
  const int hour = static_cast<int>(rest / 3600);
  // Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil,
  // inverted), for non-negative days.
  const int64_t z = days + 719468;
  const int64_t era = z / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int year = static_cast<int>(yoe + era * 400 + (month <= 2 ? 1 : 0));
  char buffer[24];
  const auto put = [&buffer](int at, int value, int digits) {
    for (int k = digits - 1; k >= 0; --k, value /= 10) buffer[at + k] = static_cast<char>('0' + value % 10);
  };
  put(0, year, 4);
  buffer[4] = '-';
  put(5, month, 2);
  buffer[7] = '-';
  put(8, day, 2);
  buffer[10] = 'T';
  put(11, hour, 2);
  buffer[13] = ':';
  put(14, minute, 2);
  buffer[16] = ':';
  put(17, second, 2);
  buffer[19] = '.';
  put(20, millis, 3);
  buffer[23] = 'Z';
  return std::string(buffer, sizeof(buffer));
}

std::string ConnectedEvent(const EventHeader& h, absl::Time connected_at,
                           std::optional<int64_t> epoch) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("event_type", "connected").BeginArray("catalog_ids").EndArray();
  json.Field("connected_at", FormatTimestamp(connected_at));
  if (epoch.has_value()) json.Field("epoch", *epoch);
  json.Close();
  return out;
}

std::string DisconnectedEvent(const EventHeader& h, absl::string_view reason,
                              absl::Time connected_at, std::optional<int64_t> epoch) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("event_type", "disconnected").Field("reason", reason);
  json.Field("connected_at", FormatTimestamp(connected_at));
  json.Field("duration_ms", static_cast<int64_t>(absl::ToInt64Milliseconds(h.now - connected_at)));
  if (epoch.has_value()) json.Field("epoch", *epoch);
  json.Close();
  return out;
}

std::string CatalogUpdateEvent(const EventHeader& h, absl::string_view request_id,
                               const giggityflix_grpc_peer::CatalogAnnouncementResponse& m) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("request_id", request_id).BeginArray("catalog_ids");
  for (const std::string& id : m.catalog_ids()) json.ArrayString(id);
  json.EndArray().Field("is_full_update", true).Close();
  return out;
}

std::string FileDeleteEvent(const EventHeader& h, absl::string_view request_id,
                            const giggityflix_grpc_peer::FileDeleteResponse& m) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("request_id", request_id).Field("catalog_id", m.catalog_id()).Field("success", m.success());
  if (m.has_error()) json.Field("error", CatalogErrorReason_Name(m.error()));
  json.Close();
  return out;
}

std::string FileHashEvent(const EventHeader& h, absl::string_view request_id,
                          const giggityflix_grpc_peer::FileHashResponse& m) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("request_id", request_id).Field("catalog_id", m.catalog_id());
  json.BeginObject("hashes");
  // Map order is unspecified; sort for stable output.
  std::map<std::string, std::string> sorted(m.hashes().begin(), m.hashes().end());
  for (const auto& [type, value] : sorted) json.Field(type, value);
  json.EndObject().Field("success", m.success());
  if (m.has_error()) json.Field("error", CatalogErrorReason_Name(m.error()));
  json.Close();
  return out;
}

std::string FileOfferEvent(const EventHeader& h, absl::string_view request_id,
                           const giggityflix_grpc_peer::FileOfferRequest& m) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("request_id", request_id).BeginArray("files");
  for (const auto& file : m.files()) {
    json.BeginObject("")
        .Field("relative_path", file.relative_path())
        .Field("size_bytes", static_cast<int64_t>(file.size_bytes()))
        .EndObject();
  }
  json.EndArray().Close();
  return out;
}

std::string WebRtcKind(const google::protobuf::Message& message) {
  const auto* field = PayloadField(message);
  return field == nullptr ? std::string() : std::string(field->name());
}

std::string WebRtcSessionId(const google::protobuf::Message& message) {
  const auto* field = PayloadField(message);
  if (field == nullptr || field->message_type() == nullptr) return "";
  const auto& payload = message.GetReflection()->GetMessage(message, field);
  const auto* session = payload.GetDescriptor()->FindFieldByName("session_id");
  if (session == nullptr) return "";
  return payload.GetReflection()->GetString(payload, session);
}

std::string WebRtcEvent(const EventHeader& h, const google::protobuf::Message& message,
                        WebRtcOrigin origin) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string message_json;
  // Printing a valid in-memory message cannot fail; an empty object is the
  // conservative fallback if it ever did.
  if (!google::protobuf::util::MessageToJsonString(message, &message_json, options).ok()) {
    message_json = "{}";
  }
  const auto* request_id = message.GetDescriptor()->FindFieldByName("request_id");
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("request_id", message.GetReflection()->GetString(message, request_id));
  json.Field("session_id", WebRtcSessionId(message)).Field("kind", WebRtcKind(message));
  json.RawField("message", message_json);
  json.Field("origin", origin == WebRtcOrigin::kCall ? "call" : "stream");
  json.Close();
  return out;
}

absl::string_view DeadLetterReasonName(DeadLetterReason reason) {
  switch (reason) {
    case DeadLetterReason::kInvalidJson: return "invalid_json";
    case DeadLetterReason::kInvalidCommand: return "invalid_command";
    case DeadLetterReason::kUnknownType: return "unknown_type";
    case DeadLetterReason::kPeerNotConnected: return "peer_not_connected";
    case DeadLetterReason::kPeerSlow: return "peer_slow";
    case DeadLetterReason::kPeerWriteFailed: return "peer_write_failed";
    case DeadLetterReason::kExpired: return "expired";
  }
  return "invalid_command";
}

OutgoingRecord DeadLetterRecord(const std::string& topic, absl::string_view peer_id,
                                absl::string_view edge_id, DeadLetterReason reason,
                                absl::string_view detail, const IncomingRecord& original,
                                absl::Time now, bool reduced) {
  OutgoingRecord record;
  record.topic = topic;
  record.key = original.key;
  record.headers = original.headers;
  JsonWriter json(record.value);
  json.Field("peer_id", peer_id).Field("edge_id", edge_id);
  json.Field("reason", DeadLetterReasonName(reason)).Field("detail", detail);
  json.Field("original_topic", original.topic);
  json.Field("original_partition", static_cast<int64_t>(original.partition));
  json.Field("original_offset", original.offset);
  if (reduced && original.value.size() > kReducedOriginalBytes) {
    // Cut at a character boundary; invalid bytes become U+FFFD anyway.
    size_t cut = kReducedOriginalBytes;
    while (cut > 0 && (static_cast<unsigned char>(original.value[cut]) & 0xC0) == 0x80) --cut;
    json.Field("original_message", absl::string_view(original.value).substr(0, cut));
    json.Field("original_message_truncated", true);
    json.Field("original_size", static_cast<int64_t>(original.value.size()));
  } else {
    json.Field("original_message", original.value);
    if (!IsValidUtf8(original.value)) {
      json.Field("original_message_base64", absl::Base64Escape(original.value));
    }
  }
  json.Field("timestamp", FormatTimestamp(now));
  json.Close();
  return record;
}

}  // namespace edge
