// kvctl's history in PostgreSQL, for `kvctl replay`: read it as a
// core::HistorySource, or write a history (from a data dir or another
// database) into an empty database.
//
// Up to kv_meta.compacted_revision, kv_log holds only each live key's last
// put (see migrations.h): those rows are the "snapshot" (from_snapshot), the
// rest is the log, so the history reads exactly like a compacted data dir's.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "lib/core/history_copy.h"
#include "lib/core/history_reader.h"
#include "lib/core/status.h"

namespace kvctl::pg {

struct PgDatabase {
  std::string dsn;
  std::chrono::milliseconds connect_timeout{5000};
};

// Reads the whole history in one consistent snapshot of the database (a
// REPEATABLE READ transaction), so servers may keep writing. Checks the
// schema version first; checks that revisions follow on with no gap after
// the covered revision (Corruption naming the revision otherwise). A
// transaction's revision is several records, one per key, in key order.
// report->files stays 0 and report->bytes counts key and value bytes.
core::Status ReadPgHistory(const PgDatabase& db, const core::HistorySink& sink,
                           core::HistoryReport* report);

// ReadPgHistory as a HistorySource.
core::HistorySource PgHistorySource(const PgDatabase& db);

// Writes `source` up to `to_revision` (0: all) into `target`, which must be
// migrated and empty (no revision yet); InvalidArgument otherwise. Several
// records at one revision (a transaction's) become rows at that revision. One
// transaction holding the write lock: servers on the target see all of it
// or nothing, and are notified.
core::Result<core::CopyReport> CopyHistoryToPg(const core::HistorySource& source,
                                               const PgDatabase& target, uint64_t to_revision);

// Where a DSN points, without secrets: "host=db1 port=5432 dbname=kvctl".
std::string DescribeDatabase(const std::string& dsn);

// kv_meta.compacted_revision of `db` (for checking --to before a copy).
core::Result<uint64_t> PgCoveredRevision(const PgDatabase& db);

}  // namespace kvctl::pg
