#include "lib/core/mem_table.h"

#include <mutex>

namespace kvctl::core {

Result<Entry> MemTable::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return Status::NotFound("no such key");
  return it->second;
}

ListPage MemTable::List(const ListOptions& options) const {
  ListPage page;
  std::shared_lock lock(mu_);
  auto it = map_.lower_bound(options.prefix);
  if (options.after && *options.after >= options.prefix) it = map_.upper_bound(*options.after);
  auto matches = [&](Map::const_iterator i) {
    return i != map_.end() && i->first.starts_with(options.prefix);
  };
  for (; matches(it) && page.items.size() < options.limit; ++it) {
    page.items.push_back({it->first, options.keys_only ? std::string() : it->second.value,
                          it->second.revision});
  }
  if (matches(it) && !page.items.empty()) page.next = page.items.back().key;
  return page;
}

uint64_t MemTable::size() const {
  std::shared_lock lock(mu_);
  return map_.size();
}

uint64_t MemTable::live_bytes() const {
  std::shared_lock lock(mu_);
  return live_bytes_;
}

void MemTable::Set(std::string key, std::string value, uint64_t revision) {
  auto [it, inserted] = map_.try_emplace(std::move(key));
  if (!inserted) live_bytes_ -= SizeOf(it->first, it->second);
  it->second = Entry{std::move(value), revision};
  live_bytes_ += SizeOf(it->first, it->second);
}

void MemTable::Erase(std::string_view key) {
  if (auto it = map_.find(key); it != map_.end()) {
    live_bytes_ -= SizeOf(it->first, it->second);
    map_.erase(it);
  }
}

void MemTable::Apply(std::vector<Change>& changes) {
  std::unique_lock lock(mu_);
  for (Change& c : changes) {
    if (c.type == RecordType::kPut) {
      Set(std::move(c.key), std::move(c.value), c.revision);
    } else {
      Erase(c.key);
    }
  }
}

void MemTable::Replace(Map state) {
  uint64_t bytes = 0;
  for (const auto& [key, entry] : state) bytes += SizeOf(key, entry);
  {
    std::unique_lock lock(mu_);
    map_.swap(state);
    live_bytes_ = bytes;
  }
  // The old map (now in `state`) is freed here, outside the lock.
}

const Entry* MemTable::Find(std::string_view key) const {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

}  // namespace kvctl::core
