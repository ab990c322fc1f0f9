// ParseHostPort: the one rule for the `host:port` settings of contract §8
// (GRPC_SERVER_ADDRESS, METRICS_ADDRESS, KAFKA_BOOTSTRAP_SERVERS,
// ETCD_ENDPOINTS) and for the addresses libedge's servers are given.
//
// The host is a name or IPv4 address ([A-Za-z0-9._-]) or an IPv6 address in
// brackets (`[::1]`); the port is decimal digits only (no sign or spaces),
// 1..65535, or 0..65535 for an address to listen on (0: the system chooses).
// Anything else is INVALID_ARGUMENT whose message says what is wrong, worded
// to follow the address in the caller's own message:
//
//   absl::StatusOr<edge::HostPort> a = edge::ParseHostPort(text, edge::kConnectPort);
//   if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat(
//       "ETCD_ENDPOINTS: \"", text, "\" ", a.status().message()));
#ifndef EDGE_HOST_PORT_H_
#define EDGE_HOST_PORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edge {

struct HostPort {
  std::string host;  // An IPv6 address without its brackets.
  int port = 0;
};

// Whether port 0 is accepted.
enum PortRule { kConnectPort, kListenPort };

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address, PortRule rule);

}  // namespace edge

#endif  // EDGE_HOST_PORT_H_
