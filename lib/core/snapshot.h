// Snapshot files: what compaction leaves in place of the log segments it
// replaces (Bitcask's merge, Redis's AOF rewrite). This comment is the
// reference for their bytes.
//
// A snapshot holds every live key as of one revision R ("covered revision"),
// each with the revision of its last change, so that R plus the segments
// after it rebuild the store exactly. It is named by R, as 20 decimal digits:
// 00000000000000123456.snapshot. Integers are little-endian.
//
// Header (32 bytes):
//    0  8  magic "KVCTLSNP"
//    8  4  format version (4; versions 3, 2 and 1 are still read)
//   12  4  reserved, 0
//   16  8  covered revision R
//   24  8  XXH3-64 over bytes [0, 24)
// Then records, exactly as in log_format.h: first a LEASE GRANT for each
// lease alive at R (its grant's revision, ids strictly increasing), then
// PUTs with the key's metadata (create revision, version, lease), one per
// live key, keys strictly increasing in byte order, each revision at most
// R. Version 3 is version 4 without leases. Key order
// lets a loader build its ordered in-memory table by appending, with no
// search per key. Version 2 (kvctl before key metadata) holds the same
// records without metadata: a key loaded from one gets version 1 and its
// revision as its create revision, the best that can be known of it.
// Version 1 (before key-ordered snapshots) holds them ordered by revision,
// strictly increasing; readers that need history order (replay) sort by
// revision.
// Footer (24 bytes, the last bytes of the file):
//    0  8  magic "KVCTLEND"
//    8  8  number of records
//   16  8  XXH3-64 over every byte of the file before this field
//
// A snapshot is written to <name>.tmp, synced, renamed into place and the
// directory synced, so one that exists is complete: any damage in it is
// corruption, never a torn write. R survives even when the last changes it
// covers were deletions, so revisions never go backwards after compaction.
//
// Thread safety: the functions here have no shared state.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/file_system.h"
#include "lib/core/log_format.h"
#include "lib/core/status.h"

namespace kvctl::core {

inline constexpr std::string_view kSnapshotMagic = "KVCTLSNP";
inline constexpr std::string_view kSnapshotEndMagic = "KVCTLEND";
inline constexpr std::string_view kSnapshotSuffix = ".snapshot";
inline constexpr size_t kSnapshotHeaderSize = 32;
inline constexpr size_t kSnapshotFooterSize = 24;

// "00000000000000000042.snapshot" for 42; and back.
std::string SnapshotFileName(uint64_t covered_revision);
bool ParseSnapshotFileName(std::string_view name, uint64_t* covered_revision);

struct SnapshotEntry {
  std::string_view key;
  std::string_view value;
  uint64_t revision = 0;
  KeyMeta meta;  // version 0: not known, written without
};

// A lease alive at the snapshot's revision.
struct SnapshotLease {
  uint64_t id = 0;
  int64_t ttl = 0;
  uint64_t revision = 0;  // of its grant
};

struct SnapshotWriteResult {
  std::string path;
  uint64_t bytes = 0;
  uint64_t records = 0;
};

// Writes the snapshot of `entries` (in any order; one per key, revisions at
// most `covered_revision`) into `dir`, in key order, the safe way: temp
// file, sync, rename, directory sync. On error the temp file is removed as
// far as possible and no snapshot is in place; InvalidArgument for two
// entries with one key.
Result<SnapshotWriteResult> WriteSnapshot(FileSystem& fs, const std::string& dir,
                                          uint64_t covered_revision,
                                          const std::vector<SnapshotEntry>& entries,
                                          const std::vector<SnapshotLease>& leases = {});

struct SnapshotScan {
  uint64_t covered_revision = 0;
  uint64_t records = 0;
  uint32_t version = 0;  // 4, 3 or 2: records in key order (3 and 4 with metadata, 4 with leases); 1: in revision order
};

// Verifies every check of a whole snapshot file and calls `on_record` for
// each record in file order. Corruption names `path` and the offset; also
// when the revision it covers is not `named_revision`, the one its file
// name gives.
Result<SnapshotScan> ScanSnapshot(std::string_view bytes, const std::string& path,
                                  uint64_t named_revision,
                                  const std::function<Status(const LogRecord&)>& on_record);

}  // namespace kvctl::core
