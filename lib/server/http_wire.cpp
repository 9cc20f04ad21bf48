#include "lib/server/http_wire.h"

#include <charconv>
#include <ctime>

#include <fmt/format.h>

namespace kvctl::server {
namespace {

bool IsTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Field values and request targets: visible ASCII, obs-text, and (in values)
// spaces and tabs. Control bytes such as NUL or a bare CR are refused.
bool IsValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// True if the comma-separated list `value` holds `token` (case-insensitive).
bool ListHas(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (EqualsIgnoreCase(TrimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

HeadParse Bad(RequestHead* out, std::string_view problem) {
  out->problem = problem;
  return HeadParse::kBad;
}

// An absolute-form target ("http://host:port/path?query"): its path and
// query, as the origin form would carry them (RFC 9112 §3.2.2); the
// authority is not used (this server has one name space).
bool SplitAbsoluteForm(std::string_view target, RequestHead* out) {
  const size_t colon = target.find("://");
  if (colon == std::string_view::npos) return false;
  const std::string_view scheme = target.substr(0, colon);
  if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) return false;
  std::string_view rest = target.substr(colon + 3);
  const size_t authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  // userinfo ("user@host") is not allowed in http URIs (RFC 9110 §4.2.4).
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  rest = authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  const size_t q = rest.find('?');
  out->path = rest.substr(0, q);
  if (out->path.empty()) out->path = "/";
  out->query = q == std::string_view::npos ? std::string_view() : rest.substr(q + 1);
  return true;
}

HeadParse ParseRequestLine(std::string_view line, const HeadLimits& limits, RequestHead* out) {
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Bad(out, "the request line is not \"METHOD target HTTP/1.1\"");
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Bad(out, "the request line is not \"METHOD target HTTP/1.1\"");
  out->method = line.substr(0, sp1);
  out->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(out->method) || out->target.empty()) {
    return Bad(out, "the request line is not \"METHOD target HTTP/1.1\"");
  }
  if (line.size() > limits.max_request_line) return HeadParse::kLineTooLong;
  for (unsigned char c : out->target) {
    if (c <= 0x20 || c == 0x7f) return Bad(out, "the request target holds a control byte or a space");
  }
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return Bad(out, "the request line does not end in HTTP/1.1 or HTTP/1.0");
  }
  if (version[5] != '1') return HeadParse::kBadVersion;
  out->minor_version = version[7] - '0';
  if (out->target.front() == '/') {
    const size_t q = out->target.find('?');
    out->path = out->target.substr(0, q);
    out->query = q == std::string_view::npos ? std::string_view() : out->target.substr(q + 1);
  } else if (out->target == "*") {
    if (out->method != "OPTIONS") return Bad(out, "the target * is for OPTIONS only");
    out->path = out->target;
    out->query = {};
  } else if (!SplitAbsoluteForm(out->target, out)) {
    return Bad(out, "the request target must be a path (/v1/kv/...) or an http:// URL");
  }
  return HeadParse::kComplete;
}

// A line not yet ended may already hold a CR that is not followed by LF.
bool HasBareCr(std::string_view partial) {
  const size_t cr = partial.find('\r');
  return cr != std::string_view::npos && cr + 1 < partial.size();
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char x = static_cast<unsigned char>(a[i]);
    unsigned char y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x = static_cast<unsigned char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<unsigned char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

HeadParse ParseRequestHead(std::string_view buffer, const HeadLimits& limits, RequestHead* out) {
  // Every field anew but the header list's room: a caller may parse each
  // request into the same RequestHead, so the list is not regrown each time.
  out->headers.clear();
  out->method = out->target = out->path = out->query = out->problem = {};
  out->minor_version = 1;
  out->head_bytes = 0;
  // Empty lines before the request line (RFC 9112 §2.2 asks servers to
  // skip at least one: some clients send a CRLF after a body).
  size_t start = 0;
  for (size_t empty = 0;; ++empty) {
    if (start == buffer.size()) return HeadParse::kIncomplete;
    if (buffer[start] == '\n') return Bad(out, "a line ends in a bare LF; HTTP lines end in CRLF");
    if (buffer[start] != '\r') break;
    if (start + 1 == buffer.size()) return HeadParse::kIncomplete;
    if (buffer[start + 1] != '\n') return Bad(out, "a bare CR; HTTP lines end in CRLF");
    if (empty == limits.max_leading_empty_lines) return Bad(out, "too many empty lines before the request line");
    start += 2;
  }
  // Each line in turn, so a bare LF or CR is refused as soon as it arrives
  // instead of leaving the client waiting for a CRLF CRLF that never comes.
  size_t pos = start;
  bool request_line = true;
  for (;;) {
    const size_t lf = buffer.find('\n', pos);
    if (lf == std::string_view::npos) {
      const std::string_view partial = buffer.substr(pos);
      if (HasBareCr(partial)) return Bad(out, "a bare CR; HTTP lines end in CRLF");
      // Judge what has arrived so far, so an overlong head is refused before
      // its end ever comes (+1: the line's CR may be here without its LF).
      if (request_line && partial.size() > limits.max_request_line + 1) return HeadParse::kLineTooLong;
      if (buffer.size() - start > limits.max_head + 3) return HeadParse::kHeadTooLarge;
      return HeadParse::kIncomplete;
    }
    if (lf == pos || buffer[lf - 1] != '\r') return Bad(out, "a line ends in a bare LF; HTTP lines end in CRLF");
    const std::string_view line = buffer.substr(pos, lf - 1 - pos);
    pos = lf + 1;
    if (request_line) {
      if (HeadParse p = ParseRequestLine(line, limits, out); p != HeadParse::kComplete) return p;
      request_line = false;
      continue;
    }
    if (line.empty()) break;  // the blank line that ends the head
    if (lf - 1 - start > limits.max_head) return HeadParse::kHeadTooLarge;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Bad(out, "a header line has no colon");
    const std::string_view name = line.substr(0, colon);
    // Also refuses folded lines and "Name :".
    if (!IsToken(name)) return Bad(out, "a header name is not a token (a space before the colon, or a folded line)");
    const std::string_view value = TrimOws(line.substr(colon + 1));
    for (unsigned char c : value) {
      if (!IsValueChar(c)) return Bad(out, "a header value holds a control byte");
    }
    if (out->headers.size() == limits.max_header_count) return HeadParse::kHeadTooLarge;
    out->headers.emplace_back(name, value);
  }
  out->head_bytes = pos;
  return HeadParse::kComplete;
}

RequestFraming FrameRequest(const RequestHead& head, uint64_t max_body_bytes) {
  RequestFraming f;
  f.keep_alive = head.minor_version >= 1;
  bool has_length = false;
  bool has_transfer_encoding = false;
  int hosts = 0;
  auto refuse = [&f](std::string_view problem) {
    f.refusal = 400;
    f.problem = problem;
    f.keep_alive = false;
    return f;
  };
  for (const auto& [name, value] : head.headers) {
    if (EqualsIgnoreCase(name, "Content-Length")) {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size()) {
        return refuse("Content-Length is not a whole number of bytes");
      }
      if (has_length && n != f.content_length) return refuse("two Content-Length fields differ");
      has_length = true;
      f.content_length = n;
    } else if (EqualsIgnoreCase(name, "Host")) {
      ++hosts;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      has_transfer_encoding = true;
    } else if (EqualsIgnoreCase(name, "Connection")) {
      if (ListHas(value, "close")) f.keep_alive = false;
      if (head.minor_version == 0 && ListHas(value, "keep-alive")) f.keep_alive = true;
    } else if (EqualsIgnoreCase(name, "Expect")) {
      // HTTP/1.0 has no 1xx answers: a 1.0 client is not waiting for one
      // (RFC 9110 §10.1.1), so its Expect is ignored.
      f.expects_continue = head.minor_version >= 1 && EqualsIgnoreCase(value, "100-continue");
    }
  }
  // RFC 9112 §3.2: a server answers 400 to an HTTP/1.1 request without
  // Host, and to any with more than one (a proxy may have read another).
  if (hosts > 1) return refuse("more than one Host field");
  if (hosts == 0 && head.minor_version >= 1) return refuse("HTTP/1.1 requires a Host field");
  if (has_transfer_encoding) {
    // Both framings at once is how requests are smuggled: refuse outright.
    if (has_length) return refuse("Transfer-Encoding and Content-Length together");
    f.refusal = 411;
  } else if (f.content_length > max_body_bytes) {
    f.refusal = 413;
  }
  if (f.refusal != 0) f.keep_alive = false;
  return f;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

void AppendResponse(const HttpResponse& response, bool head_request, bool keep_alive,
                    int minor_version, std::string_view date, std::string* out) {
  // Appends, not fmt: this runs for every answer.
  const int status = response.status;
  char number[24];
  out->append("HTTP/1.1 ");
  out->append(number, std::to_chars(number, number + sizeof number, status).ptr);
  out->push_back(' ');
  out->append(ReasonPhrase(status)).append("\r\nDate: ").append(date).append("\r\n");
  for (const auto& [name, value] : response.headers) {
    out->append(name).append(": ").append(value).append("\r\n");
  }
  if (!response.content_type.empty()) out->append("Content-Type: ").append(response.content_type).append("\r\n");
  // 1xx and 204 carry no body and no length (RFC 9110 §8.6).
  if (status >= 200 && status != 204) {
    out->append("Content-Length: ");
    out->append(number, std::to_chars(number, number + sizeof number, response.body.size()).ptr);
    out->append("\r\n");
  }
  if (!keep_alive) {
    out->append("Connection: close\r\n");
  } else if (minor_version == 0) {
    out->append("Connection: keep-alive\r\n");
  }
  out->append("\r\n");
  if (!head_request && status >= 200 && status != 204 && status != 304) out->append(response.body);
}

void AppendStreamHead(const HttpResponse& response, bool keep_alive, int minor_version,
                      std::string_view date, std::string* out) {
  char number[24];
  out->append("HTTP/1.1 ");
  out->append(number, std::to_chars(number, number + sizeof number, response.status).ptr);
  out->push_back(' ');
  out->append(ReasonPhrase(response.status)).append("\r\nDate: ").append(date).append("\r\n");
  for (const auto& [name, value] : response.headers) {
    out->append(name).append(": ").append(value).append("\r\n");
  }
  if (!response.content_type.empty()) out->append("Content-Type: ").append(response.content_type).append("\r\n");
  if (minor_version == 0) {
    out->append("Connection: close\r\n");  // HTTP/1.0 has no chunks: the close ends the body
  } else {
    out->append("Transfer-Encoding: chunked\r\n");
    if (!keep_alive) out->append("Connection: close\r\n");
  }
  out->append("\r\n");
}

void AppendChunk(std::string_view data, std::string* out) {
  if (data.empty()) return;
  char number[24];
  out->append(number, std::to_chars(number, number + sizeof number, data.size(), 16).ptr);
  out->append("\r\n").append(data).append("\r\n");
}

std::string HttpDate(int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t t = static_cast<time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} GMT", kDays[tm.tm_wday], tm.tm_mday,
                     kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

}  // namespace kvctl::server
