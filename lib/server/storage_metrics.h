// Metrics of the storage path, gathered without touching the log's code:
// a FileSystem decorator times every append to and every fsync of a log
// file, and the store reports each group commit's size through
// StoreOptions::on_commit.
//
// Thread safety: StorageMetrics may be updated and rendered from any
// thread. TimedFileSystem is as thread-safe as the file system it wraps.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "lib/core/file_system.h"
#include "lib/server/metrics.h"

namespace kvctl::server {

class StorageMetrics {
 public:
  StorageMetrics();

  void ObserveAppend(std::chrono::nanoseconds took) { append_.ObserveDuration(took); }
  void ObserveFsync(std::chrono::nanoseconds took) { fsync_.ObserveDuration(took); }
  void ObserveCommit(size_t changes) { batch_.Observe(changes); }

  // Appends the three histogram families.
  void Render(std::string* out) const;

 private:
  Histogram append_;
  Histogram fsync_;
  Histogram batch_;
};

// Passes every call to `base`; log segments (*.log) it opens for appending
// report the time of each Append and Sync to `metrics` (snapshots written
// by compaction are not the log, and are not timed). Both must outlive it.
class TimedFileSystem final : public core::ForwardingFileSystem {
 public:
  TimedFileSystem(core::FileSystem& base, StorageMetrics& metrics)
      : core::ForwardingFileSystem(base), metrics_(metrics) {}

  core::Result<std::unique_ptr<core::WritableFile>> OpenAppendable(const std::string& path) override;

 private:
  StorageMetrics& metrics_;
};

}  // namespace kvctl::server
