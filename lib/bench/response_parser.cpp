#include "lib/bench/response_parser.h"

#include <charconv>
#include <cstdint>

namespace kvctl::bench {
namespace {

bool StartsWithIgnoreCase(std::string_view line, std::string_view prefix) {
  if (line.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = line[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != prefix[i]) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

ParsedResponse ParseResponse(std::string_view buffer, bool head_request) {
  using Outcome = ParsedResponse::Outcome;
  ParsedResponse r;
  const size_t end = buffer.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (buffer.size() > 64 * 1024) r.outcome = Outcome::kBad;
    return r;
  }
  // "HTTP/1.1 200 OK"
  if (buffer.size() < 12 || buffer.substr(0, 7) != "HTTP/1." || buffer[8] != ' ') {
    r.outcome = Outcome::kBad;
    return r;
  }
  const bool http10 = buffer[7] == '0';
  auto [p, ec] = std::from_chars(buffer.data() + 9, buffer.data() + 12, r.status);
  if (ec != std::errc() || p != buffer.data() + 12) {
    r.outcome = Outcome::kBad;
    return r;
  }
  uint64_t length = 0;
  bool has_length = false;
  bool keep_alive_10 = false;
  std::string_view rest = buffer.substr(0, end);
  size_t at = rest.find("\r\n");
  while (at != std::string_view::npos) {
    const size_t next = rest.find("\r\n", at + 2);
    const std::string_view line = rest.substr(at + 2, next == std::string_view::npos ? rest.npos : next - at - 2);
    at = next;
    if (StartsWithIgnoreCase(line, "content-length:")) {
      const std::string_view v = Trim(line.substr(15));
      auto [q, e] = std::from_chars(v.data(), v.data() + v.size(), length);
      if (e != std::errc() || q != v.data() + v.size()) {
        r.outcome = Outcome::kBad;
        return r;
      }
      has_length = true;
    } else if (StartsWithIgnoreCase(line, "connection:")) {
      const std::string_view v = Trim(line.substr(11));
      if (StartsWithIgnoreCase(v, "close")) r.close = true;
      if (StartsWithIgnoreCase(v, "keep-alive")) keep_alive_10 = true;
    } else if (StartsWithIgnoreCase(line, "transfer-encoding:")) {
      r.outcome = Outcome::kBad;  // chunked: not spoken by this client
      return r;
    }
  }
  if (http10 && !keep_alive_10) r.close = true;
  const bool bodiless = head_request || r.status < 200 || r.status == 204 || r.status == 304;
  if (!bodiless && !has_length) {
    r.outcome = Outcome::kBad;
    return r;
  }
  const size_t total = end + 4 + (bodiless ? 0 : length);
  if (buffer.size() < total) return r;
  r.bytes = total;
  r.outcome = Outcome::kComplete;
  return r;
}

}  // namespace kvctl::bench
