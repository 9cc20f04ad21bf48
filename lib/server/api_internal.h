// What the api_*.cpp files share and nothing else uses: the route a path
// names, JSON answers, whole numbers and the query string.
#pragma once

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
  std::string_view tail;     // for kKey: the raw (encoded) key
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
