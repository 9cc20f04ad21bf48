// A batch of puts and deletes committed in one statement: the committer's
// write path (pg_store.h). The statement is the kv_write_batch function
// (migration 6), which judges, numbers and writes every change of the batch
// under the kv_meta lock and commits with the statement (autocommit), so a
// batch costs one round trip and one WAL flush, and the kv_meta lock is
// held for no longer than that.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <pqxx/pqxx>

#include "lib/core/change_log.h"
#include "lib/core/kv_store.h"

namespace kvctl::pg {

// Prepares kv_write_batch on a connection.
void PrepareBatchWrite(pqxx::connection& c);

struct KeyWrite {
  bool is_put = true;
  std::string_view key;
  std::string_view value;  // a put's
  const core::Precondition* pre = nullptr;
  uint64_t lease = 0;  // a put's
};

struct KeyWriteOutcome {
  core::Status status;     // OK, FailedPrecondition or NotFound (no such lease)
  uint64_t revision = 0;   // the change's; the key's current one when nothing changed
  bool existed = false;    // the key existed before
  bool changed = false;    // a revision was taken
};

struct BatchWritten {
  uint64_t base = 0;       // kv_meta.revision before the batch
  uint64_t compacted = 0;  // kv_meta.compacted_revision then
  std::vector<KeyWriteOutcome> outcomes;  // one per write, in order
  std::vector<core::Change> changes;      // what was written, in revision order
};

// Commits `writes` (at least one) in one statement on `conn`, which must
// not be in a transaction. Throws what libpqxx throws; when the connection
// is lost, whether the batch committed is unknown.
BatchWritten WriteBatch(pqxx::connection& conn, std::span<const KeyWrite> writes);

}  // namespace kvctl::pg
