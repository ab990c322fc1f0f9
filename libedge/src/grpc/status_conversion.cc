#include "status_conversion.h"

#include <string>

namespace edge::grpc_transport::internal {

// Both enums use the canonical code numbers 0..16 (google.rpc.Code); a code
// outside that range becomes UNKNOWN, as gRPC itself treats it.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  int code = static_cast<int>(status.code());
  if (code < 0 || code > static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code), std::string(status.message()));
}

}  // namespace edge::grpc_transport::internal
