// HTTP/1.1 on the wire, server side: reading a request head (request line
// and header fields, RFC 9112 §3 and §5) and writing a response. Pure
// functions over bytes, no sockets, so every rule here is unit-tested.
//
// The parser is strict where leniency lets a request be read two ways
// (request smuggling): no whitespace before a header's colon, no folded
// header lines, no two different Content-Lengths, no Transfer-Encoding with
// a Content-Length, no two Host fields. Lines end in CRLF: a bare LF or a
// bare CR is refused as soon as it arrives (a front end that took a bare LF
// as a line end would see other requests than we do). Up to
// max_leading_empty_lines empty lines before the request line are skipped
// (RFC 9112 §2.2). Targets in absolute form ("http://host/path") are taken
// by their path and query (RFC 9112 §3.2.2); "*" only with OPTIONS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/server/http_types.h"

namespace kvctl::server {

struct HeadLimits {
  size_t max_request_line = 8 * 1024;  // longer: 414
  size_t max_head = 16 * 1024;         // request line + header fields; longer: 431
  size_t max_header_count = 100;       // more fields: 431
  size_t max_leading_empty_lines = 4;  // CRLFs before the request line; more: 400
};

// A parsed request head. The views point into the buffer that was parsed.
struct RequestHead {
  std::string_view method;
  std::string_view target;  // as sent
  // The target's path ("*" for OPTIONS *; "/" for "http://host") and its
  // query (after '?', without it; empty when there is none).
  std::string_view path;
  std::string_view query;
  int minor_version = 1;    // HTTP/1.<minor>
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  size_t head_bytes = 0;    // through the blank line that ends the head
  // kBad: what was wrong, for the 400's message.
  std::string_view problem;
};

enum class HeadParse {
  kComplete,
  kIncomplete,     // no blank line yet, and within the limits
  kBad,            // 400
  kLineTooLong,    // 414
  kHeadTooLarge,   // 431
  kBadVersion,     // 505: not HTTP/1.0 or HTTP/1.1
};

HeadParse ParseRequestHead(std::string_view buffer, const HeadLimits& limits, RequestHead* out);

// What the head says about the body and the connection.
struct RequestFraming {
  // 400 (unreadable length, both framings, no or two Host fields), 411
  // (chunked), 413 (too large); 0: fine.
  int refusal = 0;
  std::string_view problem;  // for a 400: what was wrong
  uint64_t content_length = 0;
  bool keep_alive = true;       // HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive"
  bool expects_continue = false;  // Expect: 100-continue, on HTTP/1.1 (1.0 has no 100)
};

RequestFraming FrameRequest(const RequestHead& head, uint64_t max_body_bytes);

// Case-insensitive ASCII comparison of header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// The reason phrase for a status code ("Not Found"); "" for unknown codes.
std::string_view ReasonPhrase(int status);

// Appends the whole response to `out`. For a HEAD request the body is left
// out but its Content-Length is kept. `date` is an IMF-fixdate.
void AppendResponse(const HttpResponse& response, bool head_request, bool keep_alive,
                    int minor_version, std::string_view date, std::string* out);

// Appends the head of a response whose body is a stream: chunked on
// HTTP/1.1 ("Transfer-Encoding: chunked"), delimited by the connection's
// close on HTTP/1.0 (`keep_alive` is then ignored: it closes).
void AppendStreamHead(const HttpResponse& response, bool keep_alive, int minor_version,
                      std::string_view date, std::string* out);
// Appends one chunk of a chunked body ("<hex size>\r\n<data>\r\n");
// nothing for empty data (an empty chunk ends the body: kLastChunk).
void AppendChunk(std::string_view data, std::string* out);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// "Sun, 06 Nov 1994 08:49:37 GMT" for a Unix time.
std::string HttpDate(int64_t unix_seconds);

}  // namespace kvctl::server
