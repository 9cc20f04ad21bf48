#include "cmd/kvctl/replay_output.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/output.h"
#include "lib/core/base64.h"
#include "lib/core/utf8.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

// Length of the valid multi-byte UTF-8 sequence at the start of `s`, or 0.
size_t Utf8SequenceLength(std::string_view s) {
  const auto lead = static_cast<unsigned char>(s[0]);
  size_t n = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
  if (n == 0 || n > s.size()) return 0;
  return core::IsValidUtf8(s.substr(0, n)) ? n : 0;
}

}  // namespace

std::string QuoteBytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 2);
  out += '"';
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      if (size_t n = Utf8SequenceLength(bytes.substr(i)); n > 0) {
        out.append(bytes.substr(i, n));
        i += n;
        continue;
      }
      out += fmt::format("\\x{:02x}", c);
    } else if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string EventText(const core::LogRecord& r) {
  if (r.type == core::RecordType::kDelete) return fmt::format("{} DELETE {}\n", r.revision, QuoteBytes(r.key));
  return fmt::format("{} PUT {} {}\n", r.revision, QuoteBytes(r.key), QuoteBytes(r.value));
}

std::string EventJson(const core::LogRecord& r, bool from_snapshot) {
  json j{{"revision", r.revision}, {"op", r.type == core::RecordType::kPut ? "put" : "delete"}};
  SetJsonKey(j, r.key);
  if (r.type == core::RecordType::kPut) j["value"] = core::Base64Encode(r.value);
  j["snapshot"] = from_snapshot;
  return JsonLine(j);
}

std::string StateText(std::string_view key, std::string_view value, uint64_t revision) {
  return fmt::format("{} {} {}\n", revision, QuoteBytes(key), QuoteBytes(value));
}

std::string StateJson(std::string_view key, std::string_view value, uint64_t revision) {
  json j{{"revision", revision}};
  SetJsonKey(j, key);
  j["value"] = core::Base64Encode(value);
  return JsonLine(j);
}

}  // namespace kvctl::cmd
