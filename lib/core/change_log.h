// What the store needs from a durable log: append a batch of changes, sync,
// compact. The file log implements it; the PostgreSQL backend will too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/log_format.h"
#include "lib/core/status.h"

namespace kvctl::core {

// What one compaction did. `compacted` is false when there was nothing to
// do (no history the live state does not already account for).
struct CompactionStats {
  bool compacted = false;
  uint64_t covered_revision = 0;  // the history up to here became a snapshot
  uint64_t bytes_before = 0;      // the whole log on disk, before and after
  uint64_t bytes_after = 0;
  uint64_t records_read = 0;      // records in what was replaced
  uint64_t records_written = 0;   // live keys kept
  uint64_t files_removed = 0;
  double seconds = 0;
};

struct Change {
  uint64_t revision = 0;
  RecordType type = RecordType::kPut;
  std::string key;
  std::string value;  // empty for a delete
};

class ChangeLog {
 public:
  virtual ~ChangeLog() = default;
  // Writes `batch` (revisions increasing) and, if the log's policy says so,
  // syncs it. On error nothing in the batch may be acknowledged, and the
  // log must not be appended to again. Called from one thread at a time.
  virtual Status Append(const std::vector<Change>& batch) = 0;
  // Forces everything appended so far to stable storage.
  virtual Status Sync() = 0;
  // Syncs and releases the log; later calls fail.
  virtual Status Close() = 0;
  // Replaces the history up to now with the live state, keeping revisions
  // and deletions. Safe to call from any thread while Append runs (it must
  // not stop appends for longer than a segment switch); a second call waits
  // for the first. On error the log is as it was and appends go on.
  virtual Result<CompactionStats> Compact() = 0;
  // Bytes the log holds on disk now (for the automatic compaction policy).
  virtual uint64_t DiskBytes() const = 0;
  // True when Append already syncs (fsync = "always"); the store then needs
  // no periodic Sync.
  virtual bool SyncsOnAppend() const = 0;
};

}  // namespace kvctl::core
