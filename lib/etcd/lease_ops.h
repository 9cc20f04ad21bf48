// etcd's lease calls over a KvStore, with no wire format: grant, revoke,
// keepalive, time-to-live and the list, with etcd's answers for a lease
// that is not alive and its errors. Each answers through `done` exactly
// once: at once when refused, else from the store's thread once the store
// answered (a grant and a revoke once durable). A face checks the caller's
// grants first, and writes the reply its own way.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/kv_store.h"
#include "lib/etcd/types.h"

namespace kvctl::server::etcd {

struct LeaseGrantReply {
  uint64_t revision = 0;
  int64_t id = 0, ttl = 0;
};
// `ttl` below etcd's minimum (2 s) is granted that; `id` 0: the store picks.
void LeaseGrant(core::KvStore& store, int64_t ttl, int64_t id, Done<LeaseGrantReply> done);

struct LeaseRevokeReply {
  uint64_t revision = 0;
};
void LeaseRevoke(core::KvStore& store, int64_t id, Done<LeaseRevokeReply> done);

struct LeaseKeepAliveReply {
  uint64_t revision = 0;
  int64_t id = 0;
  int64_t ttl = 0;  // 0: the lease is not alive (etcd answers so, not with an error)
};
void LeaseKeepAlive(core::KvStore& store, int64_t id, Done<LeaseKeepAliveReply> done);

struct LeaseTimeToLiveReply {
  uint64_t revision = 0;
  int64_t id = 0;
  int64_t ttl = -1;  // seconds left; -1: not alive
  int64_t granted_ttl = 0;
  std::vector<std::string> keys;  // with `keys` asked only
};
void LeaseTimeToLive(core::KvStore& store, int64_t id, bool keys, Done<LeaseTimeToLiveReply> done);

struct LeasesReply {
  uint64_t revision = 0;
  std::vector<int64_t> ids;
};
void Leases(core::KvStore& store, Done<LeasesReply> done);

}  // namespace kvctl::server::etcd
