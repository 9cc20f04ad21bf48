#include "tests/support/fault_fs.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace kvctl::testing {

class FaultFile final : public core::WritableFile {
 public:
  FaultFile(FaultFs& fs, std::unique_ptr<core::WritableFile> base) : fs_(fs), base_(std::move(base)) {}

  core::Status Append(std::string_view data) override {
    if (core::Status s = fs_.BeforeOp("append to", path()); !s.ok()) return s;
    bool full = false;
    const uint64_t allowed = fs_.Allow(data.size(), &full);
    if (allowed > 0) {
      if (core::Status s = base_->Append(data.substr(0, allowed)); !s.ok()) return s;
    }
    if (full) return core::Status::IOError("write to " + path() + ": No space left on device (injected)");
    return core::Status::Ok();
  }
  core::Status Sync() override {
    if (core::Status s = fs_.BeforeOp("sync of", path()); !s.ok()) return s;
    if (core::Status s = fs_.BeforeSync(path()); !s.ok()) return s;
    if (core::Status s = base_->Sync(); !s.ok()) return s;
    fs_.MarkSynced(path(), base_->Size());
    return core::Status::Ok();
  }
  core::Status Preallocate(uint64_t bytes) override {
    // Not counted against FailWritesAfter: the zeros hold no data.
    if (core::Status s = fs_.BeforeOp("preallocation in", path()); !s.ok()) return s;
    if (fs_.preallocations_fail()) {
      return core::Status::IOError("cannot preallocate space in " + path() + ": No space left on device (injected)");
    }
    if (core::Status s = base_->Preallocate(bytes); !s.ok()) return s;
    fs_.MarkPreallocated(path(), bytes);
    return core::Status::Ok();
  }
  core::Status Close() override { return base_->Close(); }
  uint64_t Size() const override { return base_->Size(); }
  const std::string& path() const override { return base_->path(); }

 private:
  FaultFs& fs_;
  std::unique_ptr<core::WritableFile> base_;
};

void FaultFs::FailSyncs(bool on) {
  std::lock_guard lock(mu_);
  fail_syncs_ = on;
}

void FaultFs::FailSyncsOf(std::string part) {
  std::lock_guard lock(mu_);
  fail_syncs_of_ = std::move(part);
}

void FaultFs::FailPreallocations(bool on) {
  std::lock_guard lock(mu_);
  fail_preallocations_ = on;
}

bool FaultFs::preallocations_fail() {
  std::lock_guard lock(mu_);
  return fail_preallocations_;
}

void FaultFs::FailWritesAfter(uint64_t bytes) {
  std::lock_guard lock(mu_);
  limit_writes_ = true;
  bytes_left_ = bytes;
}

void FaultFs::HoldSyncs() {
  std::lock_guard lock(mu_);
  hold_syncs_ = true;
}

void FaultFs::ReleaseSyncs() {
  {
    std::lock_guard lock(mu_);
    hold_syncs_ = false;
  }
  cv_.notify_all();
}

int FaultFs::SyncsWaiting() {
  std::lock_guard lock(mu_);
  return syncs_waiting_;
}

uint64_t FaultFs::sync_count() {
  std::lock_guard lock(mu_);
  return syncs_;
}

uint64_t FaultFs::dir_sync_count(const std::string& dir) {
  std::lock_guard lock(mu_);
  return dir_syncs_[dir];
}

void FaultFs::CrashAfterOps(uint64_t n) {
  std::lock_guard lock(mu_);
  crash_armed_ = true;
  crash_at_op_ = ops_ + n;
}

void FaultFs::Revive() {
  std::lock_guard lock(mu_);
  crash_armed_ = false;
}

uint64_t FaultFs::ops_count() {
  std::lock_guard lock(mu_);
  return ops_;
}

core::Status FaultFs::BeforeOp(std::string_view what, std::string_view path) {
  std::lock_guard lock(mu_);
  if (crash_armed_ && ops_ >= crash_at_op_) {
    return core::Status::IOError(std::string(what) + " " + std::string(path) + ": the process has crashed (injected)");
  }
  ++ops_;
  return core::Status::Ok();
}

core::Status FaultFs::Remove(const std::string& path) {
  if (core::Status s = BeforeOp("removal of", path); !s.ok()) return s;
  return base_.Remove(path);
}

core::Status FaultFs::SyncDir(const std::string& dir) {
  if (core::Status s = BeforeOp("fsync of directory", dir); !s.ok()) return s;
  if (core::Status s = base_.SyncDir(dir); !s.ok()) return s;
  std::lock_guard lock(mu_);
  ++dir_syncs_[dir];
  return core::Status::Ok();
}

core::Status FaultFs::BeforeSync(std::string_view path) {
  std::unique_lock lock(mu_);
  ++syncs_waiting_;
  cv_.wait(lock, [&] { return !hold_syncs_; });
  --syncs_waiting_;
  ++syncs_;
  if (fail_syncs_ || (!fail_syncs_of_.empty() && path.find(fail_syncs_of_) != std::string_view::npos)) {
    return core::Status::IOError("fdatasync: Input/output error (injected)");
  }
  return core::Status::Ok();
}

uint64_t FaultFs::Allow(uint64_t want, bool* full) {
  std::lock_guard lock(mu_);
  if (!limit_writes_) return want;
  const uint64_t allowed = std::min(want, bytes_left_);
  bytes_left_ -= allowed;
  *full = allowed < want;
  return allowed;
}

void FaultFs::MarkSynced(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  synced_size_[path] = size;
}

void FaultFs::MarkPreallocated(const std::string& path, uint64_t size) {
  std::lock_guard lock(mu_);
  uint64_t& at_least = preallocated_size_[path];
  at_least = std::max(at_least, size);
}

core::Result<std::unique_ptr<core::WritableFile>> FaultFs::OpenAppendable(const std::string& path) {
  if (core::Status s = BeforeOp("open of", path); !s.ok()) return s;
  auto file = base_.OpenAppendable(path);
  if (!file) return file.error();
  {
    // An existing file's current bytes count as synced (they were there
    // before this FileSystem saw them).
    std::lock_guard lock(mu_);
    synced_size_.emplace(path, (*file)->Size());
  }
  return std::unique_ptr<core::WritableFile>(new FaultFile(*this, std::move(*file)));
}

core::Status FaultFs::WriteFile(const std::string& path, std::string_view data) {
  if (core::Status s = BeforeOp("write of", path); !s.ok()) return s;
  if (core::Status s = BeforeSync(path); !s.ok()) return s;
  if (core::Status s = base_.WriteFile(path, data); !s.ok()) return s;
  MarkSynced(path, data.size());
  return core::Status::Ok();
}

core::Status FaultFs::Truncate(const std::string& path, uint64_t size) {
  if (core::Status s = BeforeOp("truncation of", path); !s.ok()) return s;
  if (core::Status s = base_.Truncate(path, size); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (auto it = synced_size_.find(path); it != synced_size_.end()) it->second = std::min(it->second, size);
  return core::Status::Ok();
}

core::Status FaultFs::Rename(const std::string& from, const std::string& to) {
  if (core::Status s = BeforeOp("rename of", from); !s.ok()) return s;
  if (core::Status s = base_.Rename(from, to); !s.ok()) return s;
  std::lock_guard lock(mu_);
  if (auto it = synced_size_.find(from); it != synced_size_.end()) {
    synced_size_[to] = it->second;
    synced_size_.erase(it);
  }
  return core::Status::Ok();
}

void FaultFs::SimulateCrash() {
  std::lock_guard lock(mu_);
  for (const auto& [path, size] : synced_size_) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    const uint64_t length = std::filesystem::file_size(path, ec);
    if (length > size) std::filesystem::resize_file(path, size, ec);
    // Preallocated zeros were on the disk before the lost bytes went over
    // them: the file keeps its length, the lost bytes read as zeros.
    if (auto it = preallocated_size_.find(path); it != preallocated_size_.end() && length > size) {
      std::filesystem::resize_file(path, std::min(length, std::max(size, it->second)), ec);
    }
  }
}

TempDir::TempDir() {
  std::string tmpl = "/tmp/kvctl-test-XXXXXX";
  char* made = ::mkdtemp(tmpl.data());
  if (made == nullptr) std::abort();
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace kvctl::testing
