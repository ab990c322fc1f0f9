// The one place where the transport turns an absl status into the gRPC
// status a stream ends with. Canonical codes map one-to-one; the message is
// kept as is. (The etcd backend converts etcd's answers in etcd_client.cc: no
// backend depends on another.)
#ifndef EDGE_SRC_GRPC_STATUS_CONVERSION_H_
#define EDGE_SRC_GRPC_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace edge::grpc_transport::internal {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_STATUS_CONVERSION_H_
