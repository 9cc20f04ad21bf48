// `kvctl replay --into DIR`: copies the history of a data dir into a new,
// empty data dir, keeping every revision (a compacted history stays
// compacted: its snapshot is copied as a snapshot). The source is read as
// `replay` reads it, so a server may be running on it.
#pragma once

#include <cstdint>
#include <string>

#include "lib/core/file_system.h"
#include "lib/core/history_reader.h"
#include "lib/core/status.h"

namespace kvctl::core {

struct CopyReport {
  HistoryReport source;
  uint64_t records_written = 0;
  uint64_t last_revision = 0;
};

// Copies up to `to_revision` (0: everything). Fails with InvalidArgument
// when `target_dir` exists and is not empty; the target then stays as it was.
Result<CopyReport> CopyHistoryToDataDir(FileSystem& fs, const std::string& source_dir,
                                        const std::string& target_dir, uint64_t to_revision);

// The same copy from any history source. The caller checks that
// `to_revision` is not below the source's covered revision.
Result<CopyReport> CopyHistoryToDataDir(FileSystem& fs, const HistorySource& source,
                                        const std::string& target_dir, uint64_t to_revision);

}  // namespace kvctl::core
