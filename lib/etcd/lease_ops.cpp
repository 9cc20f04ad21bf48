#include "lib/etcd/lease_ops.h"

#include <algorithm>

#include "lib/core/lease.h"

namespace kvctl::server::etcd {

namespace {

// etcd's smallest TTL with its default election timeout (1 s): a grant of
// less is granted this.
constexpr int64_t kEtcdMinTtl = 2;

}  // namespace

void LeaseGrant(core::KvStore& store, int64_t ttl, int64_t id, Done<LeaseGrantReply> done) {
  if (id < 0) {
    // etcd takes any int64; kvctl's ids are positive (docs/etcd.md).
    done(Error{kInvalidArgument, "kvctl: a lease ID is positive, or 0 for the server to pick one"}, {});
    return;
  }
  ttl = std::clamp(ttl, kEtcdMinTtl, core::kMaxLeaseTtl);
  store.LeaseGrantAsync(ttl, static_cast<uint64_t>(id), [&store, done = std::move(done)](auto lease) {
    if (!lease) {
      done(lease.error().code() == core::Code::kFailedPrecondition ? LeaseAlreadyExists() : FromStatus(lease.error()),
           {});
      return;
    }
    done(std::nullopt, LeaseGrantReply{store.revision(), static_cast<int64_t>(lease->id), lease->ttl});
  });
}

void LeaseRevoke(core::KvStore& store, int64_t id, Done<LeaseRevokeReply> done) {
  if (id <= 0) {
    done(LeaseNotFound(), {});
    return;
  }
  store.LeaseRevokeAsync(static_cast<uint64_t>(id), [&store, done = std::move(done)](auto revoked) {
    if (!revoked) {
      done(revoked.error().code() == core::Code::kNotFound ? LeaseNotFound() : FromStatus(revoked.error()), {});
      return;
    }
    done(std::nullopt, LeaseRevokeReply{std::max(*revoked, store.revision())});
  });
}

void LeaseKeepAlive(core::KvStore& store, int64_t id, Done<LeaseKeepAliveReply> done) {
  if (id <= 0) {
    done(std::nullopt, LeaseKeepAliveReply{store.revision(), id, 0});
    return;
  }
  store.LeaseKeepAliveAsync(static_cast<uint64_t>(id), [&store, id, done = std::move(done)](auto lease) {
    if (!lease && lease.error().code() != core::Code::kNotFound) {
      done(FromStatus(lease.error()), {});
      return;
    }
    done(std::nullopt, LeaseKeepAliveReply{store.revision(), id, lease ? lease->ttl : 0});
  });
}

void LeaseTimeToLive(core::KvStore& store, int64_t id, bool keys, Done<LeaseTimeToLiveReply> done) {
  if (id <= 0) {
    done(std::nullopt, LeaseTimeToLiveReply{store.revision(), id, -1, 0, {}});
    return;
  }
  store.LeaseTimeToLiveAsync(static_cast<uint64_t>(id), [&store, id, keys, done = std::move(done)](auto lease) {
    if (!lease && lease.error().code() != core::Code::kNotFound) {
      done(FromStatus(lease.error()), {});
      return;
    }
    LeaseTimeToLiveReply reply{store.revision(), id, -1, 0, {}};
    if (lease) {
      reply.ttl = lease->remaining;
      reply.granted_ttl = lease->ttl;
      if (keys) reply.keys = std::move(lease->keys);
    }
    done(std::nullopt, std::move(reply));
  });
}

void Leases(core::KvStore& store, Done<LeasesReply> done) {
  store.LeasesAsync([&store, done = std::move(done)](auto leases) {
    if (!leases) {
      done(FromStatus(leases.error()), {});
      return;
    }
    LeasesReply reply{store.revision(), {}};
    for (const core::LeaseInfo& l : *leases) reply.ids.push_back(static_cast<int64_t>(l.id));
    done(std::nullopt, std::move(reply));
  });
}

}  // namespace kvctl::server::etcd
