// Reads HTTP/1.1 responses off a keep-alive connection for the load
// generator: status, where the response ends, whether the server closes.
// Only what a load generator needs and can do fast: bodies framed by
// Content-Length (or none for 1xx/204/304); a chunked body is reported as
// unsupported rather than misread.
#pragma once

#include <cstddef>
#include <string_view>

namespace kvctl::bench {

struct ParsedResponse {
  enum class Outcome { kComplete, kIncomplete, kBad } outcome = Outcome::kIncomplete;
  int status = 0;
  size_t bytes = 0;      // head + body, when complete
  bool close = false;    // "Connection: close" (or HTTP/1.0 without keep-alive)
};

// Parses the response at the start of `buffer`. `head_request`: the request
// was HEAD, so no body follows whatever the Content-Length says.
ParsedResponse ParseResponse(std::string_view buffer, bool head_request = false);

}  // namespace kvctl::bench
