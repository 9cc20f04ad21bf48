// The HTTP API of SPEC §2 over a KvStore (any backend), in kvctl's own request/response
// types: one route table, every failure turned into a JSON error
// {"error": message, "code": word}. Handle() never throws.
//
// Choices where the SPEC is silent (README "HTTP API"):
// - In the query string '+' means a space (form encoding); encode a literal
//   '+' as %2B. In the path '+' is itself.
// - JSON carries keys as strings. A key that is not valid UTF-8 is shown
//   with U+FFFD for the bad bytes in "key", and its exact bytes are in
//   "key_base64" (likewise "next" / "next_base64" in listings).
// - If-Match takes one revision ("7" or 7) or *; If-None-Match takes only *.
// - OPTIONS answers 204 with the route's Allow header.
//
// Before a route runs, a request is admitted (see README "Run it
// securely"): /healthz and /readyz always answer, for probes. Every other
// route is subject to the per-client rate limit (429 with Retry-After; the
// client is the authenticated identity, else the remote address), and,
// when auth is on, to its grants: 401 without valid credentials, 403 for
// an operation on a key outside them. A listing shows only the keys the
// caller may read. /metrics needs admin only with auth.metrics = "admin".
// Every answer carries X-Request-Id (the client's, or a new one) and is
// counted in /metrics and written to the request log.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/kv_store.h"
#include "lib/core/logger.h"
#include "lib/server/auth.h"
#include "lib/server/http_types.h"
#include "lib/server/metrics.h"
#include "lib/server/rate_limiter.h"
#include "lib/server/request_log.h"

namespace kvctl::server {

struct ApiOptions {
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 1 << 20;
  size_t max_list_limit = 10000;
  size_t default_list_limit = 100;
  // Appended to /metrics after the store's gauges (KvStore::BackendMetrics):
  // the file backend's file-system timings and commit batch sizes.
  std::function<void(std::string*)> render_backend_metrics;
  // Tokens and certificates with their grants; auth is off when both are empty.
  AuthOptions auth;
  // Requests per second and bucket size per client; rate 0 turns it off.
  double rate_limit = 0;
  double rate_burst = 0;
  // Where requests are logged, and which (request_log.h); null: nowhere.
  const RequestLog* request_logger = nullptr;
};

class KvApi {
 public:
  KvApi(core::KvStore& store, ApiOptions options);

  HttpResponse Handle(const HttpRequest& request);

  // Writes to a key (PUT, DELETE) without blocking the caller: `reply` gets
  // the same answer Handle() would give (admission, grants, X-Request-Id,
  // metrics and the request log included), exactly once, on this thread
  // or on the store's committer thread once the change is durable. False,
  // with `reply` not called, for every other request: Handle() answers
  // those.
  using Reply = std::function<void(HttpResponse)>;
  bool HandleWriteAsync(const HttpRequest& request, Reply reply);

  // The figures the API keeps itself, for whoever renders /metrics.
  const HttpMetrics& metrics() const { return metrics_; }

  // The route a path names (defined in api.cpp).
  struct RouteMatch;

  // A JSON error response.
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  // The JSON error for a status the transport decides itself, before any
  // route runs (413 or 411 from the headers, 414 for an overlong request
  // line, 431 for an overlong head, 408 for a request too slow to arrive,
  // 503 over max_connections, 505, 400 for a malformed request).
  static HttpResponse TransportError(int status);
  // TransportError's answer with an X-Request-Id, counted in /metrics (route
  // "unknown") and written to the request log (method "-"): the transport
  // refused the request before its method or route were known to the API.
  HttpResponse Refused(int status, std::string_view remote_addr);
  // The body of POST /v1/admin/compact's answer (also what `kvctl compact
  // -o json` prints, online or offline).
  static std::string CompactionJson(const core::CompactionStats& stats);

 private:
  // Everything between matching the route and the answer; sets `*caller`
  // once the request is authenticated.
  HttpResponse Dispatch(const HttpRequest& request, const RouteMatch& match, const Principal** caller);
  // The 429, 401 or 403 that stops a request before its route, if any.
  std::optional<HttpResponse> Admit(const HttpRequest& request, const RouteMatch& match,
                                    const Principal** caller);
  // 403 unless `caller` (null when auth is off) may do `op` on `key`.
  std::optional<HttpResponse> Authorize(const Principal* caller, Op op, std::string_view key);
  HttpResponse HandleKey(const HttpRequest& request, std::string_view raw_key, const Principal* caller);
  // Decodes and checks a key request: the key, then the caller's grant for
  // it, then a write's conditions and size. The answer when it is refused,
  // else the key and conditions.
  std::optional<HttpResponse> CheckKeyRequest(const HttpRequest& request, std::string_view raw_key,
                                              const Principal* caller, std::string* key,
                                              core::Precondition* pre);
  static HttpResponse PutAnswer(const std::string& key, const core::Result<core::PutOutcome>& put);
  static HttpResponse DeleteAnswer(const core::Result<core::DeleteOutcome>& del);
  HttpResponse HandleList(const HttpRequest& request, const Principal* caller);
  // What the request log and the metrics need of a request, taken when it
  // arrives: an async write is answered after the request itself is gone.
  struct Exchange;
  Exchange Begin(const HttpRequest& request, const RouteMatch& match) const;
  // Stamps X-Request-Id on the answer, counts it and logs it.
  void Finish(const Exchange& exchange, HttpResponse* response);
  HttpResponse HandleCompact();
  HttpResponse HandleHealthz();
  HttpResponse HandleReadyz();
  HttpResponse HandleMetrics();

  core::KvStore& store_;
  ApiOptions options_;
  Authenticator auth_;
  std::unique_ptr<RateLimiter> rate_limiter_;  // null when off
  HttpMetrics metrics_;
};

}  // namespace kvctl::server
