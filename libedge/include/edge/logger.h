// Logger: leveled, structured log lines as text or JSON, one line each.
//
// Injected into every part (no global logger). Thread-safe: each line is
// formatted off-lock and written with a single write(2).
//
//   edge::Logger log(edge::LogLevel::kInfo, edge::LogFormat::kJson);
//   log.Info("peer admitted", {{"peer_id", id}, {"epoch", "7"}});
// prints {"ts":"2026-11-24T05:00:00.123Z","level":"info","msg":"peer
// admitted","peer_id":"p1","epoch":"7"}
#ifndef EDGE_LOGGER_H_
#define EDGE_LOGGER_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace edge {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };
enum class LogFormat { kText, kJson };

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name);
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);

class Logger {
 public:
  using Field = std::pair<absl::string_view, absl::string_view>;
  using Fields = std::initializer_list<Field>;

  // Writes to file descriptor `fd` (stderr by default).
  explicit Logger(LogLevel level = LogLevel::kInfo, LogFormat format = LogFormat::kText,
                  int fd = 2);
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  bool Enabled(LogLevel level) const { return level >= level_; }
  void Log(LogLevel level, absl::string_view message, Fields fields = {});

  void Debug(absl::string_view m, Fields f = {}) { Log(LogLevel::kDebug, m, f); }
  void Info(absl::string_view m, Fields f = {}) { Log(LogLevel::kInfo, m, f); }
  void Warn(absl::string_view m, Fields f = {}) { Log(LogLevel::kWarn, m, f); }
  void Error(absl::string_view m, Fields f = {}) { Log(LogLevel::kError, m, f); }

  // A logger that writes nothing, for tests and embedders that don't care.
  static Logger& Null();

 private:
  const LogLevel level_;
  const LogFormat format_;
  const int fd_;
};

}  // namespace edge

#endif  // EDGE_LOGGER_H_
