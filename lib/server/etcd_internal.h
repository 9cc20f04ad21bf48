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
#include "lib/core/status.h"
#include "lib/server/etcd_api.h"

namespace kvctl::server {

// One etcd request being answered: its route, its parsed body, who sent it.
struct EtcdApi::Call {
  const HttpRequest& request;
  std::string resource;  // after the version prefix: "kv/put", "lease/grant", ...
  nlohmann::json body;   // the request's JSON object ({} for an empty body)
  const Principal* caller = nullptr;
};

// kv/put's fields (etcd_kv.cpp reads them; etcd_api.cpp's HandleAsync
// answers the plain ones).
struct EtcdApi::PutAsk {
  std::string key, value;
  int64_t lease = 0;
  bool prev_kv = false, ignore_value = false, ignore_lease = false;
};

namespace etcd {

using Json = nlohmann::ordered_json;

// gRPC status codes (google.golang.org/grpc/codes) etcd answers with.
enum GrpcCode : int {
  kInvalidArgument = 3,
  kNotFound = 5,
  kPermissionDenied = 7,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kOutOfRange = 11,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
  kUnauthenticated = 16,
};

// An etcd error before it is an answer.
struct Error {
  int code = kInternal;
  std::string message;
};

// grpc-gateway 1.x's HTTP status for a gRPC code.
int HttpStatusOf(int grpc_code);
// {"error": message, "message": message, "code": code} with its HTTP status.
HttpResponse ErrorAnswer(const Error& error);
// A store error in etcd's words: NotFound of a lease is etcd's "requested
// lease not found"; Unavailable is code 14; the rest keep their message.
Error FromStatus(const core::Status& status);

inline Error Unimplemented(std::string what) {
  return {kUnimplemented, "kvctl: not implemented yet: " + std::move(what) + " (see docs/etcd.md)"};
}
inline Error KeyNotProvided() { return {kInvalidArgument, "etcdserver: key is not provided"}; }
inline Error FutureRevision() { return {kOutOfRange, "etcdserver: mvcc: required revision is a future revision"}; }
inline Error CompactedRevision() { return {kOutOfRange, "etcdserver: mvcc: required revision has been compacted"}; }
inline Error LeaseNotFound() { return {kNotFound, "etcdserver: requested lease not found"}; }
inline Error LeaseAlreadyExists() { return {kFailedPrecondition, "etcdserver: lease already exists"}; }
inline Error PermissionDenied() { return {kPermissionDenied, "etcdserver: permission denied"}; }

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
// A key-value as etcd writes it: zero fields omitted, the value too with keys_only.
Json KeyValue(std::string_view key, std::string_view value, uint64_t mod_revision,
              const core::KeyMeta& meta, bool keys_only = false);
HttpResponse Answer(const Json& body);

// "\0" as a range end: every key from the start key on.
inline bool IsFromKeyOn(std::string_view range_end) { return range_end == std::string_view("\0", 1); }
// The smallest key above every key starting with `prefix` ("" when there
// is none: every byte is 0xff), etcd's prefix range end.
std::string PrefixEnd(std::string_view prefix);
// When [key, range_end) is exactly the keys under one prefix, that prefix.
std::optional<std::string> AsPrefix(std::string_view key, std::string_view range_end);

// A consistent read of every key in [key, range_end) (range_end "": the
// key alone; "\0": from key on), in key order, at one store revision
// (core::ReadRange).
using RangeRead = core::RangeRead;
RangeRead ReadRange(const core::KvStore& store, const std::string& key, const std::string& range_end,
                    bool keys_only);

// kv/range's fields that shape its answer (a range in a txn has them too).
struct RangeShape {
  int64_t limit = 0;  // 0 or negative: no limit
  int sort_order = 0, sort_target = 0;
  bool keys_only = false, count_only = false;
  int64_t min_mod = 0, max_mod = 0, min_create = 0, max_create = 0;
};
std::optional<Error> ReadRangeShape(const nlohmann::json& body, RangeShape* out);
// Adds `kvs`, `more` and `count` to a range's answer as etcd does: `count`
// is how many keys `items` (the range, in key order) holds; then the
// revision filters, the sort and the limit apply. `more`: the range had
// more keys than `items`.
void AddRangeAnswer(const RangeShape& shape, std::vector<core::ListItem> items, bool more, Json* body);

// A kvctl transaction op and compare, every field named.
inline core::TxnOp TxnOpOf(core::TxnOp::Kind kind, std::string key, std::string value = {}, uint64_t lease = 0) {
  core::TxnOp op;
  op.kind = kind;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

// Whether `caller` (null: auth is off) may `op` every key of the range.
bool RangePermitted(const Principal* caller, Op op, const std::string& key, const std::string& range_end);

}  // namespace etcd
}  // namespace kvctl::server
