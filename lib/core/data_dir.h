// What a data dir holds, read from its file names: log segments (named by
// their first revision), snapshots (named by the revision they cover), and
// temp files left by a crash. Which of them a reader uses, and whether they
// chain, is log_chain.h's.
//
// Thread safety: no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/file_system.h"
#include "lib/core/status.h"

namespace kvctl::core {

inline constexpr std::string_view kTempSuffix = ".tmp";
inline constexpr std::string_view kLockFileName = "LOCK";

struct NamedFile {
  uint64_t revision = 0;  // a segment's first revision, a snapshot's covered one
  std::string name;
};

struct DataDirFiles {
  std::vector<NamedFile> segments;   // by first revision
  std::vector<NamedFile> snapshots;  // by covered revision; the last one counts
  std::vector<std::string> temp_files;

  const NamedFile* latest_snapshot() const { return snapshots.empty() ? nullptr : &snapshots.back(); }
  uint64_t covered_revision() const { return snapshots.empty() ? 0 : snapshots.back().revision; }
};

// Lists `dir`. Names it does not know are left alone (and not reported).
Result<DataDirFiles> ListDataDir(FileSystem& fs, const std::string& dir);

}  // namespace kvctl::core
