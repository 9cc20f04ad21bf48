// What etcd's API means, apart from any wire format: the options both etcd
// faces (the JSON gateway, lib/server/etcd_api.h; gRPC, lib/grpc) answer with, etcd's
// errors as gRPC codes and messages, and the fields that shape a range.
// A face reads its requests into these, and writes them out its own way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::server {

struct EtcdOptions {
  // Every answer's header.cluster_id and member_id: stable for one data
  // dir (or database) and listener (KvServer derives them).
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::string name = "kvctl";
  std::string client_url;  // "http://127.0.0.1:2379", for cluster/member/list
  size_t max_key_bytes = 1024;
  size_t max_value_bytes = 1 << 20;
  size_t max_txn_ops = 128;
};

namespace etcd {

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

// grpc-gateway 1.x's HTTP status for a gRPC code (what etcd's JSON API
// answers with, and what kvctl logs for a gRPC call).
int HttpStatusOf(int grpc_code);
// gRPC's name of a code: "OK", "PERMISSION_DENIED", ... ("UNKNOWN" for a
// number gRPC does not define).
const char* GrpcCodeName(int grpc_code);
inline constexpr int kGrpcCodes = 17;  // OK (0) to UNAUTHENTICATED (16)

// An etcd error before it is an answer.
struct Error {
  int code = kInternal;
  std::string message;
};

// How an operation that may wait answers: the error, or the reply.
template <typename Reply>
using Done = std::function<void(std::optional<Error>, Reply)>;

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
// etcd's answers about who is calling (etcd 3.4's rpctypes): clients match
// them by message (clientv3 authenticates again on an invalid token), so
// they are etcd's words exactly.
inline Error UserEmpty() { return {kInvalidArgument, "etcdserver: user name is empty"}; }
inline Error InvalidAuthToken() { return {kUnauthenticated, "etcdserver: invalid auth token"}; }
inline Error AuthFailed() {
  return {kInvalidArgument, "etcdserver: authentication failed, invalid user ID or password"};
}
inline Error AuthNotEnabled() { return {kFailedPrecondition, "etcdserver: authentication is not enabled"}; }
inline Error TooManyRequests() { return {kResourceExhausted, "etcdserver: too many requests"}; }

// "\0" as a range end: every key from the start key on.
inline bool IsFromKeyOn(std::string_view range_end) { return range_end == std::string_view("\0", 1); }
// The smallest key above every key starting with `prefix` ("" when there
// is none: every byte is 0xff), etcd's prefix range end.
std::string PrefixEnd(std::string_view prefix);
// When [key, range_end) is exactly the keys under one prefix, that prefix.
std::optional<std::string> AsPrefix(std::string_view key, std::string_view range_end);

// A range's fields that shape its answer (a range in a txn has them too).
struct RangeShape {
  int64_t limit = 0;  // 0 or negative: no limit
  int sort_order = 0, sort_target = 0;
  bool keys_only = false, count_only = false;
  int64_t min_mod = 0, max_mod = 0, min_create = 0, max_create = 0;
};

}  // namespace etcd
}  // namespace kvctl::server
