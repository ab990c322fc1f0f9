// ParseEtcdEndpoints: the ETCD_ENDPOINTS list of contract §8.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "edge/etcd/etcd_tracker.h"

namespace edge::etcd {

absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(
    absl::string_view list, bool* tls) {
  std::vector<std::string> endpoints;
  size_t secure = 0;
  for (absl::string_view item : absl::StrSplit(list, ',')) {
    absl::string_view endpoint = absl::StripAsciiWhitespace(item);
    if (endpoint.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ETCD_ENDPOINTS: empty endpoint in \"", list, "\""));
    }
    if (absl::StartsWithIgnoreCase(endpoint, "https://")) {
      endpoint.remove_prefix(8);
      ++secure;
    } else if (absl::StartsWithIgnoreCase(endpoint, "http://")) {
      endpoint.remove_prefix(7);
    }
    absl::ConsumeSuffix(&endpoint, "/");
    size_t colon = endpoint.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("ETCD_ENDPOINTS: \"", endpoint, "\" is not host:port"));
    }
    absl::string_view host = endpoint.substr(0, colon);
    if (absl::StrContains(host, ':') &&
        !(absl::StartsWith(host, "[") && absl::EndsWith(host, "]"))) {
      return absl::InvalidArgumentError(
          absl::StrCat("ETCD_ENDPOINTS: \"", endpoint,
                       "\": an IPv6 address must be in brackets"));
    }
    int port = 0;
    if (!absl::SimpleAtoi(endpoint.substr(colon + 1), &port) || port < 1 ||
        port > 65535) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ETCD_ENDPOINTS: \"", endpoint, "\" has no valid port (1-65535)"));
    }
    endpoints.emplace_back(endpoint);
  }
  if (secure != 0 && secure != endpoints.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ETCD_ENDPOINTS: \"", list,
        "\" mixes https:// with plaintext endpoints; use one for all"));
  }
  if (tls != nullptr) *tls = secure != 0;
  return endpoints;
}

}  // namespace edge::etcd
