// The request log: a line per answered request through core::Logger, in
// its text or JSON format, for the requests its policy picks (log.requests):
// by default only those that failed on the server's side (5xx) or were slow
// (log.slow_request), so a busy server does not write a line per request;
// "all" for a full access log.
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
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/logger.h"
#include "lib/server/http_types.h"

namespace kvctl::server {

// The client's X-Request-Id (gRPC: x-request-id metadata) when it is
// usable (1 to 128 visible ASCII characters), else a new random one (16
// hex digits).
std::string RequestIdFor(std::optional<std::string_view> given);
inline std::string RequestIdFor(const HttpRequest& request) { return RequestIdFor(request.Header("X-Request-Id")); }

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

// Which requests get a line.
struct RequestLogPolicy {
  enum class Mode {
    kOff,     // none
    kErrors,  // 5xx answers, and answers that took at least `slow`
    kAll,     // every request
  };
  Mode mode = Mode::kErrors;
  // A request that took this long or longer is logged (at warn level) in
  // both kErrors and kAll; zero: no request counts as slow.
  std::chrono::nanoseconds slow = std::chrono::milliseconds(100);
};

// A logger with its policy: what KvApi is given to log requests through
// (ApiOptions::request_logger). Immutable; safe from any thread.
class RequestLog {
 public:
  RequestLog(core::Logger& logger, RequestLogPolicy policy) : logger_(logger), policy_(policy) {}

  // Whether a request with this outcome gets a line. Inline and cheap: the
  // API asks for every request, and under kErrors nearly all are skipped.
  bool Wants(int status, std::chrono::nanoseconds duration) const {
    switch (policy_.mode) {
      case RequestLogPolicy::Mode::kOff: return false;
      case RequestLogPolicy::Mode::kAll: return true;
      case RequestLogPolicy::Mode::kErrors: return status >= 500 || IsSlow(duration);
    }
    return false;
  }
  bool IsSlow(std::chrono::nanoseconds duration) const {
    return policy_.slow.count() > 0 && duration >= policy_.slow;
  }
  core::Logger& logger() const { return logger_; }
  const RequestLogPolicy& policy() const { return policy_; }

 private:
  core::Logger& logger_;
  RequestLogPolicy policy_;
};

// Writes `event` if the policy wants it: at error level for a 5xx answer,
// at warn level for a slow one, else at info level.
void LogRequest(const RequestLog& log, const RequestEvent& event);

}  // namespace kvctl::server
