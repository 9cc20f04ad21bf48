#include "lib/config/parse.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

namespace kvctl::config {
namespace {

using core::Result;
using core::Status;

constexpr std::string_view kDurationExamples = R"((write e.g. "100ms", "5s", "2m", "1h"))";
constexpr std::string_view kSizeUnits =
    "use KiB, MiB, GiB, TiB for powers of 1024, or KB, MB, GB, TB for powers of 1000";

// More fractional digits than this cannot matter for whole milliseconds or
// bytes with our units, and capping them keeps 10^k inside uint64.
constexpr int kMaxFractionDigits = 18;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A decimal number as written: whole part and fraction digits kept apart so
// "1.5KiB" can be scaled exactly, without floating point.
struct Decimal {
  uint64_t whole = 0;
  uint64_t fraction = 0;  // digits after the point, trailing zeros removed
  int fraction_digits = 0;
};

// Reads [0-9]+(\.[0-9]+)? from the start of `text`. Returns the number of
// characters consumed (0 when `text` does not start with one), or an error for
// a number that cannot be represented.
Result<size_t> ReadDecimal(std::string_view text, Decimal& out) {
  size_t i = 0;
  out = Decimal{};
  while (i < text.size() && IsDigit(text[i])) {
    if (__builtin_mul_overflow(out.whole, 10u, &out.whole) ||
        __builtin_add_overflow(out.whole, static_cast<unsigned>(text[i] - '0'), &out.whole)) {
      return Status::InvalidArgument("is too large");
    }
    ++i;
  }
  if (i == 0) return size_t{0};
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == start) return size_t{0};  // "1." is not a number; caller reports the whole text
    std::string_view digits = text.substr(start, i - start);
    while (!digits.empty() && digits.back() == '0') digits.remove_suffix(1);
    if (static_cast<int>(digits.size()) > kMaxFractionDigits) {
      return Status::InvalidArgument("has too many decimal places");
    }
    for (char c : digits) out.fraction = out.fraction * 10 + static_cast<unsigned>(c - '0');
    out.fraction_digits = static_cast<int>(digits.size());
  }
  return i;
}

// n * unit, exactly. `what` names the smallest representable step
// ("millisecond", "byte") for the error when a fraction does not come out whole.
Result<uint64_t> Scale(const Decimal& n, uint64_t unit, std::string_view what) {
  uint64_t result = 0;
  if (__builtin_mul_overflow(n.whole, unit, &result)) {
    return Status::InvalidArgument("is too large");
  }
  if (n.fraction_digits > 0) {
    uint64_t denominator = 1;
    for (int i = 0; i < n.fraction_digits; ++i) denominator *= 10;
    // fraction/denominator * unit is whole iff (denominator/g) divides
    // fraction, where g = gcd(unit, denominator); reducing first avoids
    // overflowing fraction * unit.
    uint64_t g = std::gcd(unit, denominator);
    uint64_t reduced_den = denominator / g;
    if (n.fraction % reduced_den != 0) {
      return Status::InvalidArgument("is not a whole number of " + std::string(what) + "s");
    }
    uint64_t part = 0;
    if (__builtin_mul_overflow(n.fraction / reduced_den, unit / g, &part) ||
        __builtin_add_overflow(result, part, &result)) {
      return Status::InvalidArgument("is too large");
    }
  }
  return result;
}

std::optional<uint64_t> DurationUnitMillis(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60 * 1000;
  if (unit == "h") return 60 * 60 * 1000;
  return std::nullopt;
}

std::optional<uint64_t> SizeUnitBytes(std::string_view unit_any_case) {
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"b", 1},
      {"kib", uint64_t{1} << 10},
      {"mib", uint64_t{1} << 20},
      {"gib", uint64_t{1} << 30},
      {"tib", uint64_t{1} << 40},
      {"kb", 1000},
      {"mb", 1000 * 1000},
      {"gb", 1000 * 1000 * 1000},
      {"tb", uint64_t{1000} * 1000 * 1000 * 1000},
  };
  std::string unit = Lower(unit_any_case);
  for (const auto& [name, bytes] : kUnits) {
    if (unit == name) return bytes;
  }
  return std::nullopt;
}

// Digits only, 0..65535.
std::optional<int> ParsePort(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port > 65535) return std::nullopt;
  return port;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

// Checks the host part of host:port. Returns an error phrase, or "" when valid.
std::string CheckHost(std::string_view host, std::string_view example) {
  if (host.empty()) {
    return "has no host (write e.g. \"" + std::string(example) + "\")";
  }
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return "has a malformed IPv6 host (write it in brackets, e.g. \"[::1]:7070\")";
    }
    for (char c : host.substr(1, host.size() - 2)) {
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.' && c != '%') {
        return "has a malformed IPv6 host (write it in brackets, e.g. \"[::1]:7070\")";
      }
    }
    return "";
  }
  for (char c : host) {
    if (c == ':') return "has an IPv6 host without brackets (write e.g. \"[::1]:7070\")";
    if (!IsHostChar(c)) {
      return "has an invalid character '" + std::string(1, c) + "' in the host";
    }
  }
  return "";
}

}  // namespace

Result<int64_t> ParseInteger(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) return Status::InvalidArgument("is out of range");
  if (text.empty() || ec != std::errc() || ptr != end) {
    return Status::InvalidArgument("is not an integer");
  }
  return value;
}

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) {
    return Status::InvalidArgument("is empty; a duration is required " +
                                   std::string(kDurationExamples));
  }
  if (text.front() == '-')
    return Status::InvalidArgument("is negative; durations must be 0s or more");
  uint64_t total = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    Decimal n;
    Result<size_t> consumed = ReadDecimal(text.substr(pos), n);
    if (!consumed) return consumed.error();
    if (*consumed == 0) {
      return Status::InvalidArgument("is not a duration " + std::string(kDurationExamples));
    }
    pos += *consumed;
    size_t unit_start = pos;
    while (pos < text.size() && IsAlpha(text[pos])) ++pos;
    std::string_view unit = text.substr(unit_start, pos - unit_start);
    if (unit.empty()) {
      return Status::InvalidArgument("is not a duration: missing unit " +
                                     std::string(kDurationExamples));
    }
    std::optional<uint64_t> unit_ms = DurationUnitMillis(unit);
    if (!unit_ms) {
      return Status::InvalidArgument("is not a duration: unknown unit \"" + std::string(unit) +
                                     "\" (use ms, s, m or h)");
    }
    Result<uint64_t> part = Scale(n, *unit_ms, "millisecond");
    if (!part) return part.error();
    if (__builtin_add_overflow(total, *part, &total))
      return Status::InvalidArgument("is too large");
  }
  if (total > static_cast<uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max())) {
    return Status::InvalidArgument("is too large");
  }
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(total));
}

Result<uint64_t> ParseByteSize(std::string_view text) {
  if (text.empty()) {
    return Status::InvalidArgument(
        "is empty; a size is required (write e.g. \"64MiB\" or 1048576)");
  }
  if (text.front() == '-') return Status::InvalidArgument("is negative; sizes must be 0 or more");
  Decimal n;
  Result<size_t> consumed = ReadDecimal(text, n);
  if (!consumed) return consumed.error();
  if (*consumed == 0) {
    return Status::InvalidArgument("is not a size (write a byte count or e.g. \"64MiB\"; " +
                                   std::string(kSizeUnits) + ")");
  }
  std::string_view unit = text.substr(*consumed);
  uint64_t unit_bytes = 1;
  if (!unit.empty()) {
    std::optional<uint64_t> b = SizeUnitBytes(unit);
    if (!b) {
      return Status::InvalidArgument("is not a size: unknown unit \"" + std::string(unit) + "\" (" +
                                     std::string(kSizeUnits) + ")");
    }
    unit_bytes = *b;
  }
  return Scale(n, unit_bytes, "byte");
}

Result<std::string> ParseListenAddress(std::string_view text) {
  constexpr std::string_view kExample = "127.0.0.1:7070";
  size_t colon = text.rfind(':');
  // A colon inside brackets belongs to an IPv6 host, not to the port.
  if (colon == std::string_view::npos ||
      (text.find(']') != std::string_view::npos && colon < text.find(']'))) {
    return Status::InvalidArgument("is not host:port (write e.g. \"" + std::string(kExample) +
                                   "\"; port 0 picks a free port)");
  }
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.empty()) {
    return Status::InvalidArgument(
        "has no host (write 0.0.0.0:PORT to listen on every IPv4 interface, [::]:PORT for IPv6)");
  }
  if (std::string err = CheckHost(host, kExample); !err.empty()) {
    return Status::InvalidArgument(err);
  }
  if (!ParsePort(port)) {
    return Status::InvalidArgument("has port \"" + std::string(port) +
                                   "\"; a port is a number from 0 to 65535");
  }
  return std::string(text);
}

Result<std::string> NormalizeClientAddress(std::string_view text) {
  constexpr std::string_view kExample = "http://127.0.0.1:7070";
  std::string scheme = "http";
  bool scheme_given = false;
  std::string_view rest = text;
  if (size_t sep = text.find("://"); sep != std::string_view::npos) {
    scheme = Lower(text.substr(0, sep));
    if (scheme != "http" && scheme != "https") {
      return Status::InvalidArgument("has unsupported scheme \"" +
                                     std::string(text.substr(0, sep)) +
                                     "\" (use http:// or https://)");
    }
    scheme_given = true;
    rest = text.substr(sep + 3);
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find_first_of("/?#") != std::string_view::npos) {
    return Status::InvalidArgument("must not contain a path or query (write host:port or \"" +
                                   std::string(kExample) + "\")");
  }
  std::string_view host = rest;
  std::string port;
  size_t colon = rest.rfind(':');
  size_t bracket = rest.find(']');
  bool has_port =
      colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket);
  if (has_port) {
    host = rest.substr(0, colon);
    std::string_view port_text = rest.substr(colon + 1);
    std::optional<int> p = ParsePort(port_text);
    if (!p || *p == 0) {
      return Status::InvalidArgument("has port \"" + std::string(port_text) +
                                     "\"; a port is a number from 1 to 65535");
    }
    port = std::to_string(*p);
  } else if (scheme_given) {
    port = scheme == "https" ? "443" : "80";
  } else {
    return Status::InvalidArgument("has no port (write host:port or \"" + std::string(kExample) +
                                   "\")");
  }
  if (std::string err = CheckHost(host, kExample); !err.empty()) {
    return Status::InvalidArgument(err);
  }
  return scheme + "://" + std::string(host) + ":" + port;
}

std::string FormatDuration(std::chrono::milliseconds d) {
  static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"h", 60 * 60 * 1000}, {"m", 60 * 1000}, {"s", 1000}};
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  for (const auto& [name, size] : kUnits) {
    if (ms % size == 0) return std::to_string(ms / size) + std::string(name);
  }
  return std::to_string(ms) + "ms";
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr std::pair<std::string_view, int> kUnits[] = {
      {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
  if (bytes == 0) return "0";
  for (const auto& [name, shift] : kUnits) {
    uint64_t size = uint64_t{1} << shift;
    if (bytes % size == 0) return std::to_string(bytes / size) + std::string(name);
  }
  return std::to_string(bytes);
}

std::string TomlQuote(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += "\\u00";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace kvctl::config
