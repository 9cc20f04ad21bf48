// The merge step of compaction: fold a snapshot and the sealed segments
// after it into one new snapshot of the live keys (see snapshot.h). Reads
// only files that are no longer written, so it needs no lock of the store
// or the log; FileLog::Compact() decides which files and swaps them.
//
// Thread safety: no shared state; the caller keeps two merges of one data
// dir from running at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/file_system.h"
#include "lib/core/snapshot.h"
#include "lib/core/status.h"

namespace kvctl::core {

struct MergeInput {
  FileSystem* fs = nullptr;
  std::string dir;
  std::optional<std::string> snapshot;  // file name of the current snapshot, if any
  std::vector<std::string> segments;    // sealed segment file names, oldest first
  uint64_t covered_revision = 0;        // the last revision those segments hold
};

struct MergeOutput {
  SnapshotWriteResult snapshot;
  uint64_t records_read = 0;
};

// Writes the snapshot covering `input.covered_revision`. Records at or below
// the old snapshot's revision found in a segment (one a crash kept from
// being removed) are skipped. Any damage in the inputs is Corruption: a
// sealed segment never legitimately ends in a torn write.
Result<MergeOutput> MergeIntoSnapshot(const MergeInput& input);

}  // namespace kvctl::core
