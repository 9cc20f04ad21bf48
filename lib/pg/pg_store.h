// The PostgreSQL backend: a KvStore whose changes are committed in a
// PostgreSQL database that several kvctl servers share. Each server keeps
// every live key in its own MemTable (the read path) and learns the other
// servers' changes from the database.
//
// How writes stay correct across servers
// --------------------------------------
// A write transaction first locks the single row of kv_meta
// (SELECT ... FOR UPDATE), which holds the last revision handed out. Every
// writer of every server takes that lock, so write transactions run one at
// a time, in the order they commit. Holding it, the transaction
//  - reads each key's current row in kv_state and judges the write's
//    condition (If-Match, create-only) and idempotence against it: the
//    database, not this server's memory, decides;
//  - numbers its changes kv_meta.revision + 1, + 2, ... (a transaction's
//    changes all take one number, see below); gives each PUT its
//    key metadata (SPEC §6) from the key's row in kv_state: the same create
//    revision and version + 1, or its own revision and version 1 when the
//    key did not exist; writes kv_state and kv_log (metadata included);
//    stores the new revision in kv_meta; NOTIFYs kvctl_changes;
//  - commits, which releases the lock.
// A transaction that aborts releases the lock without having moved
// kv_meta.revision, and the next writer reads the old value again (READ
// COMMITTED re-reads a row after waiting for its lock), so revisions have
// no gaps.
//
// Why a server can apply others' changes in order, with no gap
// ------------------------------------------------------------
// A sequence hands out numbers before commit, so with a sequence
// revision 8 can become visible before revision 7, and a reader that saw 8
// and moved on would never apply 7. Here numbers come from the locked row:
// revision r+1 is taken only after the transaction that wrote r has
// committed and released the lock, and PostgreSQL makes a commit visible
// to new snapshots before it releases that transaction's locks. So any
// snapshot that sees revision r+1 also sees every revision up to r: what a
// reader sees of kv_log is always a prefix 1..R, and holds all of a
// revision's rows or none (they commit together). A server applies kv_log
// rows with revision > its own applied revision, in order, whole revisions
// at a time, and checks that they follow on with no gap; a gap, or a
// compacted revision past its own, means rows it needs may have been
// compacted away (a transaction's revision in part, which no gap would
// show): it then reloads kv_state.
//
// The price is that commits are serialized across servers, each with its
// own WAL flush while it holds the lock. Each server has one committer
// thread that gathers the writes waiting (group commit) into one
// transaction per round, so the lock is taken once per batch, not once per
// write; a batch of puts and deletes is one statement (batch_write.h: the
// kv_write_batch function, one round trip that commits as it ends).
//
// One writer
// ----------
// With each server committing its own batches, servers added made writes
// slower: their commits queue on the kv_meta lock, each flushing the WAL
// alone, and each batch gathers one server's clients only (measured, 16
// clients: 1 server 4,838 writes/s, 2 servers 2,305, 3 servers 1,380). Two
// known ways out:
//  - Concurrent commits, ordered afterwards (kine): revisions from a
//    sequence, no lock across commits, so PostgreSQL's own group commit
//    gathers every server's; readers wait at a missing revision until it
//    commits or a "gap" row voids it. But a condition would no longer be
//    judged with every earlier change committed: a transaction's compare
//    over a range, or two transactions on different keys, could interleave
//    (write skew) unless every write ran SERIALIZABLE and retried; and
//    every reader pays for gaps with timeouts.
//  - One writer per database, as etcd has one leader (chosen here): one
//    server commits the puts and deletes of all (writer_election.h: a
//    session advisory lock, the holder's URL and a token in kv_writer); the
//    others forward theirs to it (write_forwarder.h, over its native HTTP
//    listener, POST /v1/peer/writes) and answer their clients once they
//    have applied the writer's revision for it (read-your-writes holds).
//    One group commit then gathers every server's writes, and everything
//    above (the kv_meta lock, judging in the database, gap-free revisions,
//    applying in order) is unchanged: the writer is a route, not a
//    guarantee. Two servers that both believe they are the writer, or a
//    server that commits its own writes because it cannot reach the writer,
//    are slower, never wrong. So the failure paths stay simple: the writer
//    dies, its session ends, another server takes the lock within a
//    second, and meanwhile every server commits its own writes; a forward
//    that was not delivered (connection refused, a 4xx or 5xx from a server
//    that is not or no longer the writer) is committed here; a forward
//    whose answer is lost (a timeout, a reset) is answered 503 with its
//    outcome unknown, like a COMMIT without an answer, and is applied
//    everywhere if it did commit. After a failed forward a server commits
//    its own writes for 2 s, then tries the writer again.
//    Transactions and lease calls are still committed by the server that
//    took them (rarer, and their answers carry more than an outcome).
// Measured on the 2-core machine of the README (build/pg_bench, 16 clients;
// PostgreSQL, the servers and the load share the 2 cores): one server now
// writes 1.1-1.2 x pgbench's one-row upsert at the same concurrency; two
// and three servers write 0.49-0.64 and 0.41-0.44 x one server, up from
// 0.48 and 0.29. What is left is CPU, not the lock: every follower reads
// and applies every change (catch-up), a forwarded write crosses one more
// HTTP hop and more threads, and here the servers, PostgreSQL and the load
// share 2 cores (91 % busy with 3 servers; docs/benchmarks.md).
//
// Read-your-writes and convergence
// --------------------------------
// After its commit, the writing server applies the others' changes it has
// not applied yet (read inside its transaction, while holding the lock)
// and then its own, before it answers; so it reads its own write at once.
// Other servers learn of it by LISTEN kvctl_changes (the NOTIFY is sent on
// commit, its payload the revision; a server skips one it has applied) and
// read kv_log from their applied revision, with the database's revision
// and compacted revision, in one statement; they also poll once a second
// in case a notification was lost while reconnecting. Every
// server applies a change's metadata as kv_log holds it, and a reload takes
// it from kv_state, so all servers show the metadata the database decided.
//
// When the database goes away
// ---------------------------
// A lost connection marks the store unavailable: writes answer Unavailable
// (503) at once, reads keep being served from memory, Writable() says why.
// A background thread reconnects with backoff (100 ms doubling up to
// reconnect_max_backoff); libpq tries every host of a multi-host DSN and,
// with target_session_attrs=read-write, picks the primary. Once connected it
// catches up and accepts writes again. A write whose COMMIT got no answer is
// not acknowledged (its outcome is unknown; it is applied later if it did
// commit). If the database is found behind this server's applied revision
// (an asynchronous replica was promoted and lost commits), the server logs
// an error and reloads the state from the database.
//
// Transactions
// ------------
// A Txn (SPEC §6) is queued to the same committer as PUTs and DELETEs but
// runs alone, in a database transaction of its own (it ends the batch of
// writes gathered before it; the next batch starts after it): its compares
// and gets must see only what it rests on, and a refusal must roll back
// its writes without failing others' puts. Holding the kv_meta lock as any
// write does, it reads each compare's key (FOR UPDATE) or range (a page
// at a time) from kv_state and judges it there, so the database decides,
// not this server's memory; every compare of a tree of nested transactions
// is judged before any op (core::RunTxnTree). It then runs the chosen
// branches' ops in order against kv_state (a get sees the earlier writes;
// a delete of a prefix or range is a range of kv_state, at most
// kMaxTxnDeleteKeys keys). Every key it changes takes the one
// revision kv_meta.revision + 1, and one kv_log row at that revision; a
// put of the same value and lease, and a delete of a missing key, change
// nothing. If nothing changed, it rolls back: no revision, no row. After
// the commit it applies all its changes to the map at once and publishes
// them in one call to the watch hub, like a batch. Other servers read
// kv_log in whole revisions (rows in (revision, key) order; a read bound
// never stops inside a revision), so they too apply and publish a
// transaction as one step.
//
// Leases
// ------
// The leases alive are rows of kv_lease, their deadlines on the database's
// clock, so a lease granted through one server is kept alive, shown,
// revoked or expired through any (pg_leases.h). A grant and an end are
// writes like any other, in the committer's batches: each takes a revision
// and a kv_log row (an end's deletes share its revision), so every server
// applies them in order and watchers see an end's deletes as one revision.
// Keepalives, shows and lists ride in the same batches. A put naming a
// lease checks it exists under the kv_meta lock, which every end takes.
// One server at a time expires leases: whichever holds the expiry duty
// (lease_expiry.h), which passes to another server when it stops or dies;
// the server taking it gives every lease its full TTL again.
//
// Watches
// -------
// Every change a server applies, its own or another's, goes to its watch
// hub in revision order, from the one place that applies them (so a watch
// on any server sees every server's changes, none missing). Recent events
// are in the hub's memory; older ones are read from kv_log
// (pg_event_history.h): a watch can start from any revision after
// kv_meta.compacted_revision, below it is Compacted (HTTP 410).
//
// Compaction (Compact below) keeps the live state and every revision after
// it; it removes the history of overwritten and deleted keys from kv_log.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/forwarded_writes.h"
#include "lib/core/kv_store.h"
#include "lib/core/logger.h"

namespace kvctl::pg {

struct PgStoreOptions {
  std::string dsn;
  int pool_min = 1;
  int pool_max = 4;
  std::chrono::milliseconds pool_timeout{5000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reconnect_max_backoff{5000};
  core::WatchHubOptions watch;      // the watch hub's memory and limits
  uint64_t history_retention = 0;   // storage.history_retention
  core::Logger* logger = nullptr;  // NullLogger() when null
  // One writer (above): where this server's peers reach it ("" = it never
  // becomes the writer), how it reaches the writer (unset = it commits its
  // own writes), and the most bytes one forwarded batch may take (a write
  // bigger than that is committed here).
  std::string peer_url;
  core::ForwardTransport forward;
  size_t max_forward_bytes = 1 << 20;
};

class PgStore : public core::KvStore {
 public:
  // Checks the schema version (InvalidArgument naming the `kvctl migrate`
  // command to run), opens the pool, loads kv_state and starts following
  // the change log. Unavailable when the database cannot be reached.
  static core::Result<std::unique_ptr<PgStore>> Open(PgStoreOptions options);
  ~PgStore() override;

  core::Result<core::PutOutcome> Put(std::string_view key, std::string_view value,
                                     const core::Precondition& pre = {}, uint64_t lease = 0) override;
  core::Result<core::DeleteOutcome> Delete(std::string_view key,
                                           const core::Precondition& pre = {}) override;
  // `done` runs at once, on the calling thread, when the write is refused
  // before it is queued (the database is away, kvctl is stopping); else on
  // the committer thread once the transaction committed or failed.
  void PutAsync(std::string_view key, std::string_view value, const core::Precondition& pre, uint64_t lease,
                PutDone done) override;
  void DeleteAsync(std::string_view key, const core::Precondition& pre, DeleteDone done) override;
  core::Result<core::TxnResult> Txn(const core::TxnRequest& request) override;
  void TxnAsync(const core::TxnRequest& request, TxnDone done) override;
  // Leases (see "Leases" above): every call is queued to the committer
  // and answered from its transaction.
  void LeaseGrantAsync(int64_t ttl_seconds, uint64_t id, LeaseDone done) override;
  void LeaseRevokeAsync(uint64_t id, RevokeDone done) override;
  void LeaseKeepAliveAsync(uint64_t id, LeaseDone done) override;
  void LeaseTimeToLiveAsync(uint64_t id, LeaseDone done) override;
  void LeasesAsync(LeasesDone done) override;
  core::LeaseStats lease_stats() const override;
  core::Result<core::Entry> Get(std::string_view key, uint64_t* at_revision = nullptr) const override;
  core::ListPage List(const core::ListOptions& options) const override;
  core::Status Writable() const override;
  uint64_t revision() const override;
  core::StoreStats stats() const override;
  std::vector<core::BackendMetric> BackendMetrics() const override;
  // Up to U = the database's current revision minus history_retention
  // (the newest revisions stay history for watchers), deletes from kv_log
  // every change that a later change of the same key (up to U) supersedes,
  // and every delete: what stays up to U is the live keys as of U, like a
  // file snapshot, and kv_meta.compacted_revision records U (reported as
  // covered_revision; nothing happens when U is not past it). A server that
  // had not applied up to U yet reloads kv_state;
  // watchers below U + 1 end Compacted. Serialized across servers by an
  // advisory lock; then VACUUMs kv_log so its space is reused.
  core::Result<core::CompactionStats> Compact() override;
  core::Result<std::shared_ptr<core::Watcher>> Watch(const core::WatchFilter& filter, uint64_t from,
                                                     std::function<void()> notify) override;
  uint64_t HistoryFloor() const override;
  core::WatchStats watch_stats() const override;
  core::Status Close() override;
  // While this server is the writer, whether `token` is the one its peers
  // were given in kv_writer.
  bool AcceptsForwardedWrites(std::string_view token) const override;

 private:
  struct Impl;
  explicit PgStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvctl::pg
