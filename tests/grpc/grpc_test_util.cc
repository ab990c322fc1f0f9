#include "grpc/grpc_test_util.h"

#include <grpcpp/generic/generic_stub.h>

#include <chrono>
#include <vector>

#include "absl/synchronization/notification.h"

namespace edge::testing {

// grpc.health.v1 messages encoded by hand (no generated code for them here):
// HealthCheckRequest{string service = 1}, HealthCheckResponse{enum status = 1}.
absl::StatusOr<int> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service) {
  std::string request_bytes;
  if (!service.empty()) {
    if (service.size() > 127) return absl::InvalidArgumentError("service name too long");
    request_bytes.push_back('\x0a');
    request_bytes.push_back(static_cast<char>(service.size()));
    request_bytes += service;
  }
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the response");
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  if (bytes.empty()) return 0;  // UNKNOWN, the default value.
  if (bytes.size() != 2 || bytes[0] != '\x08') {
    return absl::InternalError("unexpected HealthCheckResponse encoding");
  }
  return static_cast<int>(bytes[1]);
}

}  // namespace edge::testing
