// The request log: one line per answered request through core::Logger, in
// its text or JSON format.
//
// What a line holds: method, route (the pattern, e.g. /v1/kv/{key}, never
// the key: keys name customers, hosts and secrets often enough that
// kvctl keeps them out of logs, as it keeps values and credentials out),
// status, bytes_in / bytes_out (body sizes), duration_ms, request_id,
// remote (the client address), identity (the token's name or the client
// certificate's CN, when auth is on), and for errors the JSON error code;
// for 5xx answers also the cause.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "lib/core/logger.h"
#include "lib/server/http_types.h"

namespace kvctl::server {

// The client's X-Request-Id when it is usable (1 to 128 visible ASCII
// characters), else a new random one (16 hex digits).
std::string RequestIdFor(const HttpRequest& request);

struct RequestEvent {
  std::string_view method;
  std::string_view route;
  int status = 0;
  size_t bytes_in = 0;
  size_t bytes_out = 0;
  std::chrono::nanoseconds duration{0};
  std::string_view request_id;
  std::string_view remote;
  std::string_view identity;    // "" when anonymous
  std::string_view error_code;  // "" unless status >= 400
  std::string_view cause;       // "" unless status >= 500
};

// Writes `event` at info level, or at error level for a 5xx answer.
void LogRequest(core::Logger& logger, const RequestEvent& event);

}  // namespace kvctl::server
