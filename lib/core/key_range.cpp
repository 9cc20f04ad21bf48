#include "lib/core/key_range.h"

namespace kvctl::core {

WatchFilter KeyRange::Covering() const {
  WatchFilter filter;
  if (range_end.empty()) {
    filter.key = key;
    return filter;
  }
  filter.prefix = true;
  if (FromKeyOn()) return filter;  // every key from `key` on: no common prefix
  size_t common = 0;
  while (common < key.size() && common < range_end.size() && key[common] == range_end[common]) ++common;
  filter.key = key.substr(0, common);
  return filter;
}

namespace {

// The keys under `prefix` from `start` (inclusive) on, up to `end`
// (exclusive; "" none), appended to `out`; the store revision of the
// pages, or 0 when they did not all reflect one revision.
uint64_t ListFrom(const KvStore& store, const std::string& prefix, const std::string& start, const std::string& end,
                  bool keys_only, std::vector<ListItem>* out) {
  ListOptions options;
  options.prefix = prefix;
  options.limit = 1000;
  options.keys_only = keys_only;
  // `after` is exclusive: start past the greatest key below `start` that
  // can be named (a key ending in 0x00 has its parent right below it;
  // otherwise the last byte lowered, and the keys between are skipped).
  if (start.size() > prefix.size()) {
    std::string below = start;
    if (below.back() == '\0') {
      below.pop_back();
    } else {
      below.back() = static_cast<char>(static_cast<unsigned char>(below.back()) - 1);
    }
    if (below.size() >= prefix.size() && below != prefix) options.after = below;
  }
  uint64_t revision = 0;
  for (;;) {
    ListPage page = store.List(options);
    if (revision == 0) revision = page.store_revision;
    if (page.store_revision != revision) return 0;
    for (ListItem& item : page.items) {
      if (item.key < start) continue;
      if (!end.empty() && item.key >= end) return revision;
      out->push_back(std::move(item));
    }
    if (!page.next) return revision;
    options.after = *page.next;
  }
}

}  // namespace

RangeRead ReadRange(const KvStore& store, const KeyRange& range, bool keys_only) {
  RangeRead read;
  if (range.range_end.empty()) {
    uint64_t at = 0;
    auto entry = store.Get(range.key, &at);
    read.revision = at;
    if (entry) {
      read.items.push_back(
          {range.key, keys_only ? std::string() : std::move(entry->value), entry->revision, entry->meta});
    }
    return read;
  }
  if (range.IsEmpty()) {
    read.revision = store.revision();
    return read;
  }
  const std::string prefix = range.Covering().key;
  const std::string end = range.FromKeyOn() ? std::string() : range.range_end;
  // Pages are read one at a time; a write between two of them would mix
  // two revisions, so such a read is made again.
  for (int attempt = 0;; ++attempt) {
    read.items.clear();
    read.revision = ListFrom(store, prefix, range.key, end, keys_only, &read.items);
    if (read.revision != 0 || attempt == 100) return read;
  }
}

}  // namespace kvctl::core
