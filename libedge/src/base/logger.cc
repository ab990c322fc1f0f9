#include "edge/logger.h"

#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "edge/json_writer.h"

namespace edge {
namespace {

constexpr absl::string_view kLevelNames[] = {"debug", "info", "warn", "error", "off"};

void WriteAll(int fd, const std::string& line) {
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // Nowhere left to report a failing log sink.
    written += static_cast<size_t>(n);
  }
}

// Text values are written bare only when they are printable ASCII without
// spaces, quotes or '='; anything else is quoted as a JSON string, which
// escapes control bytes and replaces invalid UTF-8 with U+FFFD. So lines
// stay machine-splittable as key=value, and a value from a peer (a peer_id,
// a status message) cannot forge a line or send escape sequences to a
// terminal.
void AppendTextValue(std::string& out, absl::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f || c == '"' || c == '=' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.append(value.data(), value.size());
  } else {
    AppendJsonString(out, value);
  }
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(absl::string_view name) {
  for (int i = 0; i <= static_cast<int>(LogLevel::kOff); ++i) {
    if (name == kLevelNames[i]) return static_cast<LogLevel>(i);
  }
  if (name == "warning") return LogLevel::kWarn;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown log level '", name, "' (debug, info, warn, error, off)"));
}

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat("unknown log format '", name, "' (text, json)"));
}

Logger::Logger(LogLevel level, LogFormat format, int fd)
    : level_(level), format_(format), fd_(fd) {}

Logger& Logger::Null() {
  static Logger* null = new Logger(LogLevel::kOff);
  return *null;
}

void Logger::Log(LogLevel level, absl::string_view message, Fields fields) {
  if (!Enabled(level) || level == LogLevel::kOff) return;
  std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  absl::string_view level_name = kLevelNames[static_cast<int>(level)];
  std::string line;
  line.reserve(128);
  if (format_ == LogFormat::kJson) {
    JsonWriter json(line);
    json.Field("ts", ts);
    json.Field("level", level_name);
    json.Field("msg", message);
    for (const Field& f : fields) json.Field(f.first, f.second);
    json.Close();
  } else {
    absl::StrAppend(&line, ts, " ", level_name, " ", message);
    for (const Field& f : fields) {
      absl::StrAppend(&line, " ", f.first, "=");
      AppendTextValue(line, f.second);
    }
  }
  line.push_back('\n');
  WriteAll(fd_, line);
}

}  // namespace edge
