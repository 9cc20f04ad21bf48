// The file-system seam: every byte kvctl's log reads or writes goes through
// FileSystem, so tests can inject faults a real disk will not produce on
// demand (a failing fsync, ENOSPC, a crash that drops unsynced bytes).
//
// Thread safety: a FileSystem may be used from several threads; a single
// WritableFile is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/status.h"

namespace kvctl::core {

// An open file that only grows at its end (possibly into zeros it was
// preallocated with).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Writes all of `data` at the end, or fails; a short write is an error.
  virtual Status Append(std::string_view data) = 0;
  // Forces the written bytes to stable storage (fdatasync).
  virtual Status Sync() = 0;
  // Makes the file at least `bytes` long by writing zeros past what Append
  // has written; Size(), and where the next Append writes, stay as they
  // were. Appends into those zeros overwrite blocks the file already has,
  // so syncing them needs no change to the file's size or block map: one
  // write to the disk instead of two (the log's reason, see file_log.h).
  // On failure (a full disk) the zeros written so far are cut off again.
  virtual Status Preallocate(uint64_t bytes) = 0;
  virtual Status Close() = 0;
  virtual uint64_t Size() const = 0;
  virtual const std::string& path() const = 0;
};

// An open file for reading. On POSIX it stays readable after the name is
// unlinked, which lets a reader pin a set of files that a concurrent
// compaction may remove.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads the whole file as it is now.
  virtual Result<std::string> ReadAll() = 0;
  // Reads up to `n` bytes from `offset`: fewer at the end of the file.
  virtual Result<std::string> ReadAt(uint64_t offset, size_t n) = 0;
  virtual const std::string& path() const = 0;
};

// A whole file's bytes, read-only, valid for as long as the object lives.
class FileContents {
 public:
  virtual ~FileContents() = default;
  virtual std::string_view bytes() const = 0;
};

// Held for as long as the object lives; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for appending, creating it if missing.
  virtual Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) = 0;
  // Reads the whole file. NotFound when it does not exist.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // The whole file, for files nothing writes any more (a snapshot). The
  // POSIX file system maps it (mmap): no copy into fresh memory, which for
  // a large file costs more than reading it. By default, ReadFile.
  // NotFound when it does not exist.
  virtual Result<std::unique_ptr<FileContents>> MapFile(const std::string& path);
  // Opens `path` for reading. NotFound when it does not exist.
  virtual Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) = 0;
  // Writes `data` to `path` (replacing it) and syncs it; no directory sync.
  virtual Status WriteFile(const std::string& path, std::string_view data) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Makes renames and new entries in `dir` durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status CreateDirs(const std::string& dir) = 0;
  // Names (not paths) of the entries in `dir`, unsorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Takes an exclusive advisory lock (flock) on `path`, creating it;
  // Busy when another process holds it.
  virtual Result<std::unique_ptr<FileLock>> LockExclusive(const std::string& path) = 0;
};

// Passes every call to another FileSystem. Decorators (timing in the
// server's metrics, fault injection in tests) derive from it and override
// only the calls they change.
class ForwardingFileSystem : public FileSystem {
 public:
  explicit ForwardingFileSystem(FileSystem& base) : base_(base) {}

  Result<std::unique_ptr<WritableFile>> OpenAppendable(const std::string& path) override {
    return base_.OpenAppendable(path);
  }
  Result<std::string> ReadFile(const std::string& path) override { return base_.ReadFile(path); }
  Result<std::unique_ptr<FileContents>> MapFile(const std::string& path) override { return base_.MapFile(path); }
  Result<std::unique_ptr<ReadableFile>> OpenReadable(const std::string& path) override {
    return base_.OpenReadable(path);
  }
  Status WriteFile(const std::string& path, std::string_view data) override { return base_.WriteFile(path, data); }
  Status Truncate(const std::string& path, uint64_t size) override { return base_.Truncate(path, size); }
  Status Rename(const std::string& from, const std::string& to) override { return base_.Rename(from, to); }
  Status Remove(const std::string& path) override { return base_.Remove(path); }
  Status SyncDir(const std::string& dir) override { return base_.SyncDir(dir); }
  Status CreateDirs(const std::string& dir) override { return base_.CreateDirs(dir); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override { return base_.ListDir(dir); }
  bool Exists(const std::string& path) override { return base_.Exists(path); }
  Result<std::unique_ptr<FileLock>> LockExclusive(const std::string& path) override {
    return base_.LockExclusive(path);
  }

 protected:
  FileSystem& base_;
};

// The real thing, over POSIX calls. Errors carry the path and strerror.
FileSystem& PosixFileSystem();

std::string JoinPath(std::string_view dir, std::string_view name);

}  // namespace kvctl::core
