// Identifiers: peer_id validation (contract §2 rows 1-2) and request ids
// the edge generates (unique across edges and restarts, §1 and §4).
#ifndef EDGE_IDS_H_
#define EDGE_IDS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "edge/peer_id.h"  // ValidatePeerId, kMaxPeerIdBytes

namespace edge {

// A random (version 4) UUID, e.g. "6f1c1c3e-4a8b-4c1e-9d53-2b8f0e6d7a10".
std::string NewRequestId();

// Length of the well-formed UTF-8 sequence starting at s[i] (1 for ASCII),
// or 0 when it is malformed, overlong, a surrogate or beyond U+10FFFF.
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// True when `s` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view s);

}  // namespace edge

#endif  // EDGE_IDS_H_
