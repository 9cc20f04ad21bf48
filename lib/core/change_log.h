// What the store needs from a durable log: append a batch of changes, sync,
// compact. The file log implements it. (The PostgreSQL backend is not a
// ChangeLog: there the database itself judges conditions, see lib/pg.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/kv_store.h"
#include "lib/core/log_format.h"
#include "lib/core/status.h"
#include "lib/core/watch.h"

namespace kvctl::core {

struct Change {
  uint64_t revision = 0;
  RecordType type = RecordType::kPut;
  std::string key;
  std::string value;  // empty for a delete
  // A PUT's key metadata after it; version 0: not known to the one who made
  // the change, derived where it is applied (MemTable, as on replay).
  KeyMeta meta;
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
  // The log's own figures for /metrics; callable from any thread.
  virtual std::vector<BackendMetric> Metrics() const { return {}; }
  // Its history for watchers behind what memory holds (watch.h); null when
  // it keeps none. Lives as long as the log.
  virtual EventHistory* history() { return nullptr; }
};

}  // namespace kvctl::core
