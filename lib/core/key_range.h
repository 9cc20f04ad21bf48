// A range of keys as etcd names one, and a consistent read of it. Used by
// the reconstruction of past ranges (range_history.h) and by the etcd face.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/kv_store.h"
#include "lib/core/watch.h"

namespace kvctl::core {

// [key, range_end): an empty range_end is `key` alone; "\0" is every key
// from `key` on (and with key "\0", every key).
struct KeyRange {
  std::string key;
  std::string range_end;

  bool FromKeyOn() const { return range_end == std::string_view("\0", 1); }
  // No key can be in it: range_end at or below key.
  bool IsEmpty() const { return !range_end.empty() && !FromKeyOn() && range_end <= key; }
  bool Contains(std::string_view k) const {
    if (range_end.empty()) return k == key;
    return k >= key && (FromKeyOn() || k < range_end);
  }
  // The narrowest watch filter covering the range: the key alone, or the
  // longest common prefix of key and range_end ("" for "\0": every key).
  // It may match keys outside the range; filter those with Contains.
  WatchFilter Covering() const;
};

// A consistent read of every key of the range, in key order, at one store
// revision.
struct RangeRead {
  std::vector<ListItem> items;
  uint64_t revision = 0;  // the store revision the read reflects
};
// Lists pages under the range's longest common prefix, started just below
// `key`, stopped at range_end; pages that did not all reflect one revision
// (a write came between them) are read again. Holds the whole range.
RangeRead ReadRange(const KvStore& store, const KeyRange& range, bool keys_only);

}  // namespace kvctl::core
