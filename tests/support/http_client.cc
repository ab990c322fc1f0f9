#include "support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace edge::testing {

absl::StatusOr<HttpResponse> HttpRequest(int port, absl::string_view method, absl::string_view path,
                                         absl::Duration timeout) {
  return HttpRequestWithHeaders(port, method, path, {}, timeout);
}

absl::StatusOr<HttpResponse> HttpRequestWithHeaders(
    int port, absl::string_view method, absl::string_view path,
    const std::vector<std::pair<std::string, std::string>>& headers, absl::Duration timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  timeval wait = absl::ToTimeval(timeout);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, sizeof(wait));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int error = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("connect to port ", port, ": ", std::strerror(error)));
  }
  std::string request = absl::StrCat(method, " ", path,
                                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&request, name, ": ", value, "\r\n");
  request += "\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      int error = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("send: ", std::strerror(error)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buffer[16384];
  while (true) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      int error = errno;
      close(fd);
      return absl::DeadlineExceededError(absl::StrCat("recv: ", std::strerror(error)));
    }
    raw.append(buffer, static_cast<size_t>(n));
  }
  close(fd);

  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    return absl::DataLossError(absl::StrCat("no end of headers in: ", raw));
  }
  HttpResponse response;
  size_t line_end = raw.find("\r\n");
  std::vector<absl::string_view> status_line =
      absl::StrSplit(absl::string_view(raw).substr(0, line_end), absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/1.") ||
      !absl::SimpleAtoi(status_line[1], &response.status)) {
    return absl::DataLossError(absl::StrCat("bad status line in: ", raw));
  }
  response.headers = raw.substr(line_end + 2, header_end - line_end - 2);
  response.body = raw.substr(header_end + 4);
  return response;
}

std::optional<double> SampleValue(absl::string_view exposition, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (!absl::ConsumePrefix(&line, series) || !absl::ConsumePrefix(&line, " ")) continue;
    double value = 0;
    // A timestamp may follow the value.
    absl::string_view number = line.substr(0, line.find(' '));
    if (absl::SimpleAtod(number, &value)) return value;
  }
  return std::nullopt;
}

}  // namespace edge::testing
