// What the api_*.cpp files share and nothing else uses: the route a path
// names, JSON answers, whole numbers and the query string.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/core/key_meta.h"
#include "lib/core/status.h"
#include "lib/server/api.h"

namespace kvctl::server {

struct KvApi::RouteMatch {
  Route route = Route::kUnknown;
  std::string_view allow;    // the methods the route answers
  std::string_view tail;     // for kKey: the raw (encoded) key; for kLease*: the id as written
};

// An async write (or a waiting long poll) outlives its request: what its
// answer needs, owned.
struct KvApi::AsyncWrite {
  Route route = Route::kKey;
  std::chrono::steady_clock::time_point started;
  std::string method;
  std::string request_id;
  std::string remote;
  size_t bytes_in = 0;
  const Principal* caller = nullptr;
  std::string key;

  Exchange View() const {
    return {started, route, method, request_id, remote, bytes_in, caller};
  }
};

namespace api {

using nlohmann::json;

std::string Dump(const json& j);
HttpResponse Json(int status, const json& body);
bool ParseUint(std::string_view text, uint64_t* out);
// Splits a raw query string into decoded name -> value ('+' is a space).
core::Result<std::map<std::string, std::string>> ParseQuery(std::string_view query);
// One listing item as GET /v1/kv writes it (api_keys.cpp), and a
// transaction's get results too: its fields in nlohmann's (sorted) order,
// "key_base64" beside "key" when the key is not valid UTF-8, "value" in
// base64 unless `value` is null (keys_only).
void AppendListItem(const std::string& key, const std::string* value, uint64_t revision,
                    const core::KeyMeta& meta, std::string* out);
// `bytes` for a message: in double quotes when it is printable text (valid
// UTF-8 without control characters), else as base64 ("base64:...").
std::string QuotedKey(std::string_view bytes);

}  // namespace api
}  // namespace kvctl::server
