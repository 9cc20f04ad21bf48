// The HTTP client of `kvctl put/get/del/compact`. The only file on the
// client side that includes httplib.h is kv_client.cpp.
//
// It believes only kvctl (SPEC §8): an answer without the X-Kvctl-Revision
// header every kvctl server sends is "not a kvctl server" (Unavailable),
// whatever its status, and a 404 is NotFound only with kvctl's JSON code
// "no_such_key".
//
// Bounded (SPEC §8): an answer is read only up to what it may hold, and one
// that announces more in its Content-Length is refused before its body is
// read (Unavailable, "answer too large"):
//   - a value (GET 200): ClientOptions::max_value_bytes, nothing more;
//   - a listing page, and a transaction's answer: kMaxListingPageBytes, or
//     one item of the largest value if that is more; List asks again for fewer keys when a page would be
//     larger, so only a single item over it fails;
//   - any other answer (a PUT's or compaction's JSON, an error):
//     kMaxOtherAnswerBytes.
// The response head has no length field to check; the whole answer, head
// included, is cut off when the server has sent kMaxHeadBytes more than its
// body may hold (checked a few times a second while a request runs).
//
// On a deadline: ClientOptions::timeout bounds a whole request (connect,
// send, and the whole answer), not each socket operation; Compact has its
// own. When it passes, the request ends as Unavailable ("timed out").
//
// Errors map to the CLI's exit codes (cmd/kvctl/main.cpp): NotFound (404
// no_such_key or no_such_lease), FailedPrecondition (412), InvalidArgument (other 4xx: the
// request was bad, or the credentials are: 401, 403), Unavailable (cannot
// connect, the deadline, TLS failure, not a kvctl server, an answer too
// large, 429 rate limited, or a 5xx). Every message ends with a hint in
// parentheses, as `kvctl: <what> (<hint>)` wants; the server's own JSON
// error text is in it.
//
// With an https:// address the server's certificate is verified against
// `cacert` (else the system's CAs) and must name the host; `cert`/`key`
// present a client certificate. A TLS alert from the server is named
// (OpenSSL's reason, e.g. "tlsv13 alert certificate required"). The token
// goes as "Authorization: Bearer".
// Thread safety: one KvClient per thread (it keeps one connection alive, and
// a watchdog thread of its own).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/change_log.h"
#include "lib/core/key_meta.h"
#include "lib/core/lease.h"
#include "lib/core/status.h"

namespace kvctl::client {

// A listing page may be this large, or one item's worth if that is more.
inline constexpr size_t kMaxListingPageBytes = size_t{64} << 20;
// Any other answer's body: a PUT's or compaction's JSON, an error.
inline constexpr size_t kMaxOtherAnswerBytes = size_t{64} << 10;
// What a response's head (status line, headers) may add to its body.
inline constexpr size_t kMaxHeadBytes = size_t{1} << 20;

struct ClientOptions {
  std::string addr = "http://127.0.0.1:7070";  // "host:port", "http://..." or "https://..."
  // The deadline of one whole request: connect, send, and the whole answer.
  std::chrono::milliseconds timeout{10000};
  std::string token;   // bearer token; "" sends none
  std::string cacert;  // PEM file, https only
  std::string cert;    // PEM file, https only, with key
  std::string key;
  // The largest value a GET may bring back (limits.max_value_bytes).
  size_t max_value_bytes = size_t{1} << 20;
};

// Whether `options` can work before anything is sent: TLS files only with
// https://, a certificate together with its key, every file readable.
// InvalidArgument naming the setting otherwise.
core::Status CheckClientOptions(const ClientOptions& options);

struct Condition {
  std::optional<uint64_t> if_revision;  // If-Match
  bool create_only = false;             // If-None-Match: *
};

struct Value {
  std::string bytes;
  uint64_t revision = 0;
  core::KeyMeta meta;  // from X-Kvctl-Create-Revision, -Version, -Lease
};

struct PutReply {
  uint64_t revision = 0;
  bool created = false;
};

struct Item {
  std::string key;
  std::string value;
  uint64_t revision = 0;
  core::KeyMeta meta;
};

struct Page {
  std::vector<Item> items;
  std::optional<std::string> next;  // pass as `after` for the next page
  uint64_t revision = 0;  // the store revision the page reflects: watch from the one after it
};

// A transaction's answer (POST /v1/txn): one result per op that ran.
struct TxnOpReply {
  enum class Kind { kPut, kDelete, kGet };
  Kind kind = Kind::kGet;
  uint64_t revision = 0;  // put: the key's revision after it
  core::KeyMeta meta;     // put: its create revision and version
  uint64_t deleted = 0;   // delete: how many keys it deleted
  std::vector<Item> items;  // get: the keys found
  bool more = false;        // get of a prefix: more keys than its limit
};

struct TxnReply {
  bool succeeded = false;  // every compare held: the success ops ran
  uint64_t revision = 0;
  std::vector<TxnOpReply> results;
  std::string json;  // the server's answer as it came, for -o json
};

class KvClient {
 public:
  explicit KvClient(ClientOptions options);
  ~KvClient();
  KvClient(const KvClient&) = delete;
  KvClient& operator=(const KvClient&) = delete;

  core::Result<Value> Get(std::string_view key);
  // `lease` != 0 attaches the key to that lease (PUT ?lease=ID; NotFound
  // when it is not alive).
  core::Result<PutReply> Put(std::string_view key, std::string_view value, const Condition& cond = {},
                             uint64_t lease = 0);
  core::Status Delete(std::string_view key, const Condition& cond = {});
  // At most `limit` items; fewer when that many could make a page larger
  // than its bound (see above): go on from `next` while it is set.
  core::Result<Page> List(std::string_view prefix, const std::optional<std::string>& after, size_t limit,
                          bool keys_only);

  // POST /v1/txn with `body`, the transaction's JSON as the server takes it
  // (SPEC §6): sent as it is, checked by the server. A transaction whose
  // compares failed is a reply with succeeded false, not an error.
  // NotFound: a put names a lease that does not exist; InvalidArgument: the
  // server refused the body (400 bad_txn, 413) or a grant (403). The answer
  // is bounded as a listing page is.
  core::Result<TxnReply> Txn(std::string_view body);
  // Leases (SPEC §6): NotFound when the lease is not alive (404
  // no_such_lease). Grant and KeepAlive fill id and ttl; Show also
  // remaining and keys; Leases every lease's id, ttl and remaining.
  core::Result<core::LeaseInfo> LeaseGrant(int64_t ttl_seconds);
  core::Result<core::LeaseInfo> LeaseKeepAlive(uint64_t id);
  // The revision of the revoke (its keys are deleted at it).
  core::Result<uint64_t> LeaseRevoke(uint64_t id);
  core::Result<core::LeaseInfo> LeaseShow(uint64_t id);
  core::Result<std::vector<core::LeaseInfo>> Leases();

  // POST /v1/admin/compact, with a deadline of `wait` rather than the
  // options' timeout (which still bounds connecting), since a compaction
  // of a large log can take far longer than a key request.
  core::Result<core::CompactionStats> Compact(std::chrono::milliseconds wait);

  // GET `path`, an answer of JSON lines of unknown length (a watch): calls
  // `on_line` with each line, without its newline, as it arrives, until the
  // server ends the answer, `on_line` returns false, Cancel() is called or
  // nothing arrives for `idle` (then Unavailable). A line is at most what one
  // event of the largest value takes. `on_head` gets a 200's X-Kvctl-Revision
  // as soon as its head is in. client.timeout bounds connecting and the
  // response head only. A non-200 answer is an error as for every request
  // (410 with code "compacted" is Compacted, naming compact_revision).
  core::Status Stream(std::string path, std::chrono::milliseconds idle,
                      const std::function<void(uint64_t revision)>& on_head,
                      const std::function<bool(std::string_view line)>& on_line);

  // Ends the request in flight, from any thread (a signal handler's thread):
  // Stream returns Ok at once, and every later request fails at once
  // (Unavailable, "cancelled").
  void Cancel();
  bool cancelled() const;

  const std::string& base_url() const { return base_url_; }

 private:
  struct Impl;
  std::string base_url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvctl::client
