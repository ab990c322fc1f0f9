// ValidatePeerId: the syntax of a peer_id (contract §2 rows 1-2), which is
// also the syntax of an edge id (EDGE_ID): 1 to 128 bytes of
// [A-Za-z0-9._:@-]. The one check of both; the core, the etcd tracker and
// edged's configuration all use it.
//
//   if (absl::Status s = edge::ValidatePeerId(id, "EDGE_ID"); !s.ok()) ...
#ifndef EDGE_PEER_ID_H_
#define EDGE_PEER_ID_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace edge {

inline constexpr size_t kMaxPeerIdBytes = 128;

// OK, or INVALID_ARGUMENT saying what is wrong. `what` names the value in
// the message ("peer_id", "EDGE_ID").
absl::Status ValidatePeerId(absl::string_view id, absl::string_view what = "peer_id");

}  // namespace edge

#endif  // EDGE_PEER_ID_H_
