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
// - If-Match takes one ETag as the server sends it ("7") or *, judged by
//   strong comparison, exactly: 7 unquoted is 400, "07" or W/"7" is 412.
//   The field on several lines counts as one list (RFC 9110 §5.3).
//   If-None-Match takes only *.
// - OPTIONS answers 204 with the route's Allow header; OPTIONS * answers
//   200 with every method the server knows.
//
// Before anything else answers, a request is admitted, from its head alone
// (Admit; see README "Run it securely"), through the server's one
// admission pipeline (admission.h): /healthz and /readyz always answer,
// for probes. Every other route, unknown ones included, is subject to the
// per-client rate limit (429 with Retry-After; the client is the
// authenticated identity, else the remote address), and, when auth is on,
// to its grants: 401 without valid credentials, 403 for an operation on a
// key outside them. A listing shows only the keys the caller may read.
// /metrics needs admin only with auth.metrics = "admin". Every answer
// carries X-Request-Id (the client's, or a new one) and is counted in
// /metrics and written to the request log, by the pipeline.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/kv_store.h"
#include "lib/server/admission.h"
#include "lib/server/auth.h"
#include "lib/server/http_types.h"

namespace kvctl::server {

struct ApiOptions {
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 1 << 20;
  size_t max_list_limit = 10000;
  size_t default_list_limit = 100;
  // A listing page ends early (with `next`) once its keys and values reach
  // this many bytes: 10000 values of 1 MiB would be a 13 GiB answer. One
  // item is always returned whole, so a page holds at most this plus one
  // key and value.
  size_t max_list_bytes = 4 << 20;
  // The most compares plus ops of one transaction (limits.max_txn_ops).
  size_t max_txn_ops = 128;
  // Appended to /metrics after the store's gauges (KvStore::BackendMetrics):
  // the file backend's file-system timings and commit batch sizes.
  std::function<void(std::string*)> render_backend_metrics;
  // Appended after the HTTP request families: the gRPC face's calls.
  std::function<void(std::string*)> render_grpc_metrics;
};

class LongPolls;  // api_longpoll.cpp

class KvApi {
 public:
  // `admission` is the server's pipeline; it must outlive this.
  KvApi(core::KvStore& store, ApiOptions options, AdmissionPipeline& admission);
  ~KvApi();

  // The longest wait= of a long poll (GET /v1/kv/{key}?wait=&after=).
  static constexpr std::chrono::milliseconds kMaxLongPollWait{5 * 60 * 1000};

  // Admission, once a request's head is parsed and before its body is read
  // (the transport's admitter): the one place where a request gets its id
  // and is authenticated and rate-limited. In order: the probes (/healthz,
  // /readyz) skip identity and the rate limit; the identity (401, or 400
  // for two Authorization fields) and the rate limit (429); then what the
  // head alone decides (404, OPTIONS, 405, an unknown query parameter, a
  // bad key); then the caller's grant (403). An answer returned here is final, and already stamped,
  // counted and logged; otherwise request.admission holds what Handle()
  // and HandleWriteAsync() go on from.
  std::optional<HttpResponse> Admit(HttpRequest& request);

  // Answers a whole request; one that was not admitted at its head is
  // admitted first (never twice).
  HttpResponse Handle(const HttpRequest& request);

  // Writes to a key (PUT, DELETE) and transactions (POST /v1/txn) without
  // blocking the caller: `reply` gets
  // the same answer Handle() would give (admission, grants, X-Request-Id,
  // metrics and the request log included), exactly once, on this thread
  // or on the store's committer thread once the change is durable. False,
  // with `reply` not called, for every other request: Handle() answers
  // those. It may move what admission left in `request.admission` (the
  // answer outlives the request).
  using Reply = std::function<void(HttpResponse)>;
  bool HandleWriteAsync(HttpRequest& request, Reply reply);

  // The route a path names (defined in api_internal.h).
  struct RouteMatch;

  // A JSON error response (admission.h's JsonError).
  static HttpResponse Error(int status, std::string_view code, std::string_view message) {
    return JsonError(status, code, message);
  }
  // The body of POST /v1/admin/compact's answer (also what `kvctl compact
  // -o json` prints, online or offline).
  static std::string CompactionJson(const core::CompactionStats& stats);

 private:
  // Admit()'s decisions; `admission` gets the request id and start time
  // even when it answers.
  std::optional<HttpResponse> AdmitHead(const HttpRequest& request, const RouteMatch& match,
                                        Admission* admission);
  // 403 unless `caller` (null when auth is off) may do `op` on `key`.
  std::optional<HttpResponse> Authorize(const Principal* caller, Op op, std::string_view key);
  // A peer's forwarded writes (api_peer.cpp): 403 unless the store is its
  // database's writer and the request carries its token.
  std::optional<HttpResponse> AdmitPeer(const HttpRequest& request);
  void ServePeerWrites(const HttpRequest& request, Reply answer);
  // An admitted request's route.
  HttpResponse Dispatch(const HttpRequest& request, const RouteMatch& match, const Admission& admission);
  // The key of a key route, percent-decoded and checked (400, 414).
  std::optional<HttpResponse> DecodeKey(std::string_view raw_key, std::string* key) const;
  // A write's conditions and size: the answer when it is refused.
  std::optional<HttpResponse> CheckWrite(const HttpRequest& request, core::Precondition* pre) const;
  HttpResponse HandleKey(const HttpRequest& request, const std::string& key);
  // GET/HEAD of a key: the value and its metadata headers (SPEC §6), or 404.
  HttpResponse GetAnswer(const std::string& key) const;
  // A long poll's parameters (api_longpoll.cpp): the answer when they are
  // not wait= and after= together, well formed.
  struct LongPollAsk {
    std::chrono::milliseconds wait{0};
    uint64_t after = 0;
  };
  std::optional<HttpResponse> ReadLongPoll(std::string_view query, LongPollAsk* ask);
  // GET /v1/kv/{key}?wait=&after=: at once when the key changed after REV,
  // else a deferred answer.
  HttpResponse LongPollAnswer(const HttpRequest& request, const Admission& admission, const LongPollAsk& ask);
  static HttpResponse PutAnswer(const std::string& key, const core::Result<core::PutOutcome>& put);
  static HttpResponse DeleteAnswer(const core::Result<core::DeleteOutcome>& del);
  HttpResponse HandleList(const HttpRequest& request, const Principal* caller);
  // POST /v1/txn (api_txn.cpp): the body read into `txn` and the caller's
  // grants judged for every key it names; the answer when refused (400
  // bad_txn, 403).
  std::optional<HttpResponse> ReadTxn(const HttpRequest& request, const Principal* caller,
                                      core::TxnRequest* txn);
  std::optional<HttpResponse> AuthorizeTxn(const Principal* caller, const core::TxnRequest& txn);
  static HttpResponse TxnAnswer(const core::Result<core::TxnResult>& result);
  HttpResponse HandleTxn(const HttpRequest& request, const Principal* caller);
  // The lease routes (api_lease.cpp). ?lease=ID of a key PUT: 400 unless
  // it is the only parameter and a whole number; 0 when absent.
  std::optional<HttpResponse> ReadLeaseParameter(const HttpRequest& request, uint64_t* lease) const;
  // 403 unless `caller` (null when auth is off) may write some key: leases
  // are store-wide, and only a writer can attach a key to one.
  std::optional<HttpResponse> AuthorizeLeases(const Principal* caller);
  // Whether `method` on `route` changes a lease (grant, keepalive, revoke):
  // HandleWriteAsync takes those.
  static bool IsLeaseWrite(Route route, std::string_view method);
  // Every lease route: `done` gets the answer exactly once, at once for a
  // read or a keepalive, from the store's committer thread for a grant or
  // a revoke once it is durable.
  void ServeLease(const HttpRequest& request, const RouteMatch& match, const Principal* caller,
                  std::function<void(HttpResponse)> done);
  // ServeLease for Handle(): waits for the answer (on the loop only reads
  // come here, and those answer at once).
  HttpResponse HandleLease(const HttpRequest& request, const RouteMatch& match, const Principal* caller);
  // GET /v1/watch (api_watch.cpp): a stream of JSON lines, or 400, 403, 410.
  HttpResponse HandleWatch(const HttpRequest& request, const Principal* caller);
  // What an async answer keeps of its request (api_internal.h).
  struct AsyncWrite;
  static Exchange ExchangeOf(const HttpRequest& request, Route route, const Admission& admission);
  HttpResponse HandleCompact();
  HttpResponse HandleHealthz();
  // The revision only for an admin caller, or with auth off.
  HttpResponse HandleReadyz(const Principal* caller);
  HttpResponse HandleMetrics();

  core::KvStore& store_;
  ApiOptions options_;
  AdmissionPipeline& admission_;
  std::mutex long_polls_mu_;
  std::shared_ptr<LongPolls> long_polls_;  // made at the first long poll that waits
};

}  // namespace kvctl::server
