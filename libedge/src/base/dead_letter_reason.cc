#include "edge/dead_letter_reason.h"

namespace edge {

absl::string_view DeadLetterReasonName(DeadLetterReason reason) {
  switch (reason) {
    case DeadLetterReason::kInvalidJson:
      return "invalid_json";
    case DeadLetterReason::kInvalidCommand:
      return "invalid_command";
    case DeadLetterReason::kUnknownType:
      return "unknown_type";
    case DeadLetterReason::kPeerNotConnected:
      return "peer_not_connected";
    case DeadLetterReason::kPeerSlow:
      return "peer_slow";
    case DeadLetterReason::kPeerWriteFailed:
      return "peer_write_failed";
    case DeadLetterReason::kExpired:
      return "expired";
  }
  return "invalid_command";
}

}  // namespace edge
