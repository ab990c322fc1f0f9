// What the tracker reads back from etcd about other edges, checked before
// use: whoever can write etcd must not be able to steer this edge (an edge
// id becomes part of a Kafka topic name when a command is forwarded).
#ifndef EDGE_SRC_ETCD_ETCD_HOLDER_H_
#define EDGE_SRC_ETCD_ETCD_HOLDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edge::etcd::internal {

// OK when `edge_id` follows the EDGE_ID rules (1 to 128 bytes of
// [A-Za-z0-9._:@-]); otherwise DATA_LOSS naming the bad value (escaped).
absl::Status CheckEdgeId(absl::string_view edge_id);

// The `address` of an edge's registration (`{"edge_id":..,"address":..}`);
// DATA_LOSS when the value is not such JSON.
absl::StatusOr<std::string> RegisteredAddress(absl::string_view registration);

}  // namespace edge::etcd::internal

#endif  // EDGE_SRC_ETCD_ETCD_HOLDER_H_
