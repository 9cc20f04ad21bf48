// Leases (SPEC §6): a key attached to a lease lives while its owner keeps
// the lease alive; when the lease expires or is revoked, all its keys are
// deleted as one change, which watchers see. The shape is etcd's.
//
// What a face needs to know about one; the store owns the table, the
// clock and the log records (log_format.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/status.h"

namespace kvctl::core {

// TTLs a lease may be granted with, in seconds: 1 s to a year.
inline constexpr int64_t kMinLeaseTtl = 1;
inline constexpr int64_t kMaxLeaseTtl = 365 * 24 * 3600;
// Lease ids the store draws are below 2^53 (a mask), so a JSON number holds
// one exactly. A caller may choose its own (etcd's clients may), up to
// int64's maximum: etcd's ids are int64s, and PostgreSQL keeps them as bigint.
inline constexpr uint64_t kMaxLeaseId = (uint64_t{1} << 53) - 1;
inline constexpr uint64_t kMaxChosenLeaseId = (uint64_t{1} << 63) - 1;

struct LeaseInfo {
  uint64_t id = 0;
  int64_t ttl = 0;        // granted, seconds
  int64_t remaining = 0;  // seconds until it expires unless kept alive (rounded up)
  std::vector<std::string> keys;  // attached keys, sorted (LeaseTimeToLive only)
};

struct LeaseStats {
  uint64_t leases = 0;      // alive now
  uint64_t granted = 0;     // by this server, in total
  uint64_t revoked = 0;
  uint64_t expired = 0;
  uint64_t keepalives = 0;
};

// NotFound for a lease id that is not alive, as every backend says it.
Status NoSuchLease(uint64_t id);
// InvalidArgument for a TTL outside [kMinLeaseTtl, kMaxLeaseTtl].
Status CheckLeaseTtl(int64_t ttl_seconds);
// InvalidArgument for a chosen id above kMaxChosenLeaseId (0: the store picks).
Status CheckLeaseId(uint64_t id);
// FailedPrecondition for a grant naming an id that is alive, as every
// backend says it.
Status LeaseExists(uint64_t id);

}  // namespace kvctl::core
