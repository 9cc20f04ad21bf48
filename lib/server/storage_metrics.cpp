#include "lib/server/storage_metrics.h"

#include "lib/core/log_format.h"

namespace kvctl::server {
namespace {

// Group commit sizes: 1 change up to 4096 in powers of two.
constexpr uint64_t kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};

using Clock = std::chrono::steady_clock;

class TimedFile final : public core::WritableFile {
 public:
  TimedFile(std::unique_ptr<core::WritableFile> base, StorageMetrics& metrics)
      : base_(std::move(base)), metrics_(metrics) {}

  core::Status Append(std::string_view data) override {
    const auto start = Clock::now();
    core::Status s = base_->Append(data);
    metrics_.ObserveAppend(Clock::now() - start);
    return s;
  }
  core::Status Sync() override {
    const auto start = Clock::now();
    core::Status s = base_->Sync();
    metrics_.ObserveFsync(Clock::now() - start);
    return s;
  }
  core::Status Preallocate(uint64_t bytes) override { return base_->Preallocate(bytes); }
  core::Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  std::unique_ptr<core::WritableFile> base_;
  StorageMetrics& metrics_;
};

}  // namespace

StorageMetrics::StorageMetrics()
    : append_(LatencyBoundsNs(), 1e-9), fsync_(LatencyBoundsNs(), 1e-9), batch_(kBatchBounds, 1.0) {}

void StorageMetrics::Render(std::string* out) const {
  AppendFamily(out, "kvctl_log_append_duration_seconds", "histogram",
               "Time to write one batch of records to the log file (write(2), before any fsync).");
  append_.Render(out, "kvctl_log_append_duration_seconds", "");
  AppendFamily(out, "kvctl_log_fsync_duration_seconds", "histogram",
               "Time of one fdatasync of a log file.");
  fsync_.Render(out, "kvctl_log_fsync_duration_seconds", "");
  AppendFamily(out, "kvctl_commit_batch_changes", "histogram",
               "Changes made durable by one group commit (one log append).");
  batch_.Render(out, "kvctl_commit_batch_changes", "");
}

core::Result<std::unique_ptr<core::WritableFile>> TimedFileSystem::OpenAppendable(const std::string& path) {
  auto file = base_.OpenAppendable(path);
  if (!file || !path.ends_with(core::kSegmentSuffix)) return file;
  return std::unique_ptr<core::WritableFile>(std::make_unique<TimedFile>(std::move(*file), metrics_));
}

}  // namespace kvctl::server
