#include "etcd_gateway.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "simdjson.h"

namespace edge::etcd::internal {
namespace {

// A keepalive's answer is a few hundred bytes; more is not etcd's.
constexpr size_t kMaxBody = 64 * 1024;
// How long an endpoint without a gateway is left alone.
constexpr absl::Duration kAbsentFor = absl::Minutes(1);

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t Collect(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t n = size * count;
  if (body->size() + n > kMaxBody) return 0;  // Fails the transfer.
  body->append(data, n);
  return n;
}

grpc::StatusCode CodeOf(int64_t code) {
  return code > 0 && code <= 16 ? static_cast<grpc::StatusCode>(code) : grpc::StatusCode::UNKNOWN;
}

// An int64 as proto3's JSON mapping writes it: a string, or a number.
bool Int64Of(simdjson::dom::element v, int64_t* out) {
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) {
    return absl::SimpleAtoi(absl::string_view(s.data(), s.size()), out);
  }
  return v.get_int64().get(*out) == simdjson::SUCCESS;
}

// A string member, if `v` is one; `*out` unchanged otherwise.
void StringOf(simdjson::dom::element v, std::string_view* out) {
  std::string_view s;
  if (v.get_string().get(s) == simdjson::SUCCESS) *out = s;
}

}  // namespace

EtcdGatewayKeepalive::EtcdGatewayKeepalive(const std::string& address, EtcdGatewayTls tls)
    : url_(absl::StrCat(tls.enabled ? "https://" : "http://", address, "/v3/lease/keepalive")),
      tls_(std::move(tls)) {
  GlobalInit();
}

EtcdGatewayKeepalive::~EtcdGatewayKeepalive() {
  absl::MutexLock lock(&mu_);
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

bool EtcdGatewayKeepalive::Pause(absl::Duration how_long) {
  absl::MutexLock lock(&mu_);
  paused_until_ = std::max(paused_until_, absl::Now() + how_long);
  return !std::exchange(paused_before_, true);
}

grpc::Status EtcdGatewayKeepalive::ParseAnswer(long http_status, const std::string& body,
                                               int64_t* ttl) {
  // A streamed answer is one JSON object per line; one request, one answer.
  const std::string first = body.substr(0, body.find('\n'));
  simdjson::dom::parser parser;
  simdjson::dom::object answer;
  if (parser.parse(first).get_object().get(answer) != simdjson::SUCCESS) {
    if (http_status == 404) {
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "etcd has no HTTP gateway here");
    }
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("etcd gateway answered HTTP ", http_status,
                                     " without a keepalive answer: ", first.substr(0, 200)));
  }
  simdjson::dom::element result;
  if (answer["result"].get(result) == simdjson::SUCCESS) {
    simdjson::dom::element v;
    int64_t value = 0;  // proto3 leaves a zero TTL out: the lease is gone.
    if (result["TTL"].get(v) == simdjson::SUCCESS && !Int64Of(v, &value)) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "etcd gateway answered an unreadable TTL");
    }
    *ttl = value;
    return grpc::Status::OK;
  }
  // Errors: {"error":{"grpc_code":N,"message":...}} inside a stream, or
  // {"error":"...","message":"...","code":N} before one.
  int64_t code = 0;
  std::string_view message = "etcd gateway error";
  simdjson::dom::element error;
  if (answer["error"].get(error) == simdjson::SUCCESS) {
    simdjson::dom::object nested;
    if (error.get_object().get(nested) == simdjson::SUCCESS) {
      simdjson::dom::element v;
      if (nested["grpc_code"].get(v) == simdjson::SUCCESS) Int64Of(v, &code);
      if (nested["message"].get(v) == simdjson::SUCCESS) StringOf(v, &message);
    }
  }
  simdjson::dom::element v;
  if (code == 0 && answer["code"].get(v) == simdjson::SUCCESS) Int64Of(v, &code);
  if (answer["message"].get(v) == simdjson::SUCCESS) StringOf(v, &message);
  if (code == 0) {
    return grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("etcd gateway answered HTTP ", http_status, ": ", first.substr(0, 200)));
  }
  return grpc::Status(CodeOf(code), std::string(message));
}

grpc::Status EtcdGatewayKeepalive::KeepAlive(int64_t lease_id, const std::string& token,
                                             absl::Time deadline, int64_t* ttl) {
  absl::MutexLock lock(&mu_);
  if (absl::Now() < paused_until_) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "etcd gateway not used for now");
  }
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed");
  }
  if (curl_ == nullptr) curl_ = curl_easy_init();
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "cannot create an HTTP client");
  }
  curl_easy_reset(curl);  // Keeps the open connection; clears the options.
  const std::string request = absl::StrCat("{\"ID\":\"", lease_id, "\"}");
  std::string body;
  struct curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!token.empty()) {
    headers = curl_slist_append(headers, absl::StrCat("Grpc-Metadata-Token: ", token).c_str());
  }
  const long timeout_ms = std::max<long>(1, absl::ToInt64Milliseconds(left));
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");  // Never through an HTTP proxy.
  if (tls_.enabled) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!tls_.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, tls_.ca_file.c_str());
    if (!tls_.cert_file.empty()) {
      curl_easy_setopt(curl, CURLOPT_SSLCERT, tls_.cert_file.c_str());
      curl_easy_setopt(curl, CURLOPT_SSLKEY, tls_.key_file.c_str());
    }
  }
  const CURLcode done = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (done == CURLE_OPERATION_TIMEDOUT) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        absl::StrCat("etcd gateway: ", curl_easy_strerror(done)));
  }
  if (done != CURLE_OK) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        absl::StrCat("etcd gateway: ", curl_easy_strerror(done)));
  }
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  grpc::Status answer = ParseAnswer(http_status, body, ttl);
  if (answer.error_code() == grpc::StatusCode::UNIMPLEMENTED)
    paused_until_ = absl::Now() + kAbsentFor;
  return answer;
}

}  // namespace edge::etcd::internal
