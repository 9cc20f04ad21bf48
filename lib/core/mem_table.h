// The in-memory state every backend serves reads from: live keys in byte
// order, each with its value and revision, behind a reader-writer lock.
// The keys live in a KeyTable (key_table.h): one slab block per key under
// a btree index, about 140 bytes per key where a std::map took 260.
//
// Thread safety: Get, List, size and the Apply/Replace calls may run on any
// thread. Find() skips the lock: only a caller that is the sole writer (it
// alone calls Apply/Replace, and holds its own lock around both) may use it.
#pragma once

#include <cstdint>
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

  // NotFound when the key does not exist.
  Result<Entry> Get(std::string_view key) const;
  ListPage List(const ListOptions& options) const;
  uint64_t size() const;
  // The sum of entry_size over the live keys (0 without an entry_size).
  uint64_t live_bytes() const;

  // Applies changes in the order given.
  void Apply(const std::vector<Change>& changes);
  // Applies one record (recovery: a snapshot's or the log's, one at a time,
  // with no copy; a snapshot's come in key order and are appended).
  void Apply(const LogRecord& record);
  // Replaces the whole state (a reload from a backend's state table).
  void Replace(const Map& state);

  // The entry for `key`, or nullopt: a view, valid until the next change
  // to the table; see the thread-safety note above.
  std::optional<KeyTable::Item> Find(std::string_view key) const;

 private:
  void Set(std::string_view key, std::string_view value, uint64_t revision);  // requires mu_
  void Erase(std::string_view key);                                             // requires mu_
  uint64_t SizeOf(size_t key_bytes, size_t value_bytes) const {
    return entry_size_ != nullptr ? entry_size_(key_bytes, value_bytes) : 0;
  }

  const EntrySize entry_size_;
  mutable std::shared_mutex mu_;
  KeyTable table_;
  uint64_t live_bytes_ = 0;  // guarded by mu_
};

}  // namespace kvctl::core
