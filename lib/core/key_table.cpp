#include "lib/core/key_table.h"

#include <cstring>

#include "lib/core/coding.h"

#include <absl/container/btree_set.h>
#include <absl/types/compare.h>

namespace kvctl::core {
namespace {

// A record, in one slab block, every number a varint (LEB128):
//   key size
//   value size
//   key bytes
//   value bytes
//   revision
//   revision - create revision (0 for a key not changed since created)
//   version
//   lease
// The lengths come first, so that the key (what the index compares) is two
// small varints in. Varints keep the common case small: a 16-byte key with
// a 100-byte value at revision 1,000,000, never changed and on no lease,
// takes 8 bytes of numbers and 124 in all, which the slab rounds to 128.
size_t RecordSize(std::string_view key, std::string_view value, uint64_t revision, const KeyMeta& meta) {
  return VarintSize(key.size()) + VarintSize(value.size()) + key.size() + value.size() +
         VarintSize(revision) + VarintSize(revision - meta.create_revision) + VarintSize(meta.version) +
         VarintSize(meta.lease);
}

char* EncodeRecord(void* block, std::string_view key, std::string_view value, uint64_t revision,
                   const KeyMeta& meta) {
  char* p = static_cast<char*>(block);
  char* at = PutVarint(PutVarint(p, key.size()), value.size());
  std::memcpy(at, key.data(), key.size());
  at += key.size();
  if (!value.empty()) std::memcpy(at, value.data(), value.size());
  at += value.size();
  at = PutVarint(at, revision);
  at = PutVarint(at, revision - meta.create_revision);
  at = PutVarint(at, meta.version);
  PutVarint(at, meta.lease);
  return p;
}

KeyTable::Item DecodeRecord(const char* record) {
  KeyTable::Item item;
  uint64_t key_size = 0, value_size = 0, created_before = 0;
  const char* at = GetVarint(GetVarint(record, &key_size), &value_size);
  item.key = std::string_view(at, key_size);
  item.value = std::string_view(at + key_size, value_size);
  at = GetVarint(at + key_size + value_size, &item.revision);
  at = GetVarint(at, &created_before);
  at = GetVarint(at, &item.meta.version);
  GetVarint(at, &item.meta.lease);
  item.meta.create_revision = item.revision - created_before;
  return item;
}

std::string_view KeyOf(const char* record) {
  uint64_t key_size = 0, value_size = 0;
  const char* at = GetVarint(GetVarint(record, &key_size), &value_size);
  return {at, key_size};
}

size_t RecordSizeOf(const char* record) {
  const KeyTable::Item item = DecodeRecord(record);
  return RecordSize(item.key, item.value, item.revision, item.meta);
}

// An index slot: the record of one key. The record can be swapped for one
// with the same key (a new value) in place, which leaves the order intact.
struct Slot {
  mutable char* record;
};

absl::weak_ordering Ordering(int c) {
  return c < 0 ? absl::weak_ordering::less : c == 0 ? absl::weak_ordering::equivalent
                                                    : absl::weak_ordering::greater;
}

// Orders slots by key and finds them by a plain key (transparent). A
// three-way result lets the btree compare each key once per step.
struct ByKey {
  using is_transparent = void;
  absl::weak_ordering operator()(const Slot& a, const Slot& b) const {
    return Ordering(KeyOf(a.record).compare(KeyOf(b.record)));
  }
  absl::weak_ordering operator()(const Slot& a, std::string_view b) const {
    return Ordering(KeyOf(a.record).compare(b));
  }
  absl::weak_ordering operator()(std::string_view a, const Slot& b) const {
    return Ordering(a.compare(KeyOf(b.record)));
  }
};

}  // namespace

using Item = KeyTable::Item;

struct KeyTable::Index {
  absl::btree_set<Slot, ByKey> set;
};

KeyTable::KeyTable() : index_(std::make_unique<Index>()) {}
KeyTable::~KeyTable() {
  if (index_) Clear();
}
KeyTable::KeyTable(KeyTable&&) noexcept = default;
KeyTable& KeyTable::operator=(KeyTable&& other) noexcept {
  if (this != &other) {
    if (index_) Clear();
    index_ = std::move(other.index_);
    slabs_ = std::move(other.slabs_);
  }
  return *this;
}

std::optional<Item> KeyTable::Find(std::string_view key) const {
  auto it = index_->set.find(key);
  if (it == index_->set.end()) return std::nullopt;
  return DecodeRecord(it->record);
}

std::optional<size_t> KeyTable::Set(std::string_view key, std::string_view value, uint64_t revision,
                                    const KeyMeta& meta) {
  auto& set = index_->set;
  const size_t size = RecordSize(key, value, revision, meta);
  // Appending past the last key (a snapshot's keys, in order): no search.
  auto it = !set.empty() && KeyOf(std::prev(set.end())->record) < key ? set.end() : set.lower_bound(key);
  if (it != set.end() && KeyOf(it->record) == key) {
    char* old = it->record;
    const size_t old_size = RecordSizeOf(old);
    const size_t replaced = DecodeRecord(old).value.size();
    if (SlabAllocator::Footprint(old_size) == SlabAllocator::Footprint(size)) {
      EncodeRecord(old, key, value, revision, meta);  // the key is unchanged, and so is its place
    } else {
      it->record = EncodeRecord(slabs_.Allocate(size), key, value, revision, meta);
      slabs_.Free(old, old_size);
    }
    return replaced;
  }
  char* record = EncodeRecord(slabs_.Allocate(size), key, value, revision, meta);
  set.insert(it, Slot{record});
  return std::nullopt;
}

std::optional<size_t> KeyTable::Erase(std::string_view key) {
  auto& set = index_->set;
  auto it = set.find(key);
  if (it == set.end()) return std::nullopt;
  char* record = it->record;
  const Item item = DecodeRecord(record);
  const size_t value_size = item.value.size();
  set.erase(it);
  slabs_.Free(record, RecordSize(item.key, item.value, item.revision, item.meta));
  return value_size;
}

void KeyTable::Clear() {
  // Blocks too large for the slabs came from operator new; the rest go
  // with their chunks.
  for (const Slot& slot : index_->set) {
    const size_t size = RecordSizeOf(slot.record);
    if (SlabAllocator::Footprint(size) > SlabAllocator::kMaxSlabBlock) slabs_.Free(slot.record, size);
  }
  index_->set.clear();
  slabs_ = SlabAllocator();  // hands the chunks back
}

void KeyTable::Scan(std::string_view from, bool exclusive,
                    const std::function<bool(const Item&)>& visit) const {
  const auto& set = index_->set;
  for (auto it = exclusive ? set.upper_bound(from) : set.lower_bound(from); it != set.end(); ++it) {
    if (!visit(DecodeRecord(it->record))) return;
  }
}

size_t KeyTable::size() const { return index_->set.size(); }

KeyTable::MemoryStats KeyTable::memory() const {
  return {slabs_.chunk_bytes(), slabs_.free_bytes()};
}

}  // namespace kvctl::core
