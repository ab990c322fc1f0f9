#include "support/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::testing {
namespace {

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// A wait status as a shell reports it: the exit code, or 128 + the signal.
int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(std::vector<std::string> argv,
                                                                  std::string output_path) {
  Options options;
  options.argv = std::move(argv);
  options.output_path = std::move(output_path);
  return Start(std::move(options));
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(Options options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("no program to run");
  // Everything the child needs is prepared before fork: between fork and
  // exec only async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (std::string& arg : options.argv) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  if (options.env.has_value()) {
    for (const auto& [name, value] : *options.env)
      env_strings.push_back(absl::StrCat(name, "=", value));
    for (std::string& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);
  }
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (options.append_output ? O_APPEND : O_TRUNC);
  int out = open(options.output_path.c_str(), flags, 0644);
  if (out < 0) return ErrnoError(absl::StrCat("open ", options.output_path));

  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(out);
    return ErrnoError("fork");
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out, STDOUT_FILENO);
    dup2(out, STDERR_FILENO);
    // The test may block signals in its threads; the program starts clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (options.env.has_value()) {
      execve(argv[0], argv.data(), envp.data());
    } else {
      execv(argv[0], argv.data());
    }
    _exit(127);
  }
  close(out);
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, std::move(options.output_path)));
}

ChildProcess::~ChildProcess() { Kill(); }

bool ChildProcess::TryReap() {
  if (exit_code_.has_value()) return true;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == 0) return false;
  // done < 0: not our child any more (ECHILD), gone with its status unknown.
  exit_code_ = done == pid_ ? ExitCode(status) : -1;
  return true;
}

absl::Status ChildProcess::Signal(int signo) {
  if (TryReap()) {
    return absl::FailedPreconditionError(absl::StrCat("process ", pid_, " has exited"));
  }
  if (kill(pid_, signo) != 0) return ErrnoError("kill");
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::WaitForExit(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!TryReap()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));  // waitpid has no timeout
  }
  return *exit_code_;
}

void ChildProcess::Kill() {
  if (TryReap()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  exit_code_ = waitpid(pid_, &status, 0) == pid_ ? ExitCode(status) : -1;
}

std::string ChildProcess::Output() const {
  std::ifstream in(output_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool ChildProcess::WaitForOutput(const std::string& text, absl::Duration timeout) const {
  absl::Time deadline = absl::Now() + timeout;
  while (Output().find(text) == std::string::npos) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));  // a file: no event to wait on
  }
  return true;
}

}  // namespace edge::testing
