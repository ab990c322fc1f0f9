#include "support/etcd_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "support/http_client.h"

namespace edge::testing {
namespace {

constexpr int kStartAttempts = 3;

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// One GET /health; true when etcd reports itself healthy.
bool Healthy(int port) {
  absl::StatusOr<HttpResponse> health = HttpRequest(port, "GET", "/health", absl::Seconds(1));
  return health.ok() && absl::StrContains(health->body, "\"health\":\"true\"");
}

}  // namespace

absl::StatusOr<int> PickFreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status status = ErrnoError("bind 127.0.0.1:0");
    close(fd);
    return status;
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

std::string EtcdProcess::BinaryPath() {
  const char* path = std::getenv("EDGE_ETCD_BINARY");
  return path != nullptr && *path != '\0' ? path : "/usr/bin/etcd";
}

bool EtcdProcess::Available() { return access(BinaryPath().c_str(), X_OK) == 0; }

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(absl::Duration timeout) {
  return Start(Options{}, timeout);
}

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(Options options,
                                                                absl::Duration timeout) {
  if (!Available()) {
    return absl::FailedPreconditionError(absl::StrCat("etcd binary not found at ", BinaryPath()));
  }
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::string pattern = (std::filesystem::temp_directory_path() / "edge-etcd-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) return ErrnoError("mkdtemp");
    absl::StatusOr<int> client_port = PickFreeLoopbackPort();
    absl::StatusOr<int> peer_port = PickFreeLoopbackPort();
    if (!client_port.ok()) return client_port.status();
    if (!peer_port.ok()) return peer_port.status();
    int health_port = *client_port;
    if (!options.cert_file.empty()) {
      absl::StatusOr<int> metrics_port = PickFreeLoopbackPort();
      if (!metrics_port.ok()) return metrics_port.status();
      health_port = *metrics_port;
    }
    std::unique_ptr<EtcdProcess> etcd(
        new EtcdProcess(pattern, *client_port, *peer_port, health_port, options));
    last = etcd->Launch();
    if (last.ok()) last = etcd->WaitHealthy(deadline);
    if (last.ok()) return etcd;
    // Most likely a port taken between picking and binding: new ports.
    last =
        absl::Status(last.code(), absl::StrCat(last.message(), "; etcd log:\n", etcd->ReadLog()));
    if (absl::Now() >= deadline) break;
  }
  return last;
}

EtcdProcess::EtcdProcess(std::string dir, int client_port, int peer_port, int health_port,
                         Options options)
    : dir_(std::move(dir)),
      data_dir_(dir_ + "/data"),
      log_path_(dir_ + "/etcd.log"),
      client_port_(client_port),
      peer_port_(peer_port),
      health_port_(health_port),
      options_(std::move(options)) {}

EtcdProcess::~EtcdProcess() {
  Kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string EtcdProcess::endpoint() const { return absl::StrCat("127.0.0.1:", client_port_); }

std::string EtcdProcess::url() const {
  return absl::StrCat(options_.cert_file.empty() ? "http://" : "https://", endpoint());
}

std::string EtcdProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status EtcdProcess::Launch() {
  const std::string client_url = url();
  const std::string peer_url = absl::StrCat("http://127.0.0.1:", peer_port_);
  std::vector<std::string> args = {
      BinaryPath(),
      "--name=edge-test",
      absl::StrCat("--data-dir=", data_dir_),
      absl::StrCat("--listen-client-urls=", client_url),
      absl::StrCat("--advertise-client-urls=", client_url),
      absl::StrCat("--listen-peer-urls=", peer_url),
      absl::StrCat("--initial-advertise-peer-urls=", peer_url),
      absl::StrCat("--initial-cluster=edge-test=", peer_url),
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
  };
  if (!options_.cert_file.empty()) {
    args.push_back(absl::StrCat("--cert-file=", options_.cert_file));
    args.push_back(absl::StrCat("--key-file=", options_.key_file));
    args.push_back(absl::StrCat("--listen-metrics-urls=http://127.0.0.1:", health_port_));
    if (!options_.client_ca_file.empty()) {
      args.push_back("--client-cert-auth");
      args.push_back(absl::StrCat("--trusted-ca-file=", options_.client_ca_file));
    }
  }
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  ChildProcess::Options child;
  child.argv = std::move(args);
  child.output_path = log_path_;
  child.append_output = true;  // A restart's log follows the first run's.
  auto started = ChildProcess::Start(std::move(child));
  if (!started.ok()) return started.status();
  child_ = *std::move(started);
  return absl::OkStatus();
}

absl::Status EtcdProcess::WaitHealthy(absl::Time deadline) {
  while (true) {
    if (Healthy(health_port_)) return absl::OkStatus();
    if (child_->TryReap()) {
      return absl::UnavailableError(absl::StrCat("etcd exited during start (code ",
                                                 child_->exit_code().value_or(-1), ") on ",
                                                 endpoint()));
    }
    if (absl::Now() >= deadline) {
      Kill();
      return absl::DeadlineExceededError(
          absl::StrCat("etcd on ", endpoint(), " not healthy in time"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status EtcdProcess::Stop(absl::Duration timeout) {
  if (!running()) return absl::OkStatus();
  (void)child_->Signal(SIGTERM);  // Fails only when it has just exited.
  if (child_->WaitForExit(timeout).ok()) return absl::OkStatus();
  Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("etcd did not stop within ", absl::FormatDuration(timeout), "; killed"));
}

void EtcdProcess::Kill() {
  if (child_ != nullptr) child_->Kill();
}

absl::Status EtcdProcess::Pause() {
  if (!running()) return absl::FailedPreconditionError("etcd is not running");
  absl::Status signalled = child_->Signal(SIGSTOP);
  if (!signalled.ok()) return signalled;
  // The stop is not immediate: one of etcd's threads must run to start it,
  // and on a loaded machine the others meanwhile go on answering. Paused
  // means every thread stopped.
  const std::string tasks = absl::StrCat("/proc/", child_->pid(), "/task");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (true) {
    bool all_stopped = true;
    std::error_code error;
    for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
      std::ifstream in(task.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // The state follows the command name, which is in parentheses:
      // stopped, or a thread that is exiting.
      size_t end = stat.rfind(')');
      if (end != std::string::npos && end + 2 < stat.size() &&
          std::string_view("TZX").find(stat[end + 2]) == std::string_view::npos) {
        all_stopped = false;
        break;
      }
    }
    if (error)
      return absl::InternalError(absl::StrCat("cannot list ", tasks, ": ", error.message()));
    if (all_stopped) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("etcd did not stop within 10 s of SIGSTOP");
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

absl::Status EtcdProcess::Resume() {
  if (!running()) return absl::FailedPreconditionError("etcd is not running");
  return child_->Signal(SIGCONT);
}

absl::Status EtcdProcess::Restart(absl::Duration timeout) {
  absl::Status stopped = Stop();
  if (!stopped.ok()) return stopped;
  absl::Status launched = Launch();
  if (!launched.ok()) return launched;
  absl::Status healthy = WaitHealthy(absl::Now() + timeout);
  if (!healthy.ok()) {
    return absl::Status(healthy.code(),
                        absl::StrCat(healthy.message(), "; etcd log:\n", ReadLog()));
  }
  return absl::OkStatus();
}

}  // namespace edge::testing
