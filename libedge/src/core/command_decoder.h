// Decoding backend commands (contract §4) from a Kafka record's value.
//
// Strict: the value must be UTF-8 JSON (RFC 8259: no single quotes, bare
// names, trailing commas, unescaped control characters, unknown escapes),
// nested at most kMaxJsonDepth deep, with no member name twice in one object
// (else invalid_json); an object whose fields have the documented types, with
// the fields each type requires (else invalid_command), and a known `type`
// (else unknown_type). Unknown extra fields are ignored but must be JSON too.
// Numbers are read as doubles (3, 3.0 and 3e0 are the same quantity;
// integers of any length are accepted). The `webrtc` member is read with
// protobuf's JSON mapping of its message type.
//
// The value is parsed with simdjson (one reused parser per thread); until
// then protobuf's JSON parser read it into a google.protobuf.Value, which
// also took most of the non-JSON listed above (and `1.`, and a form feed
// around the value): such values are now invalid_json.
#ifndef EDGE_SRC_CORE_COMMAND_DECODER_H_
#define EDGE_SRC_CORE_COMMAND_DECODER_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "events.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"

namespace edge {

enum class CommandType {
  kFileDelete,
  kFileHash,
  kFileRemap,
  kScreenshot,
  kCatalogAnnouncement,
  kBatchFileOfferResponse,
  kWebRtc,
  kWebRtcReply,
  kDisconnect,
};

struct Command {
  CommandType type;
  std::string peer_id;
  // As sent; may be empty (the router then generates one).
  std::string request_id;
  // For every type pushed to the peer: the payload, request_id and edge_id
  // still unset.
  giggityflix_grpc_peer::EdgeMessage message;
  // kWebRtcReply: the answer to a pending WebRTCOperations call.
  giggityflix_grpc_peer::PeerWebRTCMessage reply;
  // kDisconnect: why, if given.
  std::string reason;
  // `expires_at` (RFC 3339), any type: not delivered after this instant.
  std::optional<absl::Time> expires_at;
};

struct CommandError {
  DeadLetterReason reason;
  std::string detail;
  std::string peer_id;  // when it could be read
};

struct DecodeResult {
  bool ok() const { return !error.has_value(); }
  Command command;
  std::optional<CommandError> error;
};

// Arrays and objects nested deeper than this make a value invalid_json
// (contract §4 commands need 4 levels; the bound keeps decoding linear in the
// value's size whatever an ignored extra field holds).
inline constexpr size_t kMaxJsonDepth = 32;

// "" when no array or object in `json` is nested deeper than kMaxJsonDepth,
// else a detail naming the depth and the byte where it was passed. One pass,
// no allocation; strings are skipped.
std::string CheckJsonDepth(absl::string_view json);

// `max_message_bytes`: a command whose EdgeMessage would exceed it is
// invalid (the peer could not receive it).
DecodeResult DecodeCommand(absl::string_view value, size_t max_message_bytes);

}  // namespace edge

#endif  // EDGE_SRC_CORE_COMMAND_DECODER_H_
