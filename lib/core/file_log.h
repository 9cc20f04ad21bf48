// The embedded backend: a segmented, checksummed, append-only log in one
// directory (the format is in log_format.h).
//
// Open() takes an exclusive lock on the directory (file LOCK) so two
// processes can never write one log, then recovers: every record is handed
// to the caller in order. A torn write at the end of the newest segment is
// cut off (a copy of the cut bytes is kept beside the segment as
// <segment>.broken-<offset>-<unix time>) and reported; any other damage is
// Corruption naming the file and offset, and nothing is modified.
//
// Segments are cut once the active one holds segment_bytes: the old one is
// synced in full, the new one is written as a temp file with its header,
// synced, renamed into place, and the directory synced (etcd's way).
//
// The active segment is zero-filled ahead of the appends, a MiB at a time
// (etcd preallocates its WAL files, PostgreSQL zero-fills its WAL segments):
// an append then overwrites blocks the file already has, and its fdatasync
// writes the data alone, not the file's new size as well. The zeros are cut
// off when the segment is sealed, when the log is closed, and when recovery
// reopens the segment; a reader stops at them (log_reader.h). A failed
// preallocation (a full disk) is given back and appends go on without it.
//
// Compaction (Compact(), see compaction.h and snapshot.h): cut the active
// segment so every record so far is in a sealed one, merge the current
// snapshot and the sealed segments into a new snapshot covering the last
// revision R (temp file, sync, rename, directory sync), then remove the
// files it replaces. With history_retention, only the sealed segments
// whose last revision is at least that many behind the newest are folded
// in, and the active segment is not cut: the rest stays, as history. Appends go on meanwhile: only the cut holds the log's
// lock. A crash at any step leaves either the old files or the new snapshot
// plus files it makes redundant; recovery loads the newest snapshot, skips
// and removes the segments it covers and any older snapshot or temp file.
//
// Thread safety: Append/Sync/Close from one thread at a time (the store's
// committer); Compact(), stats() and DiskBytes() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/core/change_log.h"
#include "lib/core/data_dir.h"
#include "lib/core/file_system.h"
#include "lib/core/fsync_policy.h"
#include "lib/core/logger.h"

namespace kvctl::core {

struct FileLogOptions {
  std::string dir;
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  uint64_t segment_bytes = 64ull << 20;
  FileSystem* fs = nullptr;  // PosixFileSystem() when null
  Logger* logger = nullptr;  // NullLogger() when null
  // Compaction keeps at least this many of the latest revisions in
  // segments, as history for watchers (storage.history_retention); it only
  // ever folds whole sealed segments into the snapshot.
  uint64_t history_retention = 0;
};

struct RecoveryReport {
  uint64_t segments = 0;
  uint64_t snapshot_records = 0;  // live keys loaded from a snapshot
  uint64_t covered_revision = 0;  // the snapshot's, 0 without one
  uint64_t records = 0;
  uint64_t bytes = 0;
  uint64_t last_revision = 0;
  // Set when a torn tail was cut off.
  bool repaired_torn_tail = false;
  std::string torn_segment;
  uint64_t torn_offset = 0;
  uint64_t torn_bytes = 0;
  std::string torn_copy;  // where the cut bytes were kept
};

struct FileLogStats {
  uint64_t segments = 0;
  uint64_t bytes = 0;           // on disk: all segments and the snapshot
  uint64_t snapshot_bytes = 0;
  uint64_t appends = 0;
  uint64_t syncs = 0;
  uint64_t compactions = 0;
  uint64_t reclaimed_bytes = 0;  // by compactions, in total
};

// Creates an empty segment (its header only) named for `first_revision` in
// `dir` the safe way: a temp file with the header, synced, renamed into
// place, the directory synced. What FileLog does at each cut; a copy of a
// compacted history makes the segment that follows its snapshot with it.
Status CreateSegment(FileSystem& fs, const std::string& dir, uint64_t first_revision);

class FileLog final : public ChangeLog {
 public:
  using RecordSink = std::function<Status(const LogRecord&)>;

  // Locks and recovers `options.dir` (created if missing), calling `sink`
  // for each record. Errors: Busy (another process holds the dir),
  // Corruption (with file and offset), IOError.
  static Result<std::unique_ptr<FileLog>> Open(const FileLogOptions& options,
                                               const RecordSink& sink, RecoveryReport* report);
  ~FileLog() override;

  Status Append(const std::vector<Change>& batch) override;
  Status Sync() override;
  Status Close() override;
  bool SyncsOnAppend() const override { return options_.fsync == FsyncPolicy::kAlways; }
  Result<CompactionStats> Compact() override;
  uint64_t DiskBytes() const override { return stats().bytes; }
  std::vector<BackendMetric> Metrics() const override;
  EventHistory* history() override { return history_.get(); }

  FileLogStats stats() const;

  // For watchers reading the history (file_history.h): the oldest revision
  // the segments hold (past the snapshot), and those segments, oldest
  // first. A compaction may remove the oldest of them at any time after.
  uint64_t HistoryFloor() const { return history_floor_.load(); }
  std::vector<NamedFile> HistorySegments() const;
  const std::string& dir() const { return options_.dir; }
  FileSystem& fs() const { return *options_.fs; }

 private:
  struct SealedSegment {
    std::string name;
    uint64_t bytes = 0;
  };

  FileLog(FileLogOptions options, std::unique_ptr<FileLock> lock);
  Status Recover(const RecordSink& sink, RecoveryReport* report);
  Status LoadSnapshot(const NamedFile& snapshot, const RecordSink& sink, RecoveryReport* report);
  Status RemoveRedundant(const std::string& name, std::string_view why);
  Status RepairTornTail(const std::string& name, const std::string& bytes, uint64_t offset,
                        RecoveryReport* report);
  // Both require mu_.
  Status OpenNewSegmentLocked(uint64_t first_revision);
  Status SealActiveLocked(uint64_t next_first_revision);
  Status SyncLocked();
  // Zero-fills the active segment so that the next `bytes` land in zeros.
  void PreallocateLocked(uint64_t bytes);
  // Cuts the active segment's unused zeros off (a failure is only logged).
  void TrimActiveLocked();

  FileLogOptions options_;
  std::unique_ptr<FileLock> lock_;

  // Guards the active segment, the file lists and the sticky state below;
  // held by Append for its write and sync, and by Compact only to cut.
  mutable std::mutex mu_;
  std::unique_ptr<WritableFile> active_;
  std::string active_name_;
  uint64_t active_records_ = 0;
  uint64_t active_allocated_ = 0;   // the active segment's length, zeros included
  bool preallocation_failed_ = false;  // for the active segment: append without
  uint64_t last_revision_ = 0;
  std::vector<SealedSegment> sealed_;  // oldest first
  std::string snapshot_name_;          // empty: none
  std::string buffer_;  // reused encoding buffer
  std::vector<TxnWrite> txn_writes_;  // reused: one transaction's writes being encoded
  Status failed_;       // sticky: after a failed append or sync nothing more is written
  bool closed_ = false;

  std::mutex compact_mu_;  // one compaction at a time

  std::atomic<uint64_t> history_floor_{1};  // the snapshot's covered revision + 1
  std::unique_ptr<EventHistory> history_;  // over this log's segments
  std::atomic<uint64_t> segments_{0};
  std::atomic<uint64_t> sealed_bytes_{0};  // bytes in segments before the active one
  std::atomic<uint64_t> snapshot_bytes_{0};
  std::atomic<uint64_t> active_bytes_{0};
  std::atomic<uint64_t> appends_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> compactions_{0};
  std::atomic<uint64_t> reclaimed_bytes_{0};
};

}  // namespace kvctl::core
