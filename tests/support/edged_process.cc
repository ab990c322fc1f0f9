#include "support/edged_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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
#error \
    "EDGE_EDGED_BINARY must name the edged binary (set by tests/support/CMakeLists.txt)"
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
  for (absl::string_view marker :
       {absl::string_view("\"grpc\":\""), absl::string_view("grpc=")}) {
    size_t at = line.find(marker);
    if (at == absl::string_view::npos) continue;
    absl::string_view rest = line.substr(at + marker.size());
    rest = rest.substr(0, rest.find_first_of("\" \n"));
    size_t colon = rest.rfind(':');
    int port = 0;
    if (colon != absl::string_view::npos &&
        absl::SimpleAtoi(rest.substr(colon + 1), &port)) {
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
    : options_(std::move(options)),
      dir_(std::move(dir)),
      log_path_(dir_ + "/edged.log") {}

EdgedProcess::~EdgedProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

absl::StatusOr<std::unique_ptr<EdgedProcess>> EdgedProcess::Launch(
    Options options) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "edged-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp");
  std::unique_ptr<EdgedProcess> process(
      new EdgedProcess(std::move(options), pattern));
  if (absl::Status spawned = process->Spawn(); !spawned.ok()) return spawned;
  return process;
}

absl::StatusOr<std::unique_ptr<EdgedProcess>> EdgedProcess::Start(
    Options options) {
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
  if (grpc_port_ != 0)
    env["GRPC_SERVER_ADDRESS"] = absl::StrCat("127.0.0.1:", grpc_port_);

  std::string binary = BinaryPath();
  if (access(binary.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("edged binary not executable: ", binary));
  }
  std::vector<std::string> env_strings;
  for (const auto& [name, value] : env)
    env_strings.push_back(absl::StrCat(name, "=", value));
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<char*> argv = {binary.data(), nullptr};

  int log =
      open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return ErrnoError(absl::StrCat("open ", log_path_));
  std::error_code size_error;
  auto size = std::filesystem::file_size(log_path_, size_error);
  log_offset_ = size_error ? 0 : static_cast<size_t>(size);

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    // The test process may block signals in its threads; edged must start
    // with a clean mask (it blocks what it waits for itself).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(log);
  pid_ = pid;
  exit_code_ = -1;
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
    if (TryReap()) {
      return absl::UnavailableError(
          absl::StrCat("edged exited with code ", exit_code_,
                       " before listening; its log:\n", ReadLog()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "edged did not log \"edged listening\" in time; its log:\n",
          ReadLog()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

bool EdgedProcess::TryReap() {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == 0) return false;
  if (done == pid_) {
    exit_code_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                 : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                       : -1;
  }
  pid_ = -1;
  return true;
}

absl::Status EdgedProcess::Signal(int signo) {
  if (TryReap()) return absl::FailedPreconditionError("edged is not running");
  if (kill(pid_, signo) != 0) return ErrnoError("kill");
  return absl::OkStatus();
}

absl::StatusOr<int> EdgedProcess::WaitForExit(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!TryReap()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "edged still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (exit_code_ < 0)
    return absl::InternalError("edged's exit status is unknown");
  return exit_code_;
}

absl::Status EdgedProcess::Restart() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    absl::StatusOr<int> exited = WaitForExit(absl::Seconds(30));
    if (!exited.ok()) return exited.status();
  }
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
    if (listening.ok() || pid_ > 0 || absl::Now() >= deadline) return listening;
    absl::SleepFor(absl::Milliseconds(100));
  }
}

std::string EdgedProcess::grpc_address() const {
  return absl::StrCat("127.0.0.1:", grpc_port_);
}

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
