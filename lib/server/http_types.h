// kvctl's own small HTTP request/response types. Only http_server.cpp sees
// the transport library; everything else speaks these, so the transport can
// be swapped without touching the API.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvctl::access {
struct Principal;  // lib/access/grants.h
}  // namespace kvctl::access

namespace kvctl::server {

using access::Principal;

// What the API found out from a request's head when it admitted it
// (KvApi::Admit, before the body is read), carried with the request to its
// handler so no request is authenticated, rate-limited or stamped twice.
// The transport only carries it.
struct Admission {
  bool done = false;  // admitted: the handler answers from here on
  std::chrono::steady_clock::time_point started{};
  std::string request_id;
  const Principal* caller = nullptr;  // the authenticated identity; null without auth
  std::string key;                    // a key route's key, decoded
};

struct HttpRequest {
  std::string method;       // "GET", "PUT", ...
  std::string path;         // raw, still percent-encoded, without the query
  std::string query;        // raw, after '?', without it
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote_addr;
  // The subject Common Name of the client's certificate, when the
  // connection is TLS and the certificate was verified against
  // tls.client_ca; "" otherwise.
  std::string peer_common_name;

  Admission admission;

  // Case-insensitive; the first value, if any.
  std::optional<std::string_view> Header(std::string_view name) const;
  // Case-insensitive; how many fields have this name.
  size_t HeaderCount(std::string_view name) const;
};

struct HttpResponse;

// A body of unknown length, sent as it is made (a watch, SPEC §6): chunked
// on HTTP/1.1, delimited by the connection's close on HTTP/1.0. The
// transport pulls from it on the connection's loop whenever the socket has
// room, so a client that reads nothing makes the source hold nothing more;
// the source never blocks and holds no thread.
class StreamSource {
 public:
  virtual ~StreamSource() = default;
  // Once, on the loop, before the first Pull. `wake` asks for a Pull soon;
  // it may be called from any thread, any number of times, also after
  // Cancel (it then does nothing).
  virtual void Start(std::function<void()> wake) = 0;
  // Appends about `max_bytes` at most to `out` (nothing: no more now, wait
  // for `wake`). False when the body is complete with what it appended.
  virtual bool Pull(size_t max_bytes, std::string* out) = 0;
  // No more Pulls: the client went away, or the server is stopping (the
  // transport then ends the body itself). Releases what the source holds.
  virtual void Cancel() = 0;
};

// An answer that comes later (a long poll), without holding a thread.
class DeferredAnswer {
 public:
  virtual ~DeferredAnswer() = default;
  // Once, on the loop: `reply` must then be called exactly once, from any
  // thread (also at once, from inside Start).
  virtual void Start(std::function<void(HttpResponse)> reply) = 0;
  // The server is stopping or the client went away: reply now. May come
  // after the reply; may come more than once.
  virtual void Hurry() = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty: no body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // For the request log only, never sent: the JSON error's code word and,
  // for a server error, its message.
  std::string error_code;
  std::string error_cause;
  // The store revision the answer reflects (X-Kvctl-Revision);
  // kRevisionAtFinish: the store's revision when the answer is finished.
  // (A plain number, not an optional: this struct is moved several times
  // per request.)
  static constexpr uint64_t kRevisionAtFinish = UINT64_MAX;
  uint64_t revision = kRevisionAtFinish;
  // Set: the body comes from here, after the head (`body` is not sent).
  std::shared_ptr<StreamSource> stream;
  // Set (by a handler that runs on the loop: GET, HEAD): the answer comes
  // later, from here; nothing else of this response is used.
  std::shared_ptr<DeferredAnswer> deferred;

  void SetHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// Why a TLS handshake failed, as far as the server can tell: a small fixed
// set, so it can label a metric.
enum class TlsFailure {
  kTimeout,           // not finished within server.read_timeout
  kNotTls,            // the client does not speak TLS (plain HTTP, garbage)
  kNoClientCert,      // mutual TLS: the client sent no certificate
  kBadClientCert,     // mutual TLS: its certificate did not verify (unknown CA, expired, ...)
  kRejectedByClient,  // the client sent an alert: it does not accept ours
  kClosed,            // the client closed or reset the connection mid-handshake
  kOther,             // anything else (no common protocol version or cipher, ...)
  kCount,
};

}  // namespace kvctl::server
