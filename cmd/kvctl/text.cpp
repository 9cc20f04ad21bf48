#include "cmd/kvctl/text.h"

#include <fmt/format.h>

#include "lib/core/utf8.h"

namespace kvctl::cmd {
namespace {

// Length of the valid multi-byte UTF-8 sequence at the start of `s`, or 0.
size_t Utf8SequenceLength(std::string_view s) {
  const auto lead = static_cast<unsigned char>(s[0]);
  size_t n = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
  if (n == 0 || n > s.size()) return 0;
  return core::IsValidUtf8(s.substr(0, n)) ? n : 0;
}

// U+0080..U+009F, encoded C2 80..C2 9F: C1 controls, which some terminals
// obey as escape sequences (U+009B is CSI).
bool IsC1Control(std::string_view s) {
  return s.size() >= 2 && static_cast<unsigned char>(s[0]) == 0xc2 && static_cast<unsigned char>(s[1]) <= 0x9f;
}

}  // namespace

std::string QuoteBytes(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 2);
  out += '"';
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      if (size_t n = Utf8SequenceLength(bytes.substr(i)); n > 0 && !IsC1Control(bytes.substr(i))) {
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

size_t FirstUnprintable(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(bytes.substr(i));
      if (n == 0 || IsC1Control(bytes.substr(i))) return i;
      i += n;
      continue;
    }
    // A lone CR sends the cursor back over what the line said; CRLF is text.
    const bool crlf = c == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n';
    if ((c < 0x20 && c != '\n' && c != '\t' && !crlf) || c == 0x7f) return i;
    ++i;
  }
  return std::string_view::npos;
}

}  // namespace kvctl::cmd
