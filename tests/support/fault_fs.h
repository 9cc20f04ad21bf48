// A FileSystem over real files that injects the faults a real disk will not
// produce on demand: a failing fsync, running out of space mid-write, a sync
// that blocks until the test releases it, and a crash that loses every byte
// not yet synced (SimulateCrash). Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "lib/core/file_system.h"

namespace kvctl::testing {

class FaultFs final : public core::ForwardingFileSystem {
 public:
  FaultFs() : core::ForwardingFileSystem(core::PosixFileSystem()) {}

  // Every Sync() of a file fails from now on (like EIO from fdatasync).
  void FailSyncs(bool on);
  // Only syncs of files whose path contains `part` fail ("" for none).
  void FailSyncsOf(std::string part);
  // Appends fail with ENOSPC once this many more bytes have been written;
  // the write that crosses the limit is partial, as on a full disk.
  void FailWritesAfter(uint64_t bytes);
  // WritableFile::Preallocate fails with ENOSPC, writing nothing.
  void FailPreallocations(bool on);
  // While held, Sync() calls wait (to line writers up behind one sync).
  void HoldSyncs();
  void ReleaseSyncs();
  // Number of Sync() calls currently waiting in HoldSyncs().
  int SyncsWaiting();
  uint64_t sync_count();
  // SyncDir() calls made for `dir`.
  uint64_t dir_sync_count(const std::string& dir);

  // Cuts every file written through this FileSystem back to what its last
  // sync covered, as if the machine lost power now. A preallocated file
  // keeps its length: what was lost reads as zeros.
  void SimulateCrash();

  // Crash points: the process "dies" before the (n+1)-th change to the disk
  // from now on (an append, sync, file write, truncate, rename, removal or
  // directory sync): that call and every later one fail without touching
  // anything. Walking n = 0, 1, 2, ... through an operation, then calling
  // SimulateCrash(), visits every step at which a crash can stop it.
  // Directory changes already made count as durable, as after kill -9.
  void CrashAfterOps(uint64_t n);
  // Ends the crash: later calls reach the disk again.
  void Revive();
  // Disk-changing calls made so far (the unit CrashAfterOps counts in).
  uint64_t ops_count();

  core::Result<std::unique_ptr<core::WritableFile>> OpenAppendable(const std::string& path) override;
  core::Status WriteFile(const std::string& path, std::string_view data) override;
  core::Status Truncate(const std::string& path, uint64_t size) override;
  core::Status Rename(const std::string& from, const std::string& to) override;
  core::Status Remove(const std::string& path) override;
  core::Status SyncDir(const std::string& dir) override;

 private:
  friend class FaultFile;
  core::Status BeforeSync(std::string_view path = {});
  bool preallocations_fail();
  // Counts one disk-changing call; an error when a crash point has passed.
  core::Status BeforeOp(std::string_view what, std::string_view path);
  // How many of `want` bytes may be written; 0 with an error past the limit.
  uint64_t Allow(uint64_t want, bool* full);
  void MarkSynced(const std::string& path, uint64_t size);
  void MarkPreallocated(const std::string& path, uint64_t size);

  std::mutex mu_;
  std::condition_variable cv_;
  bool fail_syncs_ = false;
  std::string fail_syncs_of_;
  bool hold_syncs_ = false;
  int syncs_waiting_ = 0;
  uint64_t syncs_ = 0;
  bool limit_writes_ = false;
  bool fail_preallocations_ = false;
  uint64_t bytes_left_ = 0;
  std::map<std::string, uint64_t> synced_size_;  // path -> bytes its last sync covered
  std::map<std::string, uint64_t> preallocated_size_;  // path -> length zero-filled to
  std::map<std::string, uint64_t> dir_syncs_;
  uint64_t ops_ = 0;
  bool crash_armed_ = false;
  uint64_t crash_at_op_ = 0;
};

// A fresh directory under /tmp, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Join(std::string_view name) const { return core::JoinPath(path_, name); }

 private:
  std::string path_;
};

}  // namespace kvctl::testing
