// The in-memory key-value store with store-wide revisions, made durable
// through a ChangeLog with group commit.
//
// Reads see only committed state: a change reaches the map readers use after
// the log has it (synced, under fsync = "always"), so a reader never sees a
// value that a crash or a failed fsync could take back, and reads never wait
// for the log. Writers are serialized only while they check their condition
// and take a revision (microseconds, no I/O); they then wait for the
// committer thread, which writes every change queued since its last round in
// one append and one sync (group commit), applies them to the map, and wakes
// the writers.
//
// Conditions and idempotence (SPEC §1) are judged against the latest state,
// including changes still on their way to the log; an answer that depends on
// such a change waits until it is durable, so nothing is acknowledged before
// the log holds everything it rests on.
//
// After a failed append or sync the store refuses writes for good
// (Unavailable, with the cause) and keeps serving reads.
//
// Thread safety: every public method may be called from any thread, except
// that ApplyRecovered() must finish before Start().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lib/core/change_log.h"
#include "lib/core/kv_store.h"
#include "lib/core/log_format.h"
#include "lib/core/logger.h"
#include "lib/core/mem_table.h"
#include "lib/core/status.h"

namespace kvctl::core {

struct StoreOptions {
  // With a log that does not sync on append (fsync = "interval"), how often
  // the committer syncs; zero means never (fsync = "never").
  std::chrono::milliseconds sync_interval{0};
  Logger* logger = nullptr;  // NullLogger() when null; says why writes stopped
  // Called by the committer after each group commit with its number of
  // changes (for metrics); must be cheap and must not call the store.
  std::function<void(size_t changes)> on_commit;
  // What the store's watch hub keeps in memory, and its limits.
  WatchHubOptions watch;
};

class Store : public KvStore {
 public:
  explicit Store(StoreOptions options = {});
  ~Store() override;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Recovery: replays one record of the log into the map.
  void ApplyRecovered(const LogRecord& record);
  // Recovery: the log's last revision, which a snapshot can carry past the
  // last record (when the last changes it covers were deletions).
  void NoteRecoveredRevision(uint64_t revision);
  // Starts accepting writes, made durable through `log`.
  void Start(std::unique_ptr<ChangeLog> log);

  // Errors: FailedPrecondition (condition not met), Unavailable (writes
  // refused: not started, closed, or the log failed; the message says why).
  Result<PutOutcome> Put(std::string_view key, std::string_view value,
                         const Precondition& pre = {}, uint64_t lease = 0) override;
  Result<DeleteOutcome> Delete(std::string_view key, const Precondition& pre = {}) override;
  // The async twins (KvStore): `done` runs at once, on the calling thread,
  // when nothing has to wait (a refusal, a failed condition, an unchanged
  // value); otherwise on the committer thread, once the change is durable
  // or the log failed.
  void PutAsync(std::string_view key, std::string_view value, const Precondition& pre, uint64_t lease,
                PutDone done) override;
  void DeleteAsync(std::string_view key, const Precondition& pre, DeleteDone done) override;
  Result<TxnResult> Txn(const TxnRequest& request) override;
  void TxnAsync(const TxnRequest& request, TxnDone done) override;
  void LeaseGrantAsync(int64_t ttl_seconds, uint64_t id, LeaseDone done) override;
  void LeaseRevokeAsync(uint64_t id, RevokeDone done) override;
  // These three answer at once, from memory, on the calling thread.
  void LeaseKeepAliveAsync(uint64_t id, LeaseDone done) override;
  void LeaseTimeToLiveAsync(uint64_t id, LeaseDone done) override;
  void LeasesAsync(LeasesDone done) override;
  LeaseStats lease_stats() const override;

  // NotFound when the key does not exist.
  Result<Entry> Get(std::string_view key, uint64_t* at_revision = nullptr) const override;
  ListPage List(const ListOptions& options) const override;

  // Compacts the log (ChangeLog::Compact); readers and writers go on.
  Result<CompactionStats> Compact() override;
  // Bytes the log holds on disk.
  uint64_t LogDiskBytes() const;

  // Watches over the log's history (the segments after the snapshot) and
  // what the committer publishes. Unavailable before Start().
  Result<std::shared_ptr<Watcher>> Watch(const WatchFilter& filter, uint64_t from,
                                         std::function<void()> notify) override;
  uint64_t HistoryFloor() const override;
  WatchStats watch_stats() const override;

  // OK while writes are accepted, else why not.
  Status Writable() const override;
  uint64_t revision() const override { return committed_revision_.load(); }
  StoreStats stats() const override;
  std::vector<BackendMetric> BackendMetrics() const override;

  // Commits what is queued, syncs and closes the log; later writes are
  // refused. Returns the first error the log reported, if any.
  Status Close() override;

 private:
  struct Pending {
    std::optional<std::string> value;  // nullopt: deleted
    uint64_t revision = 0;
    KeyMeta meta;  // when not deleted
  };
  // Lets pending_ be searched with a string_view, without a std::string
  // made per lookup.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
  };
  struct Current {
    // nullopt: the key does not exist. Points into pending_ or map_, which
    // stay put while write_mu_ is held.
    std::optional<std::string_view> value;
    uint64_t revision = 0;
    KeyMeta meta;  // when it exists
  };

  // The latest state of `key`, pending changes included. Requires
  // write_mu_, which is also what keeps the map from changing underneath
  // (only the committer changes it, holding write_mu_; so Find() is safe).
  Current LatestLocked(std::string_view key) const;
  // Queues a change of `key`, which is now `current`; returns its revision.
  // A PUT attaches the key to `lease` (0: none).
  uint64_t EnqueueLocked(RecordType type, std::string_view key, std::string_view value, const Current& current,
                         uint64_t lease = 0);
  // Queues changes that share one revision (a transaction, a lease's end)
  // together, so the committer takes them in one batch. Requires write_mu_.
  void QueueLocked(std::vector<Change> changes);
  // The locked part of a write: checks its condition and queues the change
  // (or finds it unchanged). The outcome, or why not; BeginDelete also
  // gives the revision to wait for.
  Result<PutOutcome> BeginPut(std::string_view key, std::string_view value, const Precondition& pre,
                              uint64_t lease);
  Result<std::pair<DeleteOutcome, uint64_t>> BeginDelete(std::string_view key, const Precondition& pre);
  // The locked part of a transaction: judges it, runs its ops against the
  // latest state and queues its writes at one revision. The result, and the
  // revision to wait for before answering.
  Result<std::pair<TxnResult, uint64_t>> BeginTxn(const TxnRequest& request);
  // Keys in [start, end) ("" end: to the last key), committed (at most
  // `at_most` of them) or pending, sorted, whether or not they still exist.
  // Requires write_mu_.
  std::vector<std::string> KeysInRangeLocked(std::string_view start, std::string_view end, size_t at_most) const;
  // Whether a compare over a range holds for the latest state (pending
  // changes included), read key by key. Requires write_mu_.
  bool RangeCompareHoldsLocked(const TxnCompare& compare) const;
  Status WaitDurable(uint64_t revision);
  // Runs `then` once `revision` is committed (Ok) or the log failed.
  void WhenDurable(uint64_t revision, std::function<void(const Status&)> then);
  // Why a write waiting on the log is not acknowledged. Requires durable_mu_.
  Status NotDurableLocked() const;
  // Answers every async writer still waiting: the log failed, or it closed.
  void FailWaiters();
  // Leases (store_leases.cpp).
  using LeaseClock = std::chrono::steady_clock;
  struct Lease {
    int64_t ttl = 0;
    LeaseClock::time_point deadline;
    // Keys writes attached to it. One moved off it since may still be
    // listed: its end deletes only keys still attached (their metadata).
    std::set<std::string, std::less<>> keys;
  };
  // NotFound unless `lease` is 0 or alive.
  Status CheckLeaseLocked(uint64_t lease) const;
  // Moves `key` from lease `from` to lease `to` (either 0: none). Requires write_mu_.
  void ReattachLocked(std::string_view key, uint64_t from, uint64_t to);
  Result<std::pair<LeaseInfo, uint64_t>> BeginLeaseGrant(int64_t ttl_seconds, uint64_t id);
  // Ends lease `id`: one revision, its record and the deletes of its keys.
  // With `due_by`, only if its deadline is no later (the clock's check,
  // which a keepalive may have overtaken): 0 then means it is not due.
  // Requires write_mu_.
  Result<uint64_t> EndLeaseLocked(uint64_t id, LeaseEndReason reason,
                                  std::optional<LeaseClock::time_point> due_by = std::nullopt);
  void ApplyRecoveredLease(const LogRecord& record);
  void StartLeaseClock();
  void StopLeaseClock();
  void LeaseClockLoop();
  void CommitLoop();
  void ApplyCommitted(const std::vector<Change>& batch);
  void Fail(const Status& cause);

  const StoreOptions options_;
  Logger& logger_;
  std::unique_ptr<ChangeLog> log_;

  // The committed state, which readers see.
  MemTable map_;

  // Writers: condition checks, revision numbering, the overlay of changes
  // not yet committed. Lock order: write_mu_, then queue_mu_, map_'s lock or
  // durable_mu_.
  mutable std::mutex write_mu_;
  std::unordered_map<std::string, Pending, KeyHash, std::equal_to<>> pending_;
  uint64_t next_revision_ = 1;
  Status refused_ = Status::Unavailable("the store is not open for writes yet");

  // The queue the committer drains.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<Change> queue_;
  bool stopping_ = false;

  // Writers wait here for their revision to be committed.
  std::mutex durable_mu_;
  std::condition_variable durable_cv_;
  std::atomic<uint64_t> committed_revision_{0};
  Status log_failure_;  // guarded by durable_mu_
  // Async writers' callbacks, by the revision each waits for; guarded by
  // durable_mu_, run outside it.
  std::vector<std::pair<uint64_t, std::function<void(const Status&)>>> waiters_;

  std::thread committer_;

  // Leases: the table and the deadlines the clock thread waits for. Lock
  // order: write_mu_, then lease_mu_, then map_'s lock.
  mutable std::mutex lease_mu_;
  std::unordered_map<uint64_t, Lease> leases_;
  std::set<std::pair<LeaseClock::time_point, uint64_t>> lease_deadlines_;
  std::condition_variable lease_cv_;
  bool lease_clock_stop_ = false;
  std::thread lease_clock_;
  std::mt19937_64 lease_ids_{std::random_device{}()};  // guarded by write_mu_
  std::atomic<uint64_t> leases_granted_{0}, leases_revoked_{0}, leases_expired_{0}, lease_keepalives_{0};
  // Set by Start() (before the committer runs), kept until destruction.
  std::unique_ptr<WatchHub> hub_;

  std::atomic<uint64_t> puts_{0}, deletes_{0}, batches_{0}, committed_changes_{0},
      interval_syncs_{0};
};

}  // namespace kvctl::core
