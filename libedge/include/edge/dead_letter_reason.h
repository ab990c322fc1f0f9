// The dead-letter reasons of contract §4, shared by the engine (which
// dead-letters) and the metrics backend (which declares one series each).
#ifndef EDGE_DEAD_LETTER_REASON_H_
#define EDGE_DEAD_LETTER_REASON_H_

#include "absl/strings/string_view.h"

namespace edge {

// Dead-letter reasons of contract §4.
enum class DeadLetterReason {
  kInvalidJson,
  kInvalidCommand,
  kUnknownType,
  kPeerNotConnected,
  kPeerSlow,
  kPeerWriteFailed,
  kExpired,
};
absl::string_view DeadLetterReasonName(DeadLetterReason reason);

}  // namespace edge

#endif  // EDGE_DEAD_LETTER_REASON_H_
