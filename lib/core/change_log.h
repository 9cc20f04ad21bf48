// What the store needs from a durable log: append a batch of changes, sync.
// The file log implements it; the PostgreSQL backend will too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/log_format.h"
#include "lib/core/status.h"

namespace kvctl::core {

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
  // True when Append already syncs (fsync = "always"); the store then needs
  // no periodic Sync.
  virtual bool SyncsOnAppend() const = 0;
};

}  // namespace kvctl::core
