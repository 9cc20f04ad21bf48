// The one admission pipeline of the server: every request of every face
// (kvctl's own API, api.h; etcd's, etcd_api.h) gets its request id here,
// is authenticated (bearer tokens, client certificates) and rate-limited
// here, and its answer is stamped (X-Request-Id, X-Kvctl-Revision),
// counted in /metrics and written to the request log here. A face only
// translates: it asks the pipeline about the caller, judges its own routes
// and the caller's grants, and hands every answer back to be finished.
//
// Refusals come in kvctl's JSON ({"error","code"}); a face with another
// error shape rewrites them (etcd_api.cpp).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "lib/core/kv_store.h"
#include "lib/core/logger.h"
#include "lib/server/auth.h"
#include "lib/server/http_types.h"
#include "lib/server/log_throttle.h"
#include "lib/server/metrics.h"
#include "lib/server/rate_limiter.h"
#include "lib/server/request_log.h"

namespace kvctl::server {

struct AdmissionOptions {
  // Tokens and certificates with their grants; auth is off when both are empty.
  AuthOptions auth;
  // Requests per second and bucket size per client; rate 0 turns it off.
  double rate_limit = 0;
  double rate_burst = 0;
  // Where requests are logged, and which (request_log.h); null: nowhere.
  const RequestLog* request_logger = nullptr;
  // Where other events are logged (failed TLS handshakes); null: nowhere.
  core::Logger* logger = nullptr;
};

// What finishing an answer needs of its request: views into the request
// and its admission (or into what an async answer kept of them).
struct Exchange {
  std::chrono::steady_clock::time_point started;
  Route route = Route::kUnknown;
  std::string_view method;
  std::string_view request_id;
  std::string_view remote;
  size_t bytes_in = 0;
  const Principal* caller = nullptr;  // lives as long as the pipeline
};

// kvctl's JSON error {"error": message, "code": word}.
HttpResponse JsonError(int status, std::string_view code, std::string_view message);

class AdmissionPipeline {
 public:
  // `store` (for the revision every answer carries) must outlive this.
  AdmissionPipeline(const core::KvStore& store, AdmissionOptions options);

  // Starts `admission`: a request id (the client's, or a new one), the
  // start time, no caller yet, not admitted.
  void Begin(const HttpRequest& request, Admission* admission) const;
  // Who sent a request or call, and whether the rate limit lets it in:
  // the one judgement of every transport (AdmitCaller for HTTP, the gRPC
  // gate, etcd_grpc_gate.h), with refusals counted in /metrics.
  struct Verdict {
    enum class Refusal { kNone, kRateLimited, kUnauthenticated };
    Refusal refusal = Refusal::kNone;
    const Principal* caller = nullptr;  // null without auth, or unauthenticated
    std::chrono::milliseconds retry_after{0};  // kRateLimited: until its next token
    AuthFailure failure = AuthFailure::kCount;  // kUnauthenticated: why
    std::string message;                        // kUnauthenticated: what was wrong, what to send
  };
  // Identity (when `needs_identity` and auth is on: `credentials()` is
  // then asked for what the caller presented) and the rate limit, per
  // client: its identity once known, else `remote` (its address). The
  // limit is paid before credentials are judged, so guessing tokens is
  // limited too.
  Verdict Judge(const std::function<Credentials()>& credentials, std::string_view remote, bool needs_identity);
  // Judge() for an HTTP request: the refusal (429, 401, or 400 for two
  // Authorization fields), counted but not finished; else nothing, and
  // `*caller` is who sent it (null without auth).
  std::optional<HttpResponse> AdmitCaller(const HttpRequest& request, bool needs_identity,
                                          const Principal** caller);
  // Begin and AdmitCaller for a face whose every route needs identity (the
  // etcd face); `admission->done` once admitted.
  std::optional<HttpResponse> AdmitRequest(const HttpRequest& request, Admission* admission);
  // An operation refused for the caller's grants (403), for /metrics.
  void CountForbidden() { metrics_.CountAuthFailure(AuthFailure::kForbidden); }
  // Credentials refused outside Judge() (etcd's Auth.Authenticate).
  void CountAuthFailure(AuthFailure failure) { metrics_.CountAuthFailure(failure); }

  // Stamps X-Request-Id and X-Kvctl-Revision on an answer, counts it and
  // logs it.
  void Finish(const Exchange& exchange, HttpResponse* response);
  void Finish(Route route, std::string_view method, const Admission& admission, std::string_view remote,
              size_t bytes_in, HttpResponse* response);
  // The answer to a request the transport refused before its method or
  // route were known (413 or 411 from the headers, 414, 431, 408, 503 over
  // max_connections, 505, 400 with `problem` saying what was wrong), with
  // an X-Request-Id, counted (route "unknown") and logged (method "-").
  HttpResponse Refused(int status, std::string_view problem, std::string_view remote_addr);
  // The JSON error for such a status, unfinished.
  static HttpResponse TransportError(int status, std::string_view problem = {});

  // A TLS handshake that failed or timed out: counted in /metrics by
  // reason, and logged, at most kTlsLogLinesPerSecond lines a second, each
  // saying how many were left out before it. A client that closes
  // mid-handshake (a TCP health check, a port scan) is logged at debug
  // level only.
  void TlsHandshakeFailed(std::string_view remote_addr, TlsFailure why, std::string_view detail);
  static constexpr uint32_t kTlsLogLinesPerSecond = 10;

  const Authenticator& auth() const { return auth_; }
  // The figures admission keeps, for whoever renders /metrics.
  const HttpMetrics& metrics() const { return metrics_; }
  RateLimiter* rate_limiter() { return rate_limiter_.get(); }  // null when off

 private:
  const core::KvStore& store_;
  AdmissionOptions options_;
  Authenticator auth_;
  std::unique_ptr<RateLimiter> rate_limiter_;  // null when off
  HttpMetrics metrics_;
  LogThrottle tls_log_throttle_{kTlsLogLinesPerSecond};
};

}  // namespace kvctl::server
