#include "lib/server/request_log.h"

#include <algorithm>
#include <random>
#include <vector>

#include <fmt/format.h>

namespace kvctl::server {
namespace {

constexpr size_t kMaxRequestIdBytes = 128;

bool UsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

}  // namespace

std::string RequestIdFor(std::optional<std::string_view> given) {
  if (given && UsableRequestId(*given)) return std::string(*given);
  thread_local std::mt19937_64 random{std::random_device{}()};
  // 16 hex digits, by hand rather than through fmt: this runs for every request.
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t bits = random();
  std::string id(16, '0');
  for (size_t i = 16; i-- > 0; bits >>= 4) id[i] = kHex[bits & 0xf];
  return id;
}

namespace {

void Write(core::Logger& logger, core::LogLevel level, const RequestEvent& e) {
  if (!logger.Enabled(level)) return;
  std::vector<core::LogField> fields;
  fields.reserve(12);
  fields.emplace_back("method", std::string(e.method));
  fields.emplace_back("route", std::string(e.route));
  fields.emplace_back("status", e.status);
  fields.emplace_back("bytes_in", e.bytes_in);
  fields.emplace_back("bytes_out", e.bytes_out);
  // Microsecond resolution, as a decimal number of milliseconds.
  const double ms = static_cast<double>(e.duration.count() / 1000) / 1000.0;
  fields.push_back(core::LogField::Number("duration_ms", fmt::format("{:.3f}", ms)));
  fields.emplace_back("request_id", std::string(e.request_id));
  fields.emplace_back("remote", std::string(e.remote));
  if (!e.identity.empty()) fields.emplace_back("identity", std::string(e.identity));
  if (!e.error_code.empty()) fields.emplace_back("error", std::string(e.error_code));
  if (!e.cause.empty()) fields.emplace_back("cause", std::string(e.cause));
  logger.Log(level, "request", fields);
}

}  // namespace

void LogRequest(const RequestLog& log, const RequestEvent& e) {
  if (!log.Wants(e.status, e.duration)) return;
  const core::LogLevel level = e.status >= 500      ? core::LogLevel::kError
                               : log.IsSlow(e.duration) ? core::LogLevel::kWarn
                                                        : core::LogLevel::kInfo;
  Write(log.logger(), level, e);
}

}  // namespace kvctl::server
