// Reads the history in a data dir for `kvctl replay`: without the directory
// lock, so it works beside a running server, read-only, and consistent up to
// the last complete record. Every checksum is verified on the way.
//
// Consistency with a server at work: the reader opens every file it needs
// before reading any, and an open file stays readable after a compaction
// removes its name, so it sees one consistent set of files. A record still
// being written at the end of the newest segment ends the read there; it is
// reported, not treated as damage (recovery will cut or complete it).
//
// Thread safety: no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "lib/core/file_system.h"
#include "lib/core/log_format.h"
#include "lib/core/status.h"

namespace kvctl::core {

struct HistoryReport {
  uint64_t files = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;              // bytes verified
  uint64_t covered_revision = 0;   // the snapshot's (history up to it was compacted); 0 if none
  uint64_t last_revision = 0;
  // Set when the newest segment ends in an incomplete record.
  bool incomplete_tail = false;
  std::string tail_file;
  uint64_t tail_offset = 0;
  std::string tail_reason;
};

// Called for every record in revision order: first the snapshot's (the live
// keys as of its covered revision, `from_snapshot` set), then the log's.
using HistorySink = std::function<Status(const LogRecord& record, bool from_snapshot)>;

// Errors: InvalidArgument (no such dir, or it holds no kvctl log),
// Corruption (file and offset), IOError. `report` is filled as far as
// the read got, also on error.
Status ReadHistory(FileSystem& fs, const std::string& dir, const HistorySink& sink,
                   HistoryReport* report);

// Any history, read as ReadHistory reads a data dir: the snapshot's records
// first (from_snapshot), then the log's, in revision order; it fills the
// report's revisions and counts. The PostgreSQL backend's change log is one
// (lib/pg/pg_history.h).
using HistorySource = std::function<Status(const HistorySink& sink, HistoryReport* report)>;

struct StateEntry {
  std::string value;
  uint64_t revision = 0;
  KeyMeta meta;  // as the records give it, else derived as on replay
};

// The key/value state right after `revision` (0: the latest). Fails with
// InvalidArgument when that point was compacted away (below the snapshot)
// or lies past the end of the log.
Result<std::map<std::string, StateEntry>> ReadStateAt(FileSystem& fs, const std::string& dir,
                                                      uint64_t revision, HistoryReport* report);
// The same from any history source.
Result<std::map<std::string, StateEntry>> ReadStateAt(const HistorySource& source,
                                                      uint64_t revision, HistoryReport* report);

}  // namespace kvctl::core
