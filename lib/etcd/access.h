// Whether a caller's grants (lib/access/grants.h) allow an etcd request:
// etcd's ranges and txns judged against kvctl's prefix grants, once, for
// both etcd faces (the JSON gateway, lib/server/etcd_*.cpp, and gRPC,
// lib/grpc). A face asks these after it has read a request and before it
// runs it; a refusal is etcd's PermissionDenied() (types.h), counted by
// the face. A null caller means auth is off: everything is permitted.
//
// The rules are kvctl's own API's (docs/security.md), on etcd's ranges:
// - a range (a read, a delete, a txn's compare, range or delete) needs one
//   grant covering all of [key, range_end): a "\0" end reaches the last
//   key, so only a grant of prefix "" covers it;
// - a put needs write on its key;
// - leases are store-wide but hold no key by themselves: any write grant;
//   a lease's keys are shown only where the caller may read them;
// - compaction is store-wide: admin, as POST /v1/admin/compact;
// - a watch of a prefix with grants on part of it is permitted and sees
//   the events of that part (as a listing of it does); any other watch
//   needs a grant covering its range.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lib/access/grants.h"
#include "lib/etcd/txn_ops.h"
#include "lib/etcd/watch_ops.h"

namespace kvctl::server::etcd {

bool RangePermitted(const access::Principal* caller, access::Op op, std::string_view key,
                    std::string_view range_end);
// Every compare and request of the txn, nested txns included, in both
// branches: read for compares and ranges, write for puts and deletes.
bool TxnPermitted(const access::Principal* caller, const TxnAsk& ask);
bool LeasesPermitted(const access::Principal* caller);
// Drops from a lease's keys those the caller may not read.
void KeepReadable(const access::Principal* caller, std::vector<std::string>* keys);
bool CompactionPermitted(const access::Principal* caller);

// A watch of [key, range_end) (key "" being etcd's smallest key): whether
// it may be opened, and, when the caller may read only part of it, the
// filter its events pass (null: all of them).
struct WatchAccess {
  bool permitted = true;
  KeyFilter readable;
};
WatchAccess WatchPermitted(const access::Principal* caller, std::string_view key, std::string_view range_end);

}  // namespace kvctl::server::etcd
