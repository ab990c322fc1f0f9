// Shared helpers of the GrpcPeerTransport tests.
#ifndef EDGE_TESTS_GRPC_GRPC_TEST_UTIL_H_
#define EDGE_TESTS_GRPC_GRPC_TEST_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "edge/peer_transport.h"

namespace edge::testing {

inline PeerMessage NumberedPeerMessage(int i) {
  PeerMessage message;
  message.set_request_id(absl::StrCat("peer-", i));
  message.mutable_catalog_announcement()->add_catalog_ids(absl::StrCat("catalog-", i));
  return message;
}

inline EdgeMessage NumberedEdgeMessage(int i, size_t padding = 0) {
  EdgeMessage message;
  message.set_request_id(absl::StrCat("edge-", i));
  message.set_edge_id(std::string(padding, 'x'));
  message.mutable_catalog_announcement_request();
  return message;
}

// The serving status grpc.health.v1.Health/Check reports for `service`:
// 1 SERVING, 2 NOT_SERVING; an error when the call fails.
absl::StatusOr<int> HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                                const std::string& service);

}  // namespace edge::testing

#endif  // EDGE_TESTS_GRPC_GRPC_TEST_UTIL_H_
