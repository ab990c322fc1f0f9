// The one place where absl and gRPC statuses meet. Canonical codes map
// one-to-one; the message is kept as is.
#ifndef EDGE_SRC_GRPC_STATUS_CONVERSION_H_
#define EDGE_SRC_GRPC_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace edge::grpc_transport::internal {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status ToAbslStatus(const grpc::Status& status);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_STATUS_CONVERSION_H_
