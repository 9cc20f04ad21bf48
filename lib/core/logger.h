// One line per event on stderr, as text or JSON (log.format), filtered by
// level (log.level). Thread-safe. Never pass secrets or values as fields.
#pragma once

#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace kvctl::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

using LogField = std::pair<std::string_view, std::string>;

class Logger {
 public:
  Logger(LogLevel level = LogLevel::kInfo, LogFormat format = LogFormat::kText)
      : level_(level), format_(format) {}

  void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});
  void Debug(std::string_view m, std::initializer_list<LogField> f = {}) { Log(LogLevel::kDebug, m, f); }
  void Info(std::string_view m, std::initializer_list<LogField> f = {}) { Log(LogLevel::kInfo, m, f); }
  void Warn(std::string_view m, std::initializer_list<LogField> f = {}) { Log(LogLevel::kWarn, m, f); }
  void Error(std::string_view m, std::initializer_list<LogField> f = {}) { Log(LogLevel::kError, m, f); }
  bool Enabled(LogLevel level) const { return level >= level_; }

 private:
  LogLevel level_;
  LogFormat format_;
  std::mutex mu_;
};

// A logger that drops everything, for tests and tools that want quiet.
Logger& NullLogger();

}  // namespace kvctl::core
