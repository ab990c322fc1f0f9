#include "support/edged_process.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

#ifndef EDGE_EDGED_BINARY
#error "EDGE_EDGED_BINARY must name the edged binary (set by tests/support/CMakeLists.txt)"
#endif

namespace edge::testing {
namespace {

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// The port in edged's "edged listening" line, in the JSON format
// (`"grpc":"host:port"`) or the text one (`grpc=host:port`); 0 if absent.
int ListeningPort(absl::string_view line) {
  if (!absl::StrContains(line, "edged listening")) return 0;
  for (absl::string_view marker : {absl::string_view("\"grpc\":\""), absl::string_view("grpc=")}) {
    size_t at = line.find(marker);
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(at + marker.size());
    rest = rest.substr(0, rest.find_first_of("\" \n"));
    size_t colon = rest.rfind(':');
    int port = 0;
    if (colon != absl::string_view::npos && absl::SimpleAtoi(rest.substr(colon + 1), &port)) {
      return port;
    }
  }
  return 0;
}

}  // namespace

std::string EdgedProcess::BinaryPath() {
  const char* configured = std::getenv("EDGE_EDGED_BINARY");
  if (configured != nullptr && configured[0] != '\0') return configured;
  return EDGE_EDGED_BINARY;
}

EdgedProcess::EdgedProcess(Options options, std::string dir)
    : options_(std::move(options)), dir_(std::move(dir)), log_path_(dir_ + "/edged.log") {}

EdgedProcess::~EdgedProcess() {
  child_.reset();  // SIGKILL if still running.
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::unique_ptr<EdgedProcess>> EdgedProcess::Launch(Options options) {
  std::string pattern = (std::filesystem::temp_directory_path() / "edged-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp");
  std::unique_ptr<EdgedProcess> process(new EdgedProcess(std::move(options), pattern));
  if (absl::Status spawned = process->Spawn(); !spawned.ok()) return spawned;
  return process;
}

absl::StatusOr<std::unique_ptr<EdgedProcess>> EdgedProcess::Start(Options options) {
  absl::Duration timeout = options.start_timeout;
  auto process = Launch(std::move(options));
  if (!process.ok()) return process.status();
  absl::Status listening = (*process)->WaitListening(absl::Now() + timeout);
  if (!listening.ok()) return listening;
  return process;
}

absl::Status EdgedProcess::Spawn() {
  std::map<std::string, std::string> env = {
      {"GRPC_SERVER_ADDRESS", "127.0.0.1:0"},
      {"METRICS_ADDRESS", ""},
      {"LOG_FORMAT", "json"},
      {"LOG_LEVEL", "info"},
  };
  for (const auto& [name, value] : options_.env) env[name] = value;
  // A restart keeps the port the first run was given.
  if (grpc_port_ != 0) env["GRPC_SERVER_ADDRESS"] = absl::StrCat("127.0.0.1:", grpc_port_);

  std::string binary = BinaryPath();
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("edged binary not executable: ", binary));
  }
  std::error_code size_error;
  auto size = std::filesystem::file_size(log_path_, size_error);
  log_offset_ = size_error ? 0 : static_cast<size_t>(size);

  ChildProcess::Options child;
  child.argv = {binary};
  child.env = std::move(env);
  child.output_path = log_path_;
  child.append_output = true;
  auto started = ChildProcess::Start(std::move(child));
  if (!started.ok()) return started.status();
  child_ = *std::move(started);
  return absl::OkStatus();
}

absl::Status EdgedProcess::WaitListening(absl::Time deadline) {
  while (true) {
    std::string log = ReadLog();
    std::istringstream lines(log.substr(std::min(log_offset_, log.size())));
    for (std::string line; std::getline(lines, line);) {
      if (int port = ListeningPort(line); port != 0) {
        grpc_port_ = port;
        return absl::OkStatus();
      }
    }
    if (child_->TryReap()) {
      return absl::UnavailableError(absl::StrCat("edged exited with code ",
                                                 child_->exit_code().value_or(-1),
                                                 " before listening; its log:\n", ReadLog()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("edged did not log \"edged listening\" in time; its log:\n", ReadLog()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::Status EdgedProcess::Signal(int signo) {
  if (child_ == nullptr) return absl::FailedPreconditionError("edged is not running");
  return child_->Signal(signo);
}

absl::StatusOr<int> EdgedProcess::WaitForExit(absl::Duration timeout) {
  if (child_ == nullptr) return absl::FailedPreconditionError("edged was never started");
  absl::StatusOr<int> exited = child_->WaitForExit(timeout);
  if (!exited.ok()) return exited.status();
  if (*exited < 0) return absl::InternalError("edged's exit status is unknown");
  return *exited;
}

absl::Status EdgedProcess::Restart() {
  if (child_ != nullptr) child_->Kill();
  {
    std::ofstream log(log_path_, std::ios::app);
    log << "---- edged restarted by the test ----\n";
  }
  absl::Time deadline = absl::Now() + options_.start_timeout;
  // The old process's port is free at once (gRPC sets SO_REUSEADDR), but a
  // start can still race another process for it: retry while time is left.
  while (true) {
    if (absl::Status spawned = Spawn(); !spawned.ok()) return spawned;
    absl::Status listening = WaitListening(deadline);
    if (listening.ok() || running() || absl::Now() >= deadline) return listening;
    absl::SleepFor(absl::Milliseconds(100));
  }
}

std::string EdgedProcess::grpc_address() const { return absl::StrCat("127.0.0.1:", grpc_port_); }

std::string EdgedProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int EdgedProcess::CountLogLines(const std::string& text) const {
  int count = 0;
  for (absl::string_view line : absl::StrSplit(ReadLog(), '\n')) {
    if (absl::StrContains(line, text)) ++count;
  }
  return count;
}

}  // namespace edge::testing
