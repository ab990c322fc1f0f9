#include "command_sink.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "edge/kafka/kafka_message_bus.h"

namespace edge::loadgen {
namespace {

class KafkaCommandSink final : public CommandSink {
 public:
  KafkaCommandSink(std::unique_ptr<kafka::KafkaMessageBus> bus, std::string topic)
      : bus_(std::move(bus)),
        topic_(std::move(topic)),
        failures_(std::make_shared<std::atomic<int64_t>>(0)) {}
  ~KafkaCommandSink() override { bus_->Shutdown(absl::Now() + absl::Seconds(10)); }

  void Send(const std::string& peer_id, std::string json) override {
    bus_->Publish({topic_, peer_id, std::move(json), {}},
                  [failures = failures_](absl::Status status) {
                    if (!status.ok()) failures->fetch_add(1, std::memory_order_relaxed);
                  });
  }
  void Flush() override {}
  int64_t failures() const override { return failures_->load(std::memory_order_relaxed); }

 private:
  const std::unique_ptr<kafka::KafkaMessageBus> bus_;
  const std::string topic_;
  const std::shared_ptr<std::atomic<int64_t>> failures_;
};

class FeedCommandSink final : public CommandSink {
 public:
  explicit FeedCommandSink(int fd) : fd_(fd) {}
  ~FeedCommandSink() override {
    Flush();
    close(fd_);
  }

  void Send(const std::string& peer_id, std::string json) override {
    absl::StrAppend(&buffer_, peer_id, std::string(1, kFeedSeparator), json, "\n");
    ++pending_;
    if (buffer_.size() > 64 * 1024) Flush();
  }
  void Flush() override {
    size_t written = 0;
    while (written < buffer_.size()) {
      ssize_t n = write(fd_, buffer_.data() + written, buffer_.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        failures_ += pending_;
        break;
      }
      written += static_cast<size_t>(n);
    }
    buffer_.clear();
    pending_ = 0;
  }
  int64_t failures() const override { return failures_; }

 private:
  const int fd_;
  std::string buffer_;
  int64_t pending_ = 0;
  int64_t failures_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CommandSink>> NewKafkaCommandSink(
    const std::string& bootstrap_servers, const std::string& topic) {
  kafka::KafkaMessageBusOptions options;
  options.bootstrap_servers = bootstrap_servers;
  options.client_id = "edge-loadgen";
  // Commands go out as soon as they are made: their latency is measured
  // from that moment.
  options.properties = {{"linger.ms", "0"}};
  options.capacity = 1000000;
  auto bus = kafka::KafkaMessageBus::Create(std::move(options));
  if (!bus.ok()) return bus.status();
  if (absl::Status started = (*bus)->Start(); !started.ok()) return started;
  return std::unique_ptr<CommandSink>(new KafkaCommandSink(*std::move(bus), topic));
}

absl::StatusOr<std::unique_ptr<CommandSink>> NewFeedCommandSink(const std::string& address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("feed address \"", address, "\": want host:port"));
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("feed address \"", address, "\": bad IPv4 host"));
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect ", address, ": ", strerror(error)));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::unique_ptr<CommandSink>(new FeedCommandSink(fd));
}

}  // namespace edge::loadgen
