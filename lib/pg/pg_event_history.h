// The PostgreSQL backend's history for watchers (core::EventHistory,
// watch.h): the rows of kv_log after kv_meta.compacted_revision. Internal
// to lib/pg (it includes pqxx through the pool).
//
// Rows at or below the compacted revision are a snapshot (each live key's
// last PUT as of it), not history, so the floor is compacted_revision + 1.
// Floor() is read under the watch hub's lock and must not block: it is a
// cached value, raised by whoever reads kv_meta (the store's catch-up, its
// reloads and compactions: NoteCompacted) and by a Read that finds the
// rows it wanted compacted away.
//
// A Read is one query: matching rows of [from, to] in (revision, key)
// order, at most kRowsPerRead rows and about max_bytes of keys and values,
// the key filter in SQL (key = K, or the byte range of a prefix), and the
// compacted revision from the same snapshot, so a compaction committed
// meanwhile by any server is never mistaken for an empty range. A
// transaction's revision has several rows, which a watcher gets together:
// when a bound stops the read inside the last revision it reached, that
// revision is left for the next Read, or, when it is the only one, read
// whole by a second query. It runs on the hub's
// history thread with a pooled connection of its own for that one query
// (never the committer's, which holds its connection for a whole batch).
//
// Thread safety: Floor and NoteCompacted from any thread; each Reader is
// its caller's.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "lib/core/watch.h"
#include "lib/pg/pool.h"

namespace kvctl::pg {

class PgEventHistory final : public core::EventHistory {
 public:
  // Rows one Read asks for at most (and bytes: the hub's batch bound).
  static constexpr int64_t kRowsPerRead = 1000;

  // `pool` must outlive the history and its readers; its connections must
  // have had Prepare() run on them.
  explicit PgEventHistory(ConnectionPool& pool) : pool_(pool) {}

  // The statements a Reader runs, prepared on every pooled connection.
  static void Prepare(pqxx::connection& c);

  uint64_t Floor() const override { return compacted_.load(std::memory_order_acquire) + 1; }
  // kv_meta.compacted_revision as some transaction read it: the floor only
  // rises (reads race, and a compaction is never undone).
  void NoteCompacted(uint64_t compacted_revision);

  std::unique_ptr<Reader> OpenReader(const core::WatchFilter& filter) override;

 private:
  ConnectionPool& pool_;
  std::atomic<uint64_t> compacted_{0};
};

// The least byte string greater than every string starting with `prefix`
// (bytes order, as bytea compares): the prefix with its trailing 0xff bytes
// dropped and the last byte then incremented; nullopt when there is none
// (the prefix is empty or all 0xff).
std::optional<std::string> PrefixSuccessor(std::string_view prefix);

}  // namespace kvctl::pg
