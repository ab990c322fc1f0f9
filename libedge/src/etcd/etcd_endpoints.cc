// ParseEtcdEndpoints: the ETCD_ENDPOINTS list of contract §8, the one parser
// of that setting (edged's configuration calls it too).
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "edge/etcd_tracker.h"

namespace edge {
namespace {

std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

// What is wrong with `host` (a name, an IPv4 address or a bracketed IPv6
// address), or "" when nothing is.
std::string HostProblem(absl::string_view host) {
  if (host.empty()) return "has an empty host";
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') {
      return "has an unterminated or empty [IPv6] host";
    }
    for (char c : host.substr(1, host.size() - 2)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' &&
          c != '.') {
        return "has an invalid [IPv6] host";
      }
    }
    return "";
  }
  if (absl::StrContains(host, ':')) {
    return "has an IPv6 address that is not in brackets ([::1]:2379)";
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != '_') {
      return "has a host that is not a name or an address";
    }
  }
  return "";
}

// What is wrong with `port`, or "" when it is 1 to 65535 in digits only
// (SimpleAtoi alone would take spaces and a '+').
std::string PortProblem(absl::string_view port) {
  int number = 0;
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) {
    digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
  }
  if (!digits || !absl::SimpleAtoi(port, &number) || number < 1 ||
      number > 65535) {
    return absl::StrCat("has port ", Quote(port),
                        ", not a number in [1, 65535]");
  }
  return "";
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(
    absl::string_view list, bool* tls) {
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
    size_t colon = endpoint.rfind(':');
    if (endpoint.empty()) {
      problem = "is empty";
    } else if (absl::StrContains(endpoint, "://")) {
      problem = "has a scheme other than http:// or https://";
    } else if (colon == absl::string_view::npos ||
               endpoint.back() == ']') {
      problem = "has no :port";
    } else {
      problem = PortProblem(endpoint.substr(colon + 1));
      if (problem.empty()) problem = HostProblem(endpoint.substr(0, colon));
    }
    if (!problem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ETCD_ENDPOINTS: endpoint ", Quote(entry), " ", problem,
                       " (expected host:port,...)"));
    }
    endpoints.emplace_back(endpoint);
  }
  if (secure != 0 && secure != endpoints.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ETCD_ENDPOINTS: ", Quote(list),
                     " mixes https:// with plaintext endpoints; "
                     "use https:// for all or none"));
  }
  if (tls != nullptr) *tls = secure != 0;
  return endpoints;
}

}  // namespace edge
