// The ordered table of live keys that the store serves reads from, laid out
// for memory: at a million keys of 16 bytes with 100-byte values it takes
// about 140 bytes per key, where a std::map<std::string, {std::string,
// revision}> takes about 260 (a tree node, and two heap strings since a
// 16-byte key is past the small-string buffer).
//
// Each key is one block (slab_allocator.h) holding its revision and
// metadata (key_meta.h), the key's and the value's lengths, all as varints,
// then the key and value bytes. An
// absl::btree_set of pointers to those blocks, ordered by key, is the index:
// about 10 bytes per key, and one cache-friendly node per ~30 keys.
//
// Items handed out (Find, Scan) are views into the table: valid until the
// next change to it (Set, Erase, Clear). Copy what must outlive that.
//
// Thread safety: none; the owner locks (const methods may run concurrently
// with each other, as they change nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "lib/core/key_meta.h"
#include "lib/core/slab_allocator.h"

namespace kvctl::core {

class KeyTable {
 public:
  struct Item {
    std::string_view key;
    std::string_view value;
    uint64_t revision = 0;
    KeyMeta meta;
  };

  KeyTable();
  ~KeyTable();
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;
  // A moved-from table may only be destroyed or assigned to.
  KeyTable(KeyTable&&) noexcept;
  KeyTable& operator=(KeyTable&&) noexcept;

  std::optional<Item> Find(std::string_view key) const;

  // Inserts `key` or replaces its value and revision. Returns the size of
  // the value it replaced, nullopt when the key is new. Keys that arrive in
  // increasing order (a snapshot) are appended without a search.
  std::optional<size_t> Set(std::string_view key, std::string_view value, uint64_t revision,
                            const KeyMeta& meta);
  // Removes `key`. Returns the size of its value, nullopt when it was absent.
  std::optional<size_t> Erase(std::string_view key);
  void Clear();

  // Visits items in key order from the first key >= `from` (> `from` when
  // `exclusive`), until `visit` returns false or the keys run out.
  void Scan(std::string_view from, bool exclusive, const std::function<bool(const Item&)>& visit) const;

  size_t size() const;

  struct MemoryStats {
    uint64_t slab_chunk_bytes = 0;  // slab memory taken from the system
    uint64_t slab_free_bytes = 0;   // of which freed and waiting for reuse
  };
  MemoryStats memory() const;

 private:
  struct Index;  // the absl::btree_set, kept out of this header
  std::unique_ptr<Index> index_;
  SlabAllocator slabs_;
};

}  // namespace kvctl::core
