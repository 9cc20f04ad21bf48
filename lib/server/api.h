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
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/kv_store.h"
#include "lib/server/http_types.h"
#include "lib/server/metrics.h"

namespace kvctl::server {

struct ApiOptions {
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 1 << 20;
  size_t max_list_limit = 10000;
  size_t default_list_limit = 100;
};

class KvApi {
 public:
  KvApi(core::KvStore& store, ApiOptions options);

  HttpResponse Handle(const HttpRequest& request);

  // Writes to a key (PUT, DELETE) without blocking the caller: `reply` gets
  // the same answer Handle() would give, exactly once, on this thread or on
  // the store's committer thread once the change is durable. False, with
  // `reply` not called, for every other request: Handle() answers those.
  using Reply = std::function<void(HttpResponse)>;
  bool HandleWriteAsync(const HttpRequest& request, Reply reply);

  // A JSON error response.
  static HttpResponse Error(int status, std::string_view code, std::string_view message);
  // The JSON error for a status the transport decides itself, before any
  // route runs (413 or 411 from the headers, 414 for an overlong request
  // line, 431 for an overlong head, 408 for a request too slow to arrive,
  // 503 over max_connections, 505, 400 for a malformed request).
  static HttpResponse TransportError(int status);
  // The body of POST /v1/admin/compact's answer (also what `kvctl compact
  // -o json` prints, online or offline).
  static std::string CompactionJson(const core::CompactionStats& stats);

 private:
  HttpResponse HandleKey(const HttpRequest& request, std::string_view raw_key);
  // Decodes and checks a key request (and a write's conditions and size):
  // the error answer when it is bad, else the key and conditions.
  std::optional<HttpResponse> CheckKeyRequest(const HttpRequest& request, std::string_view raw_key,
                                              std::string* key, core::Precondition* pre) const;
  static HttpResponse PutAnswer(const std::string& key, const core::Result<core::PutOutcome>& put);
  static HttpResponse DeleteAnswer(const core::Result<core::DeleteOutcome>& del);
  HttpResponse HandleList(const HttpRequest& request);
  HttpResponse HandleCompact();
  HttpResponse HandleHealthz();
  HttpResponse HandleReadyz();
  HttpResponse HandleMetrics();

  core::KvStore& store_;
  ApiOptions options_;
  RequestCounters counters_;
};

}  // namespace kvctl::server
