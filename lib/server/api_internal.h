// What the api_*.cpp files share and nothing else uses: the route a path
// names, JSON answers, whole numbers and the query string.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/core/status.h"
#include "lib/server/api.h"

namespace kvctl::server {

struct KvApi::RouteMatch {
  Route route = Route::kUnknown;
  std::string_view allow;    // the methods the route answers
  std::string_view tail;     // for kKey: the raw (encoded) key; for kLease*: the id as written
};

// What Finish needs of a request: views into the request and its
// admission, or into an AsyncWrite.
struct KvApi::Exchange {
  std::chrono::steady_clock::time_point started;
  Route route = Route::kUnknown;
  std::string_view method;
  std::string_view request_id;
  std::string_view remote;
  size_t bytes_in = 0;
  const Principal* caller = nullptr;  // lives as long as the API
};

// An async write (or a waiting long poll) outlives its request: what its
// answer needs, owned.
struct KvApi::AsyncWrite {
  std::chrono::steady_clock::time_point started;
  std::string method;
  std::string request_id;
  std::string remote;
  size_t bytes_in = 0;
  const Principal* caller = nullptr;
  std::string key;
  Route route = Route::kKey;

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

}  // namespace api
}  // namespace kvctl::server
