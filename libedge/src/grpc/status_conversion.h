// The one place where absl and gRPC statuses meet. Canonical codes map
// one-to-one; the message is kept as is.
#ifndef EDGE_GRPC_STATUS_CONVERSION_H_
#define EDGE_GRPC_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace edge::grpc_internal {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status ToAbslStatus(const grpc::Status& status);

}  // namespace edge::grpc_internal

#endif  // EDGE_GRPC_STATUS_CONVERSION_H_
