#include "lib/core/kv_store.h"

#include <future>

#include <fmt/format.h>

namespace kvctl::core {

Status CheckPrecondition(bool exists, uint64_t revision, const Precondition& pre) {
  if (pre.create_only && exists) {
    return Status::FailedPrecondition(
        fmt::format("key already exists (revision {}); create-only write refused", revision));
  }
  if (pre.must_exist && !exists) {
    return Status::FailedPrecondition("key does not exist; the write required it to");
  }
  if (pre.if_revision) {
    const uint64_t have = exists ? revision : 0;
    if (have != *pre.if_revision) {
      return Status::FailedPrecondition(
          exists ? fmt::format("key is at revision {}, not {}", have, *pre.if_revision)
                 : fmt::format("key does not exist, so it is not at revision {}",
                               *pre.if_revision));
    }
  }
  return Status::Ok();
}

namespace {

// Runs an async call and waits for its answer.
template <typename T, typename Start>
Result<T> Await(Start start) {
  std::promise<Result<T>> answer;
  std::future<Result<T>> ready = answer.get_future();
  start([&answer](Result<T> r) { answer.set_value(std::move(r)); });
  return ready.get();
}

}  // namespace

Result<LeaseInfo> KvStore::LeaseKeepAlive(uint64_t id) {
  return Await<LeaseInfo>([&](LeaseDone done) { LeaseKeepAliveAsync(id, std::move(done)); });
}

Result<LeaseInfo> KvStore::LeaseTimeToLive(uint64_t id) {
  return Await<LeaseInfo>([&](LeaseDone done) { LeaseTimeToLiveAsync(id, std::move(done)); });
}

Result<std::vector<LeaseInfo>> KvStore::Leases() {
  return Await<std::vector<LeaseInfo>>([&](LeasesDone done) { LeasesAsync(std::move(done)); });
}

}  // namespace kvctl::core
