// The one place where the transport turns an absl status into the gRPC
// status a stream ends with. Canonical codes map one-to-one; the message is
// kept as is. (The etcd backend converts etcd's answers in etcd_client.cc: no
// backend depends on another.)
#ifndef EDGE_GRPC_STATUS_CONVERSION_H_
#define EDGE_GRPC_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace edge::grpc_internal {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace edge::grpc_internal

#endif  // EDGE_GRPC_STATUS_CONVERSION_H_
