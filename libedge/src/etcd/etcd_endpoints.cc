// ParseEtcdEndpoints: the ETCD_ENDPOINTS list of contract §8, the one parser
// of that setting (edged's configuration calls it too).
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "edge/etcd/etcd_tracker.h"
#include "edge/host_port.h"

namespace edge::etcd {
namespace {

std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(absl::string_view list, bool* tls) {
  std::vector<std::string> endpoints;
  size_t secure = 0;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    absl::string_view entry = absl::StripAsciiWhitespace(item);
    absl::string_view endpoint = entry;
    // URL schemes are case-insensitive (RFC 3986 §3.1).
    if (absl::StartsWithIgnoreCase(endpoint, "https://")) {
      endpoint.remove_prefix(8);
      ++secure;
    } else if (absl::StartsWithIgnoreCase(endpoint, "http://")) {
      endpoint.remove_prefix(7);
    }
    absl::ConsumeSuffix(&endpoint, "/");
    std::string problem;
    if (endpoint.empty()) {
      problem = "is empty";
    } else if (absl::StrContains(endpoint, "://")) {
      problem = "has a scheme other than http:// or https://";
    } else if (absl::StatusOr<HostPort> address = ParseHostPort(endpoint, kConnectPort);
               !address.ok()) {
      problem = std::string(address.status().message());
    }
    if (!problem.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("ETCD_ENDPOINTS: endpoint ", Quote(entry), " ",
                                                     problem, " (expected host:port,...)"));
    }
    endpoints.emplace_back(endpoint);
  }
  if (secure != 0 && secure != endpoints.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ETCD_ENDPOINTS: ", Quote(list),
                                                   " mixes https:// with plaintext endpoints; "
                                                   "use https:// for all or none"));
  }
  if (tls != nullptr) *tls = secure != 0;
  return endpoints;
}

}  // namespace edge::etcd
