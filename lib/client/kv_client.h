// The HTTP client of `kvctl put/get/del` (and later `bench`). The only file
// on the client side that includes httplib.h is kv_client.cpp.
//
// Errors map to the CLI's exit codes (cmd/kvctl/main.cpp): NotFound (404),
// FailedPrecondition (412), InvalidArgument (other 4xx: the request was
// bad, or the credentials are: 401, 403), Unavailable (cannot connect,
// time-out, TLS failure, 429 rate limited, or a 5xx). Messages carry the
// server's own JSON error text.
//
// With an https:// address the server's certificate is verified against
// `cacert` (else the system's CAs) and must name the host; `cert`/`key`
// present a client certificate. The token goes as "Authorization: Bearer".
// Thread safety: one KvClient per thread (it keeps one connection alive).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/change_log.h"
#include "lib/core/status.h"

namespace kvctl::client {

struct ClientOptions {
  std::string addr = "http://127.0.0.1:7070";  // "host:port", "http://..." or "https://..."
  std::chrono::milliseconds timeout{10000};
  std::string token;   // bearer token; "" sends none
  std::string cacert;  // PEM file, https only
  std::string cert;    // PEM file, https only, with key
  std::string key;
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
};

struct PutReply {
  uint64_t revision = 0;
  bool created = false;
};

struct Item {
  std::string key;
  std::string value;
  uint64_t revision = 0;
};

struct Page {
  std::vector<Item> items;
  std::optional<std::string> next;  // pass as `after` for the next page
};

class KvClient {
 public:
  explicit KvClient(ClientOptions options);
  ~KvClient();

  core::Result<Value> Get(std::string_view key);
  core::Result<PutReply> Put(std::string_view key, std::string_view value, const Condition& cond = {});
  core::Status Delete(std::string_view key, const Condition& cond = {});
  core::Result<Page> List(std::string_view prefix, const std::optional<std::string>& after, size_t limit,
                          bool keys_only);

  // POST /v1/admin/compact; waits up to `wait` for the answer, since a
  // compaction of a large log can take far longer than a key request.
  core::Result<core::CompactionStats> Compact(std::chrono::milliseconds wait);

  const std::string& base_url() const { return base_url_; }

 private:
  struct Impl;
  std::chrono::milliseconds options_timeout_{10000};
  std::string base_url_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvctl::client
