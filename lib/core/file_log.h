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
// Thread safety: Append/Sync/Close from one thread at a time (the store's
// committer); stats() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/change_log.h"
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
};

struct RecoveryReport {
  uint64_t segments = 0;
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
  uint64_t bytes = 0;  // on disk, all segments
  uint64_t appends = 0;
  uint64_t syncs = 0;
};

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

  FileLogStats stats() const;

 private:
  FileLog(FileLogOptions options, std::unique_ptr<FileLock> lock);
  Status Recover(const RecordSink& sink, RecoveryReport* report);
  Status RepairTornTail(const std::string& name, const std::string& bytes, uint64_t offset,
                        RecoveryReport* report);
  Status OpenNewSegment(uint64_t first_revision);

  FileLogOptions options_;
  std::unique_ptr<FileLock> lock_;
  std::unique_ptr<WritableFile> active_;
  uint64_t active_records_ = 0;
  uint64_t last_revision_ = 0;
  std::string buffer_;  // reused encoding buffer
  Status failed_;       // sticky: after a failed append or sync nothing more is written
  bool closed_ = false;

  std::atomic<uint64_t> segments_{0};
  std::atomic<uint64_t> sealed_bytes_{0};  // bytes in segments before the active one
  std::atomic<uint64_t> active_bytes_{0};
  std::atomic<uint64_t> appends_{0};
  std::atomic<uint64_t> syncs_{0};
};

}  // namespace kvctl::core
