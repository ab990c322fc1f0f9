// A minimal HTTP/1.1 client over loopback for the metrics endpoint tests:
// one request per connection ("Connection: close"), the whole response read
// until the server closes.
#ifndef EDGE_TESTS_METRICS_HTTP_CLIENT_H_
#define EDGE_TESTS_METRICS_HTTP_CLIENT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edge::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;  // the header lines, as received
  std::string body;
};

// Sends `method path` to 127.0.0.1:`port`; fails on a connection error, a
// timeout (10 s) or a malformed response.
absl::StatusOr<HttpResponse> HttpRequest(int port, absl::string_view method,
                                         absl::string_view path);

// The value of the sample `series` (name and labels exactly as exposed,
// e.g. `edge_admissions_total{result="ok"}`) in a text exposition.
std::optional<double> SampleValue(absl::string_view exposition, absl::string_view series);

}  // namespace edge::testing

#endif  // EDGE_TESTS_METRICS_HTTP_CLIENT_H_
