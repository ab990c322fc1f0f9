// edged: the Giggityflix edge service. Configuration comes from the
// environment (docs/configuration.md); signals steer it:
//   SIGTERM, SIGINT  graceful shutdown (contract §7), exit 0
//   SIGUSR1          drain: stop admitting, end streams at DRAIN_RATE_PER_SEC
//   SIGHUP           re-read the TLS certificate and key
// Exit codes: 0 after a clean shutdown, 1 when a part fails to start,
// 2 for an invalid configuration.
#include <malloc.h>

#include <csignal>
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "config.h"
#include "edge/logger.h"
#include "service.h"

namespace {

int Run() {
  // Debian's abseil is built without NDEBUG: its mutex deadlock detection
  // costs a third of the throughput. Tests keep it; the service does not.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // glibc raises its mmap threshold after each large free, so buffers of
  // commands and events (up to a few MB) then come from arenas it keeps:
  // after a slow peer's 16 MiB queue was dead-lettered, ~60 MiB stayed
  // resident. A fixed threshold maps them, and gives them back when freed.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  // Signals are taken synchronously by this thread alone: block them before
  // any other thread exists, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<edge::EdgedConfig> config = edge::ConfigFromEnvironment();
  if (!config.ok()) {
    std::fprintf(stderr, "edged: invalid configuration:\n%s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  edge::Logger logger(config->log_level, config->log_format);
  auto service = edge::EdgedService::Create(*config, &logger);
  if (!service.ok()) {
    logger.Error("edged cannot start", {{"status", service.status().ToString()}});
    return absl::IsInvalidArgument(service.status()) ? 2 : 1;
  }
  if (absl::Status started = (*service)->Start(); !started.ok()) {
    logger.Error("edged cannot start", {{"status", started.ToString()}});
    (*service)->Shutdown();
    return 1;
  }
  while (true) {
    int signal = 0;
    if (sigwait(&signals, &signal) != 0) continue;
    if (signal == SIGUSR1) {
      (*service)->Drain();
    } else if (signal == SIGHUP) {
      absl::Status reloaded = (*service)->ReloadCredentials();
      if (reloaded.ok()) {
        logger.Info("TLS credentials reloaded");
      } else {
        logger.Error("TLS credentials not reloaded", {{"status", reloaded.ToString()}});
      }
    } else {
      logger.Info("signal received; shutting down", {{"signal", strsignal(signal)}});
      break;
    }
  }
  (*service)->Shutdown();
  return 0;
}

}  // namespace

int main() { return Run(); }
