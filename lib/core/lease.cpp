#include "lib/core/lease.h"

#include <fmt/format.h>

namespace kvctl::core {

Status NoSuchLease(uint64_t id) {
  return Status::NotFound(fmt::format("lease {} does not exist: it expired or was revoked, or was never granted", id));
}

Status CheckLeaseTtl(int64_t ttl_seconds) {
  if (ttl_seconds >= kMinLeaseTtl && ttl_seconds <= kMaxLeaseTtl) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("a lease's TTL is {} to {} seconds (a year); got {}", kMinLeaseTtl, kMaxLeaseTtl, ttl_seconds));
}

Status CheckLeaseId(uint64_t id) {
  if (id <= kMaxChosenLeaseId) return Status::Ok();
  return Status::InvalidArgument(
      fmt::format("a lease id is 1 to {} (0: the server picks one); got {}", kMaxChosenLeaseId, id));
}

Status LeaseExists(uint64_t id) {
  return Status::FailedPrecondition(
      fmt::format("lease {} already exists: grant it another id, or 0 for the server to pick one", id));
}

}  // namespace kvctl::core
