#include "events.h"

#include <map>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "edge/ids.h"
#include "edge/json_writer.h"
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
  json.Field("peer_id", h.peer_id)
      .Field("edge_id", h.edge_id)
      .Field("timestamp", FormatTimestamp(h.now));
  return json;
}

// `error` (contract §5): the enum's name; a value this edge's protos do not
// name (a newer peer's) as its number, as protobuf's JSON mapping prints it,
// never an empty name.
void ErrorField(JsonWriter& json, int error) {
  if (giggityflix_grpc_peer::CatalogErrorReason_IsValid(error)) {
    json.Field("error", CatalogErrorReason_Name(
                            static_cast<giggityflix_grpc_peer::CatalogErrorReason>(error)));
  } else {
    json.Field("error", static_cast<int64_t>(error));
  }
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
    for (int k = digits - 1; k >= 0; --k, value /= 10)
      buffer[at + k] = static_cast<char>('0' + value % 10);
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

absl::StatusOr<std::vector<std::string>> CatalogUpdateEvents(
    const EventHeader& h, absl::string_view request_id,
    const giggityflix_grpc_peer::CatalogAnnouncementResponse& m, size_t max_bytes) {
  std::string whole = CatalogUpdateEvent(h, request_id, m);
  if (max_bytes == 0 || whole.size() <= max_bytes) return std::vector<std::string>{whole};
  const auto& ids = m.catalog_ids();
  const int64_t n = ids.size();
  // A part without ids, its numbers as wide as they can get.
  std::string empty;
  {
    JsonWriter json = Begin(empty, h);
    json.Field("request_id", request_id).BeginArray("catalog_ids").EndArray();
    json.Field("is_full_update", true).Field("part", n).Field("parts", n).Close();
  }
  const size_t base = empty.size();
  // Greedy, in order: each part takes ids while they fit.
  std::vector<std::pair<int, int>> ranges;
  int begin = 0;
  size_t size = base;
  std::string escaped;
  for (int i = 0; i < n; ++i) {
    escaped.clear();
    AppendJsonString(escaped, ids[i]);
    if (base + escaped.size() > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "catalog id #", i + 1, " takes ", escaped.size(),
          " bytes of JSON: no event record of at most ", max_bytes, " bytes can carry it"));
    }
    const size_t add = escaped.size() + (i > begin ? 1 : 0);
    if (size + add > max_bytes) {
      ranges.emplace_back(begin, i);
      begin = i;
      size = base + escaped.size();
    } else {
      size += add;
    }
  }
  ranges.emplace_back(begin, static_cast<int>(n));
  std::vector<std::string> parts;
  parts.reserve(ranges.size());
  for (size_t k = 0; k < ranges.size(); ++k) {
    std::string out;
    JsonWriter json = Begin(out, h);
    json.Field("request_id", request_id).BeginArray("catalog_ids");
    for (int i = ranges[k].first; i < ranges[k].second; ++i) json.ArrayString(ids[i]);
    json.EndArray().Field("is_full_update", true);
    json.Field("part", static_cast<int64_t>(k + 1))
        .Field("parts", static_cast<int64_t>(ranges.size()))
        .Close();
    parts.push_back(std::move(out));
  }
  return parts;
}

std::string FileDeleteEvent(const EventHeader& h, absl::string_view request_id,
                            const giggityflix_grpc_peer::FileDeleteResponse& m) {
  std::string out;
  JsonWriter json = Begin(out, h);
  json.Field("request_id", request_id)
      .Field("catalog_id", m.catalog_id())
      .Field("success", m.success());
  if (m.has_error()) ErrorField(json, m.error());
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
  if (m.has_error()) ErrorField(json, m.error());
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

bool DeadLetterReduces(const IncomingRecord& original) {
  if (original.value.size() > kReducedOriginalBytes) return true;
  if (original.key.size() > kReducedOriginalBytes) return true;
  size_t header_bytes = 0;
  for (const RecordHeader& h : original.headers) header_bytes += h.key.size() + h.value.size();
  return header_bytes > kReducedHeaderBytes;
}

OutgoingRecord DeadLetterRecord(const std::string& topic, absl::string_view peer_id,
                                absl::string_view edge_id, DeadLetterReason reason,
                                absl::string_view detail, const IncomingRecord& original,
                                absl::Time now, bool reduced) {
  OutgoingRecord record;
  record.topic = topic;
  size_t dropped_headers = 0;
  size_t header_bytes = 0;
  bool key_truncated = false;
  if (!reduced) {
    record.key = original.key;
    record.headers = original.headers;
  } else {
    key_truncated = original.key.size() > kReducedOriginalBytes;
    record.key = original.key.substr(0, kReducedOriginalBytes);
    size_t kept_bytes = 0;
    for (const RecordHeader& h : original.headers) {
      const size_t size = h.key.size() + h.value.size();
      header_bytes += size;
      if (dropped_headers == 0 && kept_bytes + size <= kReducedHeaderBytes) {
        kept_bytes += size;
        record.headers.push_back(h);
      } else {
        ++dropped_headers;
      }
    }
  }
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
  if (dropped_headers > 0) {
    json.Field("original_headers_dropped", static_cast<int64_t>(dropped_headers));
    json.Field("original_headers_size", static_cast<int64_t>(header_bytes));
  }
  if (key_truncated) {
    json.Field("original_key_truncated", true);
    json.Field("original_key_size", static_cast<int64_t>(original.key.size()));
  }
  json.Field("timestamp", FormatTimestamp(now));
  json.Close();
  return record;
}

}  // namespace edge
