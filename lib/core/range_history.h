// What a range of keys held at a past revision, reconstructed from the
// retained history (KvStore::Watch from HistoryFloor(): the file log's
// segments, PostgreSQL's kv_log). Events carry a key's state after each
// change, not before, so a key changed since the revision is answered
// from its last event at or before it; one whose first later event
// created it did not exist then; any other is older than the history
// holds, and the read is refused as compacted. Never current data as the
// past.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "lib/core/key_range.h"
#include "lib/core/kv_store.h"
#include "lib/core/status.h"
#include "lib/core/watch.h"

namespace kvctl::core {

struct PastRange {
  std::vector<ListItem> items;  // what the range held at the revision asked, in key order
  uint64_t read_revision = 0;   // the store revision of the read it was reconstructed from
};

// The state of `range` at `revision` (0: the empty store before the first
// change). Errors: Compacted (the state of a key of the range at
// `revision` is older than the retained history), InvalidArgument
// (`revision` is above the store's), Unavailable (the history could not be
// read, or no part of it came for 5 s).
//
// Cost: the range's keys now (values too unless keys_only), plus one
// entry per key of the range changed after `revision`; the history under
// the range's common prefix is read from revision + 1 to now, and, when a
// changed key was not created after `revision`, also from HistoryFloor()
// to `revision`, a bounded batch at a time (nothing of it is kept but
// those entries).
Result<PastRange> RangeAt(KvStore& store, const KeyRange& range, uint64_t revision, bool keys_only);

// Calls `each` for every event matching `filter` with a revision in
// [from, to], in revision order, reading the store's history through a
// watcher. Errors: Compacted (`from` is below the history's floor),
// Unavailable (the history read failed, or nothing came for 5 s).
Status ReadHistory(KvStore& store, const WatchFilter& filter, uint64_t from, uint64_t to,
                   const std::function<void(const WatchEvent&)>& each);

}  // namespace kvctl::core
