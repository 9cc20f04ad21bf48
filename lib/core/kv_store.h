// What the HTTP API needs from a store, whatever keeps it durable: the file
// log (core::Store) or PostgreSQL (pg::PgStore). Both keep every live key in
// a MemTable, which is the read path; they differ in where a write is made
// durable and who judges its condition.
//
// Contract shared by every implementation (SPEC §1):
// - Every change takes the next store-wide revision; a key reports the
//   revision of its last change.
// - PUT of the value a key already holds and DELETE of a missing key change
//   nothing: no revision, no log record.
// - A write is acknowledged (an OK result) only once it is durable. A
//   reader on the same server sees it as soon as the write returns.
// - Put/Delete errors: FailedPrecondition (the condition did not hold),
//   Unavailable (writes refused now; the message says why). Reads never fail
//   for lack of the durable side.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/key_meta.h"
#include "lib/core/lease.h"
#include "lib/core/status.h"
#include "lib/core/txn.h"
#include "lib/core/watch.h"

namespace kvctl::core {

struct Entry {
  std::string value;
  uint64_t revision = 0;  // the revision of the key's last change (its ETag)
  KeyMeta meta;           // create revision, version, lease (SPEC §6)
};

// A conditional write. A missing key has revision 0, so if_revision = 0
// means "only if the key does not exist".
struct Precondition {
  std::optional<uint64_t> if_revision;
  bool create_only = false;  // If-None-Match: *
  bool must_exist = false;   // If-Match: *
};

// Judges `pre` against a key's current state (exists, and its revision when
// it does). OK, or FailedPrecondition saying what the key is at.
Status CheckPrecondition(bool exists, uint64_t revision, const Precondition& pre);

struct PutOutcome {
  uint64_t revision = 0;  // the key's revision after the call
  bool created = false;   // the key did not exist before
  bool changed = false;   // false for a PUT of the value the key already held
};

struct DeleteOutcome {
  bool existed = false;
  uint64_t revision = 0;  // the delete's revision when the key existed
};

struct ListOptions {
  std::string prefix;
  std::optional<std::string> after;  // exclusive cursor: start past this key
  size_t limit = 100;
  bool keys_only = false;
};

struct ListItem {
  std::string key;
  std::string value;  // empty when keys_only
  uint64_t revision = 0;
  KeyMeta meta;
};

struct ListPage {
  std::vector<ListItem> items;
  std::optional<std::string> next;  // the last key returned, when more may follow
  uint64_t store_revision = 0;      // the store revision the page reflects
};

struct StoreStats {
  uint64_t keys = 0;
  uint64_t revision = 0;        // the last revision applied to the map
  uint64_t puts = 0;            // changes committed by this server, by kind
  uint64_t deletes = 0;
  uint64_t commit_batches = 0;  // durable appends / transactions (group commit)
  uint64_t committed_changes = 0;
  uint64_t interval_syncs = 0;
  uint64_t live_bytes = 0;  // what the live keys take as log records (a snapshot's size)
};

// What one compaction did. `compacted` is false when there was nothing to
// do (no history the live state does not already account for).
struct CompactionStats {
  bool compacted = false;
  uint64_t covered_revision = 0;  // the history up to here became a snapshot
  uint64_t bytes_before = 0;      // the whole log on disk, before and after
  uint64_t bytes_after = 0;
  uint64_t records_read = 0;      // records in what was replaced
  uint64_t records_written = 0;   // live keys kept
  uint64_t files_removed = 0;
  double seconds = 0;
};

// One figure of the backend's own, for /metrics (Prometheus text).
struct BackendMetric {
  std::string name;  // kvctl_...
  std::string help;
  std::string type;  // "gauge" or "counter"
  double value = 0;
};

class KvStore {
 public:
  virtual ~KvStore() = default;

  // `lease`: the lease the key is attached to after the PUT (0: none, as
  // etcd's put without a lease detaches the key); NotFound when no such
  // lease is alive. A PUT of the value and lease the key already has
  // changes nothing.
  virtual Result<PutOutcome> Put(std::string_view key, std::string_view value,
                                 const Precondition& pre = {}, uint64_t lease = 0) = 0;
  virtual Result<DeleteOutcome> Delete(std::string_view key, const Precondition& pre = {}) = 0;
  // The same writes without blocking the caller, for event loops: `done`
  // runs exactly once with what Put/Delete would return, either at once on
  // the calling thread (nothing to wait for: a refusal, a failed condition,
  // an unchanged value) or later on the store's committer thread, once the
  // change is durable or failed. No thread waits meanwhile. `done` must be
  // quick and must not write to the store.
  using PutDone = std::function<void(Result<PutOutcome>)>;
  using DeleteDone = std::function<void(Result<DeleteOutcome>)>;
  virtual void PutAsync(std::string_view key, std::string_view value, const Precondition& pre,
                        uint64_t lease, PutDone done) = 0;
  virtual void DeleteAsync(std::string_view key, const Precondition& pre, DeleteDone done) = 0;
  // A transaction (txn.h): its compares judged together against the latest
  // state, then its success or failure ops, every write at one revision,
  // durable as one record before the answer. A transaction whose writes
  // change nothing takes no revision and writes nothing. Errors:
  // InvalidArgument (ValidateTxn's, or a delete-prefix over too many keys),
  // NotFound (a put names a lease that does not exist), Unavailable.
  // TxnAsync answers like PutAsync.
  using TxnDone = std::function<void(Result<TxnResult>)>;
  virtual Result<TxnResult> Txn(const TxnRequest& request) = 0;
  virtual void TxnAsync(const TxnRequest& request, TxnDone done) = 0;
  // Leases (lease.h). A grant and a revoke are log records, each at its
  // own revision, durable before the answer; a revoke (or the store's own
  // expiry) deletes every key attached to the lease in that one revision.
  // Keepalives are not logged: after a restart every lease starts its
  // full TTL again, so a restart never expires one early. Errors:
  // InvalidArgument (a TTL out of range), NotFound (no such lease alive),
  // Unavailable. The async forms answer like PutAsync.
  using LeaseDone = std::function<void(Result<LeaseInfo>)>;
  using RevokeDone = std::function<void(Result<uint64_t>)>;  // the revoke's revision
  using LeasesDone = std::function<void(Result<std::vector<LeaseInfo>>)>;
  // `id`: the new lease's id, chosen by the caller (etcd's clients may
  // choose), or 0 for the store to pick one; FailedPrecondition when a
  // lease with that id is alive (LeaseExists).
  virtual void LeaseGrantAsync(int64_t ttl_seconds, uint64_t id, LeaseDone done) = 0;
  virtual void LeaseRevokeAsync(uint64_t id, RevokeDone done) = 0;
  // Renews a lease's TTL from now (the file store in memory, at once;
  // PostgreSQL in the database, which every server reads).
  virtual void LeaseKeepAliveAsync(uint64_t id, LeaseDone done) = 0;
  // A lease with its TTL left and its keys.
  virtual void LeaseTimeToLiveAsync(uint64_t id, LeaseDone done) = 0;
  // Every lease alive, by id (without keys).
  virtual void LeasesAsync(LeasesDone done) = 0;
  // The same calls, waiting for the answer.
  Result<LeaseInfo> LeaseKeepAlive(uint64_t id);
  Result<LeaseInfo> LeaseTimeToLive(uint64_t id);
  Result<std::vector<LeaseInfo>> Leases();
  virtual LeaseStats lease_stats() const = 0;
  // NotFound when the key does not exist. `at_revision`, when given, gets
  // the store revision the read reflects, found or not: a watch from the
  // revision after it misses no change and repeats none.
  virtual Result<Entry> Get(std::string_view key, uint64_t* at_revision = nullptr) const = 0;
  virtual ListPage List(const ListOptions& options) const = 0;

  // OK while writes are accepted, else why not (for /readyz).
  virtual Status Writable() const = 0;
  // The last revision this server has applied to its map.
  virtual uint64_t revision() const = 0;
  virtual StoreStats stats() const = 0;
  virtual std::vector<BackendMetric> BackendMetrics() const { return {}; }

  // Drops history the live state no longer needs (POST /v1/admin/compact),
  // keeping what storage.history_retention asks for watchers; readers and
  // writers go on. A second call waits for the first.
  virtual Result<CompactionStats> Compact() = 0;

  // A watcher of every change matching `filter` from revision `from` on
  // (0: the next one), in revision order (watch.h). Compacted when `from`
  // is below HistoryFloor(); Unavailable while the store is not serving.
  virtual Result<std::shared_ptr<Watcher>> Watch(const WatchFilter& filter, uint64_t from,
                                                 std::function<void()> notify) = 0;
  // The oldest revision a watch can start from.
  virtual uint64_t HistoryFloor() const = 0;
  virtual WatchStats watch_stats() const = 0;

  // Finishes what is in flight and releases the durable side; later writes
  // are refused. Returns the first error the durable side reported, if any.
  virtual Status Close() = 0;

  // Whether this server takes writes forwarded by its peers with `token`
  // (POST /v1/peer/writes; forwarded_writes.h): only a PostgreSQL server
  // that is its database's writer does (pg_store.h, "One writer").
  virtual bool AcceptsForwardedWrites(std::string_view /*token*/) const { return false; }
};

}  // namespace kvctl::core
