// A minimal HTTP/1.1 client over loopback for tests of HTTP endpoints (the
// metrics endpoint, etcd's /health): one request per connection
// ("Connection: close"), the whole response read until the server closes.
//
//   auto response = edge::testing::HttpRequest(port, "GET", "/metrics");
//   ASSERT_TRUE(response.ok()) << response.status();
//   EXPECT_EQ(response->status, 200);
#ifndef EDGE_TESTS_SUPPORT_HTTP_CLIENT_H_
#define EDGE_TESTS_SUPPORT_HTTP_CLIENT_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace edge::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;  // the header lines, as received
  std::string body;
};

// Sends `method path` to 127.0.0.1:`port`; fails on a connection error, a
// send or receive that waits longer than `timeout`, or a malformed response.
absl::StatusOr<HttpResponse> HttpRequest(int port, absl::string_view method, absl::string_view path,
                                         absl::Duration timeout = absl::Seconds(10));

// The same, with extra request headers (name, value).
absl::StatusOr<HttpResponse> HttpRequestWithHeaders(
    int port, absl::string_view method, absl::string_view path,
    const std::vector<std::pair<std::string, std::string>>& headers,
    absl::Duration timeout = absl::Seconds(10));

// The value of the sample `series` (name and labels exactly as exposed,
// e.g. `edge_admissions_total{result="ok"}`) in a text exposition.
std::optional<double> SampleValue(absl::string_view exposition, absl::string_view series);

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_HTTP_CLIENT_H_
