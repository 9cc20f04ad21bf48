// What the etcd_*.cpp files share and nothing else uses: one request being
// answered, etcd's error answers, and reading and writing etcd's JSON
// (base64 bytes, int64 as strings or numbers, enums as names or numbers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/core/key_range.h"
#include "lib/core/kv_store.h"
#include "lib/etcd/access.h"
#include "lib/etcd/kv_ops.h"
#include "lib/server/etcd_api.h"
#include "lib/etcd/types.h"

namespace kvctl::server {

// One etcd request being answered: its route, its parsed body, who sent it.
struct EtcdApi::Call {
  const HttpRequest& request;
  std::string resource;  // after the version prefix: "kv/put", "lease/grant", ...
  nlohmann::json body;   // the request's JSON object ({} for an empty body)
  const Principal* caller = nullptr;
};

namespace etcd {

using Json = nlohmann::ordered_json;

// {"error": message, "message": message, "code": code} with its HTTP status.
HttpResponse ErrorAnswer(const Error& error);
// Readers of a request object's fields. An absent or null field is its
// zero value; a field of the wrong type is code 3, as grpc-gateway says.
std::optional<Error> ReadBytes(const nlohmann::json& object, const char* field, std::string* out);
std::optional<Error> ReadInt(const nlohmann::json& object, const char* field, int64_t* out);
std::optional<Error> ReadBool(const nlohmann::json& object, const char* field, bool* out);
// An enum by name (`names[i]` is value i) or by number.
std::optional<Error> ReadEnum(const nlohmann::json& object, const char* field, const char* enum_name,
                              const std::vector<std::string_view>& names, int* out);

// A response header {"cluster_id","member_id","revision","raft_term"}.
Json Header(const EtcdOptions& options, uint64_t revision);
// The text of an answer that is its header alone ({"header":{...}}).
std::string HeaderOnlyBody(const EtcdOptions& options, uint64_t revision);
// A key-value as etcd writes it: zero fields omitted, the value too with keys_only.
Json KeyValue(std::string_view key, std::string_view value, uint64_t mod_revision,
              const core::KeyMeta& meta, bool keys_only = false);
HttpResponse Answer(const Json& body);

// A range's shaping fields (limit, sort, filters) from its request object.
std::optional<Error> ReadRangeShape(const nlohmann::json& body, RangeShape* out);
// Adds a range's `kvs` (values left out with keys_only), `more` and
// `count` to its answer.
void AddRangeReply(const RangeReply& reply, bool keys_only, Json* body);

}  // namespace etcd
}  // namespace kvctl::server
