// The in-memory state every backend serves reads from: live keys in byte
// order, each with its value, revision and metadata, behind a reader-writer
// lock, and the store revision that state reflects.
//
// Metadata a change or record does not carry (a PUT of a version-1 log, a
// snapshot from before key metadata) is derived here, from the key as it
// is (log_format.h): one rule for recovery and for every backend.
// The keys live in a KeyTable (key_table.h): one slab block per key under
// a btree index, about 140 bytes per key where a std::map took 260.
//
// Thread safety: Get, List, size and the Apply/Replace calls may run on any
// thread. Find() skips the lock: only a caller that is the sole writer (it
// alone calls Apply/Replace, and holds its own lock around both) may use it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/change_log.h"
#include "lib/core/key_table.h"
#include "lib/core/kv_store.h"

namespace kvctl::core {

class MemTable {
 public:
  using Map = std::map<std::string, Entry, std::less<>>;
  // What one live key costs, for live_bytes() (the file backend counts the
  // bytes of its log record, which is what a snapshot of it would take).
  using EntrySize = uint64_t (*)(size_t key_bytes, size_t value_bytes);

  explicit MemTable(EntrySize entry_size = nullptr) : entry_size_(entry_size) {}

  // NotFound when the key does not exist; `at_revision` as KvStore::Get.
  Result<Entry> Get(std::string_view key, uint64_t* at_revision = nullptr) const;
  ListPage List(const ListOptions& options) const;
  // Visits the keys of [start, end) ("" end: to the last key) in key order
  // until `visit` returns false, under the read lock: `visit` must not call
  // the table, and its items are views valid only during the call.
  void Scan(std::string_view start, std::string_view end,
            const std::function<bool(const KeyTable::Item&)>& visit) const;
  uint64_t size() const;
  // The revision of the last change applied (or noted).
  uint64_t revision() const;
  // A revision past the last change, which a snapshot can carry (its last
  // changes were deletions).
  void NoteRevision(uint64_t revision);
  // The sum of entry_size over the live keys (0 without an entry_size).
  uint64_t live_bytes() const;

  // Applies changes in the order given.
  void Apply(const std::vector<Change>& changes);
  // Applies one record (recovery: a snapshot's or the log's, one at a time,
  // with no copy; a snapshot's come in key order and are appended).
  void Apply(const LogRecord& record);
  // Replaces the whole state (a reload from a backend's state table), as
  // of `revision`.
  void Replace(const Map& state, uint64_t revision);

  // The entry for `key`, or nullopt: a view, valid until the next change
  // to the table; see the thread-safety note above.
  std::optional<KeyTable::Item> Find(std::string_view key) const;

 private:
  // Both require mu_. Set derives `meta` when its version is 0.
  void Set(std::string_view key, std::string_view value, uint64_t revision, KeyMeta meta);
  void Erase(std::string_view key);
  uint64_t SizeOf(size_t key_bytes, size_t value_bytes) const {
    return entry_size_ != nullptr ? entry_size_(key_bytes, value_bytes) : 0;
  }

  const EntrySize entry_size_;
  mutable std::shared_mutex mu_;
  KeyTable table_;
  uint64_t live_bytes_ = 0;  // guarded by mu_
  uint64_t revision_ = 0;    // guarded by mu_
};

}  // namespace kvctl::core
