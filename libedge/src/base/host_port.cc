#include "edge/host_port.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace edge {

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address, PortRule rule) {
  size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || address.back() == ']') {
    return absl::InvalidArgumentError("has no :port");
  }
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  const int min_port = rule == kListenPort ? 0 : 1;
  int number = 0;
  // Digits only: SimpleAtoi alone would take spaces and a '+'.
  bool digits = !port.empty() && port.size() <= 5;
  for (char c : port) digits = digits && absl::ascii_isdigit(static_cast<unsigned char>(c));
  if (!digits || !absl::SimpleAtoi(port, &number) || number < min_port || number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("has port \"", absl::CHexEscape(port),
                                                   "\", not a number in [", min_port, ", 65535]"));
  }
  if (host.empty()) return absl::InvalidArgumentError("has an empty host");
  if (host.front() == '[') {
    if (host.size() < 4 || host.back() != ']') {
      return absl::InvalidArgumentError("has an unterminated or empty [IPv6] host");
    }
    host = host.substr(1, host.size() - 2);
    for (char c : host) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return absl::InvalidArgumentError("has an invalid [IPv6] host");
      }
    }
    return HostPort{std::string(host), number};
  }
  if (absl::StrContains(host, ':')) {
    return absl::InvalidArgumentError("has an IPv6 address that is not in brackets ([::1]:port)");
  }
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') {
      return absl::InvalidArgumentError("has a host that is not a name or an address");
    }
  }
  return HostPort{std::string(host), number};
}

}  // namespace edge
