// The file store's leases (SPEC §6, lease.h): the table of leases alive,
// the keys attached to each, and the clock that ends them.
//
// - A grant and an end are log records at revisions of their own (a lease
//   end with the deletes of its keys is one TRANSACTION record), queued
//   and made durable like any write; keepalives only move a deadline in
//   memory. Recovery rebuilds the table from the records (and the
//   snapshot's lease grants), and Start gives every lease its full TTL
//   again: a restart never ends a lease early.
// - The clock is one thread waiting for the earliest deadline (an ordered
//   set of deadlines, so expiry looks at the leases due and nothing else,
//   never at the keys of others). A lease due is ended with its keys'
//   deletes at once, through the write path; the answer to no one waits.
#include "lib/core/store.h"

namespace kvctl::core {
namespace {

int64_t SecondsLeft(std::chrono::steady_clock::time_point deadline, std::chrono::steady_clock::time_point now) {
  if (deadline <= now) return 0;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
  return (left + 999) / 1000;  // rounded up: a lease with 0.2 s left is not yet gone
}

}  // namespace

Status Store::CheckLeaseLocked(uint64_t lease) const {
  if (lease == 0) return Status::Ok();
  std::lock_guard lock(lease_mu_);
  return leases_.contains(lease) ? Status::Ok() : NoSuchLease(lease);
}

void Store::ReattachLocked(std::string_view key, uint64_t from, uint64_t to) {
  if (from == to) return;
  std::lock_guard lock(lease_mu_);
  if (from != 0) {
    if (auto it = leases_.find(from); it != leases_.end()) {
      if (auto k = it->second.keys.find(key); k != it->second.keys.end()) it->second.keys.erase(k);
    }
  }
  if (to != 0) {
    if (auto it = leases_.find(to); it != leases_.end()) it->second.keys.emplace(key);
  }
}

void Store::ApplyRecoveredLease(const LogRecord& record) {
  if (record.type == RecordType::kPut) {
    if (record.has_meta && record.meta.lease != 0) {
      if (auto it = leases_.find(record.meta.lease); it != leases_.end()) it->second.keys.emplace(record.key);
    }
    return;
  }
  LeaseRecord lease;
  if (ChangesKey(record.type) || !DecodeLeaseRecord(record, &lease)) return;
  if (record.type == RecordType::kLeaseGrant) {
    leases_[lease.id].ttl = lease.ttl;
  } else {
    leases_.erase(lease.id);  // its keys' deletes follow as records of their own
  }
}

void Store::StartLeaseClock() {
  {
    std::lock_guard lock(lease_mu_);
    const auto now = LeaseClock::now();
    for (auto& [id, lease] : leases_) {
      lease.deadline = now + std::chrono::seconds(lease.ttl);
      lease_deadlines_.emplace(lease.deadline, id);
    }
    lease_clock_stop_ = false;
  }
  lease_clock_ = std::thread([this] { LeaseClockLoop(); });
}

void Store::StopLeaseClock() {
  {
    std::lock_guard lock(lease_mu_);
    lease_clock_stop_ = true;
  }
  lease_cv_.notify_all();
  if (lease_clock_.joinable()) lease_clock_.join();
}

void Store::LeaseClockLoop() {
  std::unique_lock lock(lease_mu_);
  while (!lease_clock_stop_) {
    if (lease_deadlines_.empty()) {
      lease_cv_.wait(lock);
      continue;
    }
    const auto [when, id] = *lease_deadlines_.begin();
    if (LeaseClock::now() < when) {
      lease_cv_.wait_until(lock, when);
      continue;
    }
    lock.unlock();
    bool refused = false;
    {
      std::lock_guard write_lock(write_mu_);
      if (!refused_.ok()) {
        refused = true;  // writes stopped (a failed log, shutdown): nothing can end durably now
      } else if (auto ended = EndLeaseLocked(id, LeaseEndReason::kExpired, when); ended && *ended != 0) {
        ++leases_expired_;
      }
    }
    lock.lock();
    if (refused) {
      // Leases stay as they are until the store closes; a restart gives
      // them their TTL again.
      lease_cv_.wait(lock, [&] { return lease_clock_stop_; });
    }
  }
}

Result<std::pair<LeaseInfo, uint64_t>> Store::BeginLeaseGrant(int64_t ttl_seconds, uint64_t id) {
  if (Status s = CheckLeaseTtl(ttl_seconds); !s.ok()) return s;
  if (Status s = CheckLeaseId(id); !s.ok()) return s;
  std::lock_guard lock(write_mu_);
  if (!refused_.ok()) return refused_;
  uint64_t revision = 0;
  {
    std::lock_guard lease_lock(lease_mu_);
    if (id != 0 && leases_.contains(id)) return LeaseExists(id);
    // Random, so ids do not collide across servers or restarts (one in use
    // is drawn again), and below 2^53: a JSON number that jq and JavaScript
    // read exactly (etcd's ids are int64s; these are a subset of them).
    while (id == 0 || leases_.contains(id)) id = lease_ids_() & kMaxLeaseId;
    revision = next_revision_++;
    Lease& lease = leases_[id];
    lease.ttl = ttl_seconds;
    lease.deadline = LeaseClock::now() + std::chrono::seconds(ttl_seconds);
    const bool earliest = lease_deadlines_.empty() || lease.deadline < lease_deadlines_.begin()->first;
    lease_deadlines_.emplace(lease.deadline, id);
    if (earliest) lease_cv_.notify_all();
  }
  std::vector<Change> grant;
  grant.push_back(Change{revision, RecordType::kLeaseGrant, LeaseGrantKey(id), LeaseTtlValue(ttl_seconds), {}});
  QueueLocked(std::move(grant));
  ++leases_granted_;
  return std::pair{LeaseInfo{id, ttl_seconds, ttl_seconds, {}}, revision};
}

Result<uint64_t> Store::EndLeaseLocked(uint64_t id, LeaseEndReason reason,
                                       std::optional<LeaseClock::time_point> due_by) {
  std::set<std::string, std::less<>> attached;
  {
    std::lock_guard lease_lock(lease_mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return due_by ? Result<uint64_t>(uint64_t{0}) : Result<uint64_t>(NoSuchLease(id));
    if (due_by && it->second.deadline > *due_by) return uint64_t{0};  // kept alive meanwhile
    attached.swap(it->second.keys);
    lease_deadlines_.erase({it->second.deadline, id});
    leases_.erase(it);
  }
  const uint64_t revision = next_revision_++;
  std::vector<Change> changes;
  changes.push_back(Change{revision, RecordType::kLeaseEnd, LeaseEndKey(id, reason), {}, {}});
  for (const std::string& key : attached) {
    const Current cur = LatestLocked(key);
    if (!cur.value || cur.meta.lease != id) continue;  // moved off it, or gone
    auto p = pending_.find(key);
    if (p == pending_.end()) p = pending_.emplace(key, Pending{}).first;
    p->second.revision = revision;
    p->second.value.reset();
    changes.push_back(Change{revision, RecordType::kDelete, key, {}, {}});
  }
  QueueLocked(std::move(changes));
  return revision;
}

void Store::LeaseGrantAsync(int64_t ttl_seconds, uint64_t id, LeaseDone done) {
  auto begun = BeginLeaseGrant(ttl_seconds, id);
  if (!begun) return done(begun.error());
  WhenDurable(begun->second, [info = std::move(begun->first), done = std::move(done)](const Status& s) {
    if (s.ok()) {
      done(info);
    } else {
      done(s);
    }
  });
}

void Store::LeaseRevokeAsync(uint64_t id, RevokeDone done) {
  Result<uint64_t> ended = [&]() -> Result<uint64_t> {
    std::lock_guard lock(write_mu_);
    if (!refused_.ok()) return refused_;
    return EndLeaseLocked(id, LeaseEndReason::kRevoked);
  }();
  if (!ended) return done(ended.error());
  ++leases_revoked_;
  const uint64_t revision = *ended;
  WhenDurable(revision, [revision, done = std::move(done)](const Status& s) {
    if (s.ok()) {
      done(revision);
    } else {
      done(s);
    }
  });
}

void Store::LeaseKeepAliveAsync(uint64_t id, LeaseDone done) {
  done([&]() -> Result<LeaseInfo> {
    std::lock_guard lock(lease_mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return NoSuchLease(id);
    Lease& lease = it->second;
    lease_deadlines_.erase({lease.deadline, id});
    lease.deadline = LeaseClock::now() + std::chrono::seconds(lease.ttl);
    lease_deadlines_.emplace(lease.deadline, id);
    ++lease_keepalives_;
    return LeaseInfo{id, lease.ttl, lease.ttl, {}};
  }());
}

void Store::LeaseTimeToLiveAsync(uint64_t id, LeaseDone done) {
  done([&]() -> Result<LeaseInfo> {
    std::lock_guard lock(lease_mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return NoSuchLease(id);
    LeaseInfo info{id, it->second.ttl, SecondsLeft(it->second.deadline, LeaseClock::now()), {}};
    for (const std::string& key : it->second.keys) {
      // What readers see: a key still attached (set) lists as the map has it.
      if (auto item = map_.Get(key); item && item->meta.lease == id) info.keys.push_back(key);
    }
    return info;
  }());
}

void Store::LeasesAsync(LeasesDone done) {
  std::vector<LeaseInfo> out;
  {
    std::lock_guard lock(lease_mu_);
    out.reserve(leases_.size());
    const auto now = LeaseClock::now();
    for (const auto& [id, lease] : leases_) out.push_back({id, lease.ttl, SecondsLeft(lease.deadline, now), {}});
  }
  std::sort(out.begin(), out.end(), [](const LeaseInfo& a, const LeaseInfo& b) { return a.id < b.id; });
  done(std::move(out));
}

LeaseStats Store::lease_stats() const {
  LeaseStats stats;
  {
    std::lock_guard lock(lease_mu_);
    stats.leases = leases_.size();
  }
  stats.granted = leases_granted_.load();
  stats.revoked = leases_revoked_.load();
  stats.expired = leases_expired_.load();
  stats.keepalives = lease_keepalives_.load();
  return stats;
}

}  // namespace kvctl::core
