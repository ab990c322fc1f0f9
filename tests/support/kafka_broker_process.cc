#include "support/kafka_broker_process.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#ifndef EDGE_KAFKA_BROKER_BINARY
#error "EDGE_KAFKA_BROKER_BINARY must name edge_kafka_broker (tests/support/CMakeLists.txt)"
#endif

namespace edge::testing {

std::string KafkaBrokerProcess::BinaryPath() {
  const char* configured = std::getenv("EDGE_KAFKA_BROKER_BINARY");
  if (configured != nullptr && configured[0] != '\0') return configured;
  return EDGE_KAFKA_BROKER_BINARY;
}

absl::StatusOr<std::unique_ptr<KafkaBrokerProcess>> KafkaBrokerProcess::Start(
    const std::vector<std::pair<std::string, int>>& topics, absl::Duration timeout) {
  std::string dir = (std::filesystem::temp_directory_path() / "kafka-broker-XXXXXX").string();
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  std::vector<std::string> argv = {BinaryPath()};
  for (const auto& [name, partitions] : topics) {
    argv.push_back(absl::StrCat(name, ":", partitions));
  }
  auto child = ChildProcess::Start(std::move(argv), dir + "/broker.log");
  if (!child.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return child.status();
  }
  // The address line ends with a newline: wait for the whole line.
  const std::string kMarker = "bootstrap=";
  std::string address;
  bool printed = (*child)->WaitForOutput("\n", timeout);
  std::string output = (*child)->Output();
  size_t at = output.find(kMarker);
  if (printed && at != std::string::npos) {
    size_t end = output.find('\n', at);
    if (end != std::string::npos) {
      address = output.substr(at + kMarker.size(), end - at - kMarker.size());
    }
  }
  if (address.empty()) {
    (*child)->Kill();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
    return absl::UnavailableError(
        absl::StrCat("edge_kafka_broker printed no bootstrap address: ", output));
  }
  return std::unique_ptr<KafkaBrokerProcess>(
      new KafkaBrokerProcess(std::move(dir), std::move(*child), std::move(address)));
}

KafkaBrokerProcess::~KafkaBrokerProcess() {
  if (child_->running() && child_->Signal(SIGTERM).ok()) {
    (void)child_->WaitForExit(absl::Seconds(10));
  }
  child_->Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace edge::testing
