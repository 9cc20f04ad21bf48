#include "lib/core/mem_table.h"

#include <mutex>

namespace kvctl::core {

Result<Entry> MemTable::Get(std::string_view key, uint64_t* at_revision) const {
  std::shared_lock lock(mu_);
  if (at_revision != nullptr) *at_revision = revision_;
  auto item = table_.Find(key);
  if (!item) return Status::NotFound("no such key");
  return Entry{std::string(item->value), item->revision, item->meta};
}

ListPage MemTable::List(const ListOptions& options) const {
  ListPage page;
  std::shared_lock lock(mu_);
  page.store_revision = revision_;
  const bool past_cursor = options.after && *options.after >= options.prefix;
  table_.Scan(past_cursor ? *options.after : options.prefix, past_cursor, [&](const KeyTable::Item& item) {
    if (!item.key.starts_with(options.prefix)) return false;
    if (page.items.size() == options.limit) {
      // Another match follows the page.
      if (!page.items.empty()) page.next = page.items.back().key;
      return false;
    }
    page.items.push_back({std::string(item.key), options.keys_only ? std::string() : std::string(item.value),
                          item.revision, item.meta});
    return true;
  });
  return page;
}

void MemTable::Scan(std::string_view start, std::string_view end,
                    const std::function<bool(const KeyTable::Item&)>& visit) const {
  std::shared_lock lock(mu_);
  table_.Scan(start, false, [&](const KeyTable::Item& item) {
    if (!end.empty() && item.key >= end) return false;
    return visit(item);
  });
}

uint64_t MemTable::size() const {
  std::shared_lock lock(mu_);
  return table_.size();
}

uint64_t MemTable::live_bytes() const {
  std::shared_lock lock(mu_);
  return live_bytes_;
}

uint64_t MemTable::revision() const {
  std::shared_lock lock(mu_);
  return revision_;
}

void MemTable::NoteRevision(uint64_t revision) {
  std::unique_lock lock(mu_);
  if (revision > revision_) revision_ = revision;
}

void MemTable::Set(std::string_view key, std::string_view value, uint64_t revision, KeyMeta meta) {
  if (meta.version == 0) {
    const std::optional<KeyTable::Item> before = table_.Find(key);
    meta = KeyMeta::AfterPut(before ? &before->meta : nullptr, revision, meta.lease);
  }
  if (auto replaced = table_.Set(key, value, revision, meta)) live_bytes_ -= SizeOf(key.size(), *replaced);
  live_bytes_ += SizeOf(key.size(), value.size());
  // A snapshot's records come in key order, not revision order.
  if (revision > revision_) revision_ = revision;
}

void MemTable::Erase(std::string_view key) {
  if (auto erased = table_.Erase(key)) live_bytes_ -= SizeOf(key.size(), *erased);
}

void MemTable::Apply(const std::vector<Change>& changes) {
  std::unique_lock lock(mu_);
  for (const Change& c : changes) {
    if (c.type == RecordType::kPut) {
      Set(c.key, c.value, c.revision, c.meta);
    } else {
      if (c.type == RecordType::kDelete) Erase(c.key);  // a lease's record changes no key
      if (c.revision > revision_) revision_ = c.revision;
    }
  }
}

void MemTable::Apply(const LogRecord& record) {
  std::unique_lock lock(mu_);
  if (record.type == RecordType::kPut) {
    Set(record.key, record.value, record.revision, record.has_meta ? record.meta : KeyMeta{});
  } else {
    if (record.type == RecordType::kDelete) Erase(record.key);  // a lease's record changes no key
    if (record.revision > revision_) revision_ = record.revision;
  }
}

void MemTable::Replace(const Map& state, uint64_t revision) {
  // Built outside the lock; the map is in key order, so every key appends.
  KeyTable table;
  uint64_t bytes = 0;
  for (const auto& [key, entry] : state) {
    table.Set(key, entry.value, entry.revision,
              entry.meta.version != 0 ? entry.meta : KeyMeta{entry.revision, 1, entry.meta.lease});
    bytes += SizeOf(key.size(), entry.value.size());
  }
  {
    std::unique_lock lock(mu_);
    std::swap(table_, table);
    live_bytes_ = bytes;
    revision_ = revision;
  }
  // The old table (now in `table`) is freed here, outside the lock.
}

std::optional<KeyTable::Item> MemTable::Find(std::string_view key) const { return table_.Find(key); }

}  // namespace kvctl::core
