// One line per event on stderr, as text or JSON (log.format), filtered by
// level (log.level). Thread-safe. Never pass secrets or values as fields.
#pragma once

#include <initializer_list>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kvctl::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

// One field of a log line. Numbers are written as JSON numbers in the JSON
// format, so log processors can compare and sum them without parsing text.
struct LogField {
  LogField(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  template <typename T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>, int> = 0>
  LogField(std::string_view k, T v) : key(k), value(std::to_string(v)), number(true) {}
  // A number already written as text ("12.345"), kept as a number in JSON.
  static LogField Number(std::string_view k, std::string text) {
    LogField f(k, std::move(text));
    f.number = true;
    return f;
  }

  std::string_view key;
  std::string value;
  bool number = false;
};

class Logger {
 public:
  Logger(LogLevel level = LogLevel::kInfo, LogFormat format = LogFormat::kText)
      : level_(level), format_(format) {}

  void Log(LogLevel level, std::string_view message, std::span<const LogField> fields);
  void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {}) {
    Log(level, message, std::span<const LogField>(fields.begin(), fields.size()));
  }
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
