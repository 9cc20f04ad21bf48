#include "lib/core/logger.h"

#include <chrono>
#include <cstdio>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "lib/core/json_string.h"

namespace kvctl::core {
namespace {

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

// Text values are quoted when they would otherwise be ambiguous to split.
void AppendTextValue(std::string* out, std::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=\t\n") == std::string_view::npos) {
    out->append(s);
  } else {
    AppendJsonString(s, out);
  }
}

}  // namespace

void Logger::Log(LogLevel level, std::string_view message, std::span<const LogField> fields) {
  if (!Enabled(level)) return;
  const auto now = std::chrono::floor<std::chrono::milliseconds>(std::chrono::system_clock::now());
  const std::string time = fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", now);
  std::string line;
  if (format_ == LogFormat::kJson) {
    line = fmt::format("{{\"time\":\"{}\",\"level\":\"{}\",\"msg\":", time, LevelName(level));
    AppendJsonString(message, &line);
    for (const LogField& f : fields) {
      line.push_back(',');
      AppendJsonString(f.key, &line);
      line.push_back(':');
      if (f.number) {
        line.append(f.value);
      } else {
        AppendJsonString(f.value, &line);
      }
    }
    line.push_back('}');
  } else {
    line = fmt::format("{} {:<5} {}", time, LevelName(level), message);
    for (const LogField& f : fields) {
      line.push_back(' ');
      line.append(f.key);
      line.push_back('=');
      AppendTextValue(&line, f.value);
    }
  }
  line.push_back('\n');
  std::lock_guard lock(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

Logger& NullLogger() {
  static Logger logger(static_cast<LogLevel>(99));
  return logger;
}

}  // namespace kvctl::core
