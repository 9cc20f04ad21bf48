#include "lib/core/file_log.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "lib/core/coding.h"
#include "lib/core/compaction.h"
#include "lib/core/data_dir.h"
#include "lib/core/file_history.h"
#include "lib/core/log_chain.h"
#include "lib/core/log_reader.h"
#include "lib/core/snapshot.h"

namespace kvctl::core {

FileLog::FileLog(FileLogOptions options, std::unique_ptr<FileLock> lock)
    : options_(std::move(options)), lock_(std::move(lock)), history_(std::make_unique<FileEventHistory>(*this)) {}

FileLog::~FileLog() {
  if (!closed_) (void)Close();
}

Result<std::unique_ptr<FileLog>> FileLog::Open(const FileLogOptions& options,
                                               const RecordSink& sink, RecoveryReport* report) {
  FileLogOptions opts = options;
  if (opts.fs == nullptr) opts.fs = &PosixFileSystem();
  if (opts.logger == nullptr) opts.logger = &NullLogger();
  FileSystem& fs = *opts.fs;

  if (Status s = fs.CreateDirs(opts.dir); !s.ok()) return s;
  auto lock = fs.LockExclusive(JoinPath(opts.dir, kLockFileName));
  if (!lock) {
    if (lock.error().IsBusy()) {
      return Status::Busy(fmt::format(
          "data dir {} is in use by another kvctl process (it holds {}/LOCK); stop that process, "
          "or point --data-dir elsewhere",
          opts.dir, opts.dir));
    }
    return lock.error();
  }
  std::unique_ptr<FileLog> log(new FileLog(std::move(opts), std::move(*lock)));
  RecoveryReport local_report;
  if (report == nullptr) report = &local_report;
  if (Status s = log->Recover(sink, report); !s.ok()) return s;
  return log;
}

Status FileLog::Recover(const RecordSink& sink, RecoveryReport* report) {
  FileSystem& fs = *options_.fs;
  std::lock_guard lock(mu_);
  auto listed = ListDataDir(fs, options_.dir);
  if (!listed) return listed.error();
  LogChain chain = LogChain::Plan(*listed, options_.dir);

  // Everything is read and checked before anything is changed: a log that
  // does not chain, or is damaged anywhere but at its tail, is refused with
  // every file as it was (no redundant file removed, no tail cut).
  if (const auto& snapshot = chain.snapshot()) {
    if (Status s = LoadSnapshot(*snapshot, sink, report); !s.ok()) return s;
  }
  if (Status s = chain.CheckSnapshotFollowed(); !s.ok()) return s;
  last_revision_ = chain.covered_revision();
  history_floor_ = chain.covered_revision() + 1;
  const std::vector<NamedFile>& segments = chain.segments();
  std::vector<std::pair<std::string, uint64_t>> zero_tails;  // path, where the records end
  uint32_t newest_version = kFormatVersion;  // the newest segment's format
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool newest = i + 1 == segments.size();
    const std::string path = JoinPath(options_.dir, segments[i].name);
    if (Status s = chain.Enter(segments[i]); !s.ok()) return s;
    auto bytes = fs.ReadFile(path);
    if (!bytes) return bytes.error();
    if (bytes->empty()) {
      // Not a crash in progress: a segment's header is synced before the
      // file is renamed into place. Its records, if it had any, are gone.
      return Status::Corruption(fmt::format(
          "corrupt log: {} is empty, not even a segment header; a segment is only renamed into "
          "place with its header on disk, so it was truncated later and what it held (revisions "
          "from {} on) is lost. kvctl will not start on it: restore the data dir from a backup, "
          "or, to go on without those revisions, move the file out of {}",
          path, segments[i].revision, options_.dir));
    }
    if (newest && bytes->size() >= kSegmentHeaderSize) newest_version = GetU32(bytes->data() + 8);
    auto scan = ScanSegment(*bytes, segments[i].revision, sink);
    if (!scan) return scan.error();
    const SegmentDamage& damage = scan->damage;
    if (damage.found && (!newest || damage.valid_record_after || damage.offset < kSegmentHeaderSize)) {
      return Status::Corruption(fmt::format(
          "corrupt log: {} at offset {}: {}{}; kvctl will not start on a log it cannot trust. "
          "Restore the data dir from a backup, or, to keep only what precedes the damage, move "
          "this segment and every later one out of {} (writes after offset {} are then lost)",
          path, damage.offset, damage.reason,
          damage.valid_record_after ? " (valid records follow it, so this is not a torn write)" : "",
          options_.dir, damage.offset));
    }
    chain.Leave(scan->last_revision);
    if (damage.found) {
      // The newest segment, the last file read: the whole chain holds, so
      // its tail may be mended now. The copy keeps any preallocated zeros
      // too (at most a MiB): which zeros the torn write left cannot be told
      // apart from them.
      if (Status s = RepairTornTail(path, *bytes, damage.offset, report); !s.ok()) return s;
    } else if (scan->zero_tail_bytes > 0) {
      // Preallocated and never written: the log was not closed (a crash,
      // kill -9), or a seal could not cut them. Cut once all is read.
      zero_tails.push_back({path, scan->valid_bytes});
    }
    last_revision_ = scan->last_revision;
    report->records += scan->records;
    report->bytes += scan->valid_bytes;
    if (newest) {
      active_records_ = scan->records;
    } else {
      sealed_.push_back({segments[i].name, scan->valid_bytes});
      sealed_bytes_ += scan->valid_bytes;
    }
  }
  report->last_revision = last_revision_;

  // What a crash left that nothing depends on: files being made (never
  // renamed into place), snapshots a newer one replaced, and segments the
  // snapshot covers (a crash in mid-compaction).
  for (const std::string& name : listed->temp_files) {
    if (Status s = RemoveRedundant(name, "unfinished file left by a crash"); !s.ok()) return s;
  }
  for (size_t i = 0; i + 1 < listed->snapshots.size(); ++i) {
    if (Status s = RemoveRedundant(listed->snapshots[i].name, "snapshot replaced by a newer one"); !s.ok()) {
      return s;
    }
  }
  for (const NamedFile& segment : chain.covered()) {
    if (Status s = RemoveRedundant(segment.name, "segment covered by the snapshot"); !s.ok()) return s;
  }
  // Appends resume where the records end.
  for (const auto& [path, records_end] : zero_tails) {
    if (Status s = fs.Truncate(path, records_end); !s.ok()) return s;
  }

  if (segments.empty()) {
    segments_ = 0;
    if (Status s = OpenNewSegmentLocked(last_revision_ + 1); !s.ok()) return s;
  } else {
    active_name_ = segments.back().name;
    auto file = fs.OpenAppendable(JoinPath(options_.dir, active_name_));
    if (!file) return file.error();
    active_ = std::move(*file);
    active_bytes_ = active_->Size();
    segments_ = segments.size();
    // Records of this format go into a segment headed by it: an older
    // kvctl reading an older segment would take a TRANSACTION record at
    // its end for a torn write and cut it, instead of refusing the
    // version it does not know.
    if (newest_version != kFormatVersion && active_records_ > 0) {
      if (Status s = SealActiveLocked(last_revision_ + 1); !s.ok()) return s;
    }
  }
  report->segments = segments_;
  return Status::Ok();
}

Status FileLog::LoadSnapshot(const NamedFile& snapshot, const RecordSink& sink, RecoveryReport* report) {
  const std::string& name = snapshot.name;
  const std::string path = JoinPath(options_.dir, name);
  // Mapped: a snapshot is never written again once in place (a compaction
  // replaces it by renaming a new file over a new name).
  auto contents = options_.fs->MapFile(path);
  if (!contents) return contents.error();
  const std::string_view bytes = (*contents)->bytes();
  auto scan = ScanSnapshot(bytes, path, snapshot.revision, sink);
  if (!scan) return scan.error();
  snapshot_name_ = name;
  snapshot_bytes_ = bytes.size();
  report->snapshot_records = scan->records;
  report->covered_revision = scan->covered_revision;
  report->bytes += bytes.size();
  return Status::Ok();
}

Status FileLog::RemoveRedundant(const std::string& name, std::string_view why) {
  if (Status s = options_.fs->Remove(JoinPath(options_.dir, name)); !s.ok()) return s;
  options_.logger->Info("removed a file the log no longer needs", {{"file", name}, {"why", std::string(why)}});
  return Status::Ok();
}

Status FileLog::RepairTornTail(const std::string& path, const std::string& bytes, uint64_t offset,
                               RecoveryReport* report) {
  FileSystem& fs = *options_.fs;
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string copy = fmt::format("{}.broken-{}-{}", path, offset, now);
  // Keep the cut bytes before cutting them, so nothing is silently dropped.
  if (Status s = fs.WriteFile(copy, std::string_view(bytes).substr(offset)); !s.ok()) return s;
  if (Status s = fs.Truncate(path, offset); !s.ok()) return s;
  auto file = fs.OpenAppendable(path);
  if (!file) return file.error();
  if (Status s = (*file)->Sync(); !s.ok()) return s;
  if (Status s = fs.SyncDir(options_.dir); !s.ok()) return s;

  report->repaired_torn_tail = true;
  report->torn_segment = path;
  report->torn_offset = offset;
  report->torn_bytes = bytes.size() - offset;
  report->torn_copy = copy;
  options_.logger->Warn("cut a torn write off the end of the log (left by a crash; never acknowledged)",
                        {{"file", path},
                         {"offset", std::to_string(offset)},
                         {"dropped_bytes", std::to_string(bytes.size() - offset)},
                         {"copy", copy}});
  return Status::Ok();
}

Status CreateSegment(FileSystem& fs, const std::string& dir, uint64_t first_revision) {
  const std::string path = JoinPath(dir, SegmentFileName(first_revision));
  const std::string temp = path + std::string(kTempSuffix);
  std::string header;
  AppendSegmentHeader(&header);
  if (Status s = fs.WriteFile(temp, header); !s.ok()) return s;
  if (Status s = fs.Rename(temp, path); !s.ok()) return s;
  return fs.SyncDir(dir);
}

Status FileLog::OpenNewSegmentLocked(uint64_t first_revision) {
  FileSystem& fs = *options_.fs;
  const std::string name = SegmentFileName(first_revision);
  const std::string path = JoinPath(options_.dir, name);
  if (Status s = CreateSegment(fs, options_.dir, first_revision); !s.ok()) return s;
  auto file = fs.OpenAppendable(path);
  if (!file) return file.error();
  active_ = std::move(*file);
  active_name_ = name;
  active_records_ = 0;
  active_bytes_ = active_->Size();
  active_allocated_ = active_->Size();
  preallocation_failed_ = false;
  ++segments_;
  return Status::Ok();
}

void FileLog::PreallocateLocked(uint64_t bytes) {
  constexpr uint64_t kChunk = 1 << 20;
  const uint64_t need = active_->Size() + bytes;
  if (need <= active_allocated_ || preallocation_failed_) return;
  // A MiB ahead, but not past where the segment will be cut.
  const uint64_t target = std::max(need, std::min(active_->Size() + kChunk, options_.segment_bytes));
  if (Status s = active_->Preallocate(target); !s.ok()) {
    preallocation_failed_ = true;
    options_.logger->Warn("could not preallocate log space; appending without it",
                          {{"file", active_->path()}, {"cause", s.message()}});
    return;
  }
  active_allocated_ = target;
}

void FileLog::TrimActiveLocked() {
  if (active_allocated_ <= active_->Size()) return;
  if (Status s = options_.fs->Truncate(active_->path(), active_->Size()); !s.ok()) {
    // Not a lost write: readers stop at the zeros, and recovery cuts them.
    options_.logger->Warn("could not cut the preallocated zeros off a segment; the next start will",
                          {{"file", active_->path()}, {"cause", s.message()}});
    return;
  }
  active_allocated_ = active_->Size();
}

Status FileLog::SealActiveLocked(uint64_t next_first_revision) {
  // The old segment is synced whatever the policy: only the newest may end
  // in a torn write, which is what lets recovery tell damage apart. Its
  // zeros go first, so the sync makes its final length durable too.
  TrimActiveLocked();
  Status s = active_->Sync();
  if (s.ok()) s = active_->Close();
  if (!s.ok()) return s;
  const uint64_t bytes = active_->Size();
  sealed_.push_back({active_name_, bytes});
  sealed_bytes_ += bytes;
  active_bytes_ = 0;
  return OpenNewSegmentLocked(next_first_revision);
}

Status FileLog::Append(const std::vector<Change>& batch) {
  std::lock_guard lock(mu_);
  if (closed_) return Status::Unavailable("the log is closed");
  if (!failed_.ok()) return failed_;
  if (batch.empty()) return Status::Ok();

  buffer_.clear();
  size_t records = 0;
  for (size_t i = 0; i < batch.size(); ++records) {
    // Metadata the writer did not know (version 0) is left to replay.
    auto meta = [](const Change& c) { return c.meta.version != 0 ? &c.meta : nullptr; };
    size_t end = i + 1;
    while (end < batch.size() && batch[end].revision == batch[i].revision) ++end;
    if (end == i + 1) {
      const Change& c = batch[i];
      AppendRecord(&buffer_, c.revision, c.type, c.key, c.value, meta(c));
    } else {
      // The changes of one transaction share its revision: one record.
      txn_writes_.clear();
      for (size_t j = i; j < end; ++j) {
        txn_writes_.push_back({batch[j].type, batch[j].key, batch[j].value, meta(batch[j])});
      }
      AppendTxnRecord(&buffer_, batch[i].revision, txn_writes_);
    }
    i = end;
  }

  if (active_records_ > 0 && active_->Size() + buffer_.size() > options_.segment_bytes) {
    if (Status s = SealActiveLocked(batch.front().revision); !s.ok()) {
      failed_ = s;
      return s;
    }
  }

  PreallocateLocked(buffer_.size());
  if (Status s = active_->Append(buffer_); !s.ok()) {
    failed_ = s;
    return s;
  }
  active_records_ += records;
  active_bytes_ = active_->Size();
  last_revision_ = batch.back().revision;
  ++appends_;
  if (options_.fsync == FsyncPolicy::kAlways) return SyncLocked();
  return Status::Ok();
}

Status FileLog::Sync() {
  std::lock_guard lock(mu_);
  if (closed_) return Status::Unavailable("the log is closed");
  return SyncLocked();
}

Status FileLog::SyncLocked() {
  if (!failed_.ok()) return failed_;
  if (Status s = active_->Sync(); !s.ok()) {
    failed_ = s;
    return s;
  }
  ++syncs_;
  return Status::Ok();
}

Status FileLog::Close() {
  // A running compaction finishes first: it must not remove files after the
  // directory lock is released.
  std::lock_guard compacting(compact_mu_);
  std::lock_guard lock(mu_);
  if (closed_) return Status::Ok();
  if (failed_.ok() && active_) TrimActiveLocked();
  Status s = failed_.ok() && active_ ? SyncLocked() : failed_;
  if (active_) {
    Status c = active_->Close();
    if (s.ok()) s = c;
  }
  closed_ = true;
  lock_.reset();
  return s;
}

Result<CompactionStats> FileLog::Compact() {
  std::lock_guard compacting(compact_mu_);
  const auto started = std::chrono::steady_clock::now();
  CompactionStats result;
  MergeInput input;
  input.fs = options_.fs;
  input.dir = options_.dir;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Status::Unavailable("the log is closed");
    if (!failed_.ok()) return failed_;
    result.bytes_before = result.bytes_after = stats().bytes;
    const uint64_t retention = options_.history_retention;
    if (retention == 0 && active_records_ > 0) {
      // Cut here so that everything written so far can be compacted. With
      // a retention the newest revisions stay in any case: no cut.
      if (Status s = SealActiveLocked(last_revision_ + 1); !s.ok()) {
        failed_ = s;
        return s;
      }
    }
    // Whole sealed segments, oldest first, while each ends before the
    // revisions kept as history (a segment ends where the next begins).
    // Leftovers the snapshot covers already (a removal that failed) go
    // too, without taking the covered revision back.
    const uint64_t keep_from = last_revision_ > retention ? last_revision_ - retention + 1 : 1;
    input.covered_revision = history_floor_.load() - 1;
    for (size_t i = 0; i < sealed_.size(); ++i) {
      uint64_t next_first = 0;
      ParseSegmentFileName(i + 1 < sealed_.size() ? sealed_[i + 1].name : active_name_, &next_first);
      if (next_first - 1 >= keep_from) break;
      input.segments.push_back(sealed_[i].name);
      input.covered_revision = std::max(input.covered_revision, next_first - 1);
    }
    if (input.segments.empty()) return result;
    if (!snapshot_name_.empty()) input.snapshot = snapshot_name_;
  }

  // The merge runs on its own thread at a lower CPU priority (nice 10), so
  // that on a busy machine the requests being served come first. A thread
  // of its own because a thread cannot raise its priority back without
  // CAP_SYS_NICE.
  Result<MergeOutput> merged = Status::Unavailable("compaction did not run");
  std::thread merger([&] {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
    merged = MergeIntoSnapshot(input);
  });
  merger.join();
  if (!merged) {
    options_.logger->Error("compaction failed; the log is unchanged", {{"cause", merged.error().message()}});
    return merged.error();
  }

  // The new snapshot is durable: what it replaces is now redundant.
  std::vector<std::string> replaced = input.segments;
  const std::string new_snapshot = SnapshotFileName(input.covered_revision);
  if (input.snapshot && *input.snapshot != new_snapshot) replaced.push_back(*input.snapshot);
  std::vector<std::string> removed;
  Status removal;
  for (const std::string& name : replaced) {
    Status s = options_.fs->Remove(JoinPath(options_.dir, name));
    if (s.ok()) {
      removed.push_back(name);
    } else if (removal.ok()) {
      removal = s;
    }
  }
  if (!removed.empty()) {
    if (Status s = options_.fs->SyncDir(options_.dir); !s.ok() && removal.ok()) removal = s;
  }

  {
    std::lock_guard lock(mu_);
    for (const std::string& name : removed) {
      auto it = std::find_if(sealed_.begin(), sealed_.end(),
                             [&](const SealedSegment& seg) { return seg.name == name; });
      if (it == sealed_.end()) continue;
      sealed_bytes_ -= it->bytes;
      sealed_.erase(it);
      --segments_;
    }
    snapshot_name_ = new_snapshot;
    snapshot_bytes_ = merged->snapshot.bytes;
    history_floor_ = input.covered_revision + 1;
    result.bytes_after = stats().bytes;
  }
  result.compacted = true;
  ++compactions_;
  if (result.bytes_before > result.bytes_after) reclaimed_bytes_ += result.bytes_before - result.bytes_after;
  result.covered_revision = input.covered_revision;
  result.records_read = merged->records_read;
  result.records_written = merged->snapshot.records;
  result.files_removed = removed.size();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  options_.logger->Info("compacted the log",
                        {{"covered_revision", std::to_string(result.covered_revision)},
                         {"bytes_before", std::to_string(result.bytes_before)},
                         {"bytes_after", std::to_string(result.bytes_after)},
                         {"records_read", std::to_string(result.records_read)},
                         {"records_kept", std::to_string(result.records_written)},
                         {"files_removed", std::to_string(result.files_removed)},
                         {"seconds", fmt::format("{:.3f}", result.seconds)}});
  if (!removal.ok()) {
    return Status::IOError(fmt::format(
        "compaction wrote {} but could not remove every file it replaces ({}); the space is "
        "freed at the next compaction or start",
        merged->snapshot.path, removal.message()));
  }
  return result;
}

std::vector<NamedFile> FileLog::HistorySegments() const {
  std::lock_guard lock(mu_);
  std::vector<NamedFile> out;
  auto add = [&](const std::string& name) {
    uint64_t first = 0;
    // Leftovers a snapshot covers (a failed removal) are not history.
    if (ParseSegmentFileName(name, &first) && first >= history_floor_.load()) out.push_back({first, name});
  };
  for (const SealedSegment& seg : sealed_) add(seg.name);
  if (!active_name_.empty()) add(active_name_);
  return out;
}

FileLogStats FileLog::stats() const {
  return {segments_.load(), sealed_bytes_.load() + snapshot_bytes_.load() + active_bytes_.load(),
          snapshot_bytes_.load(), appends_.load(), syncs_.load(), compactions_.load(),
          reclaimed_bytes_.load()};
}

std::vector<BackendMetric> FileLog::Metrics() const {
  const FileLogStats s = stats();
  return {
      {"kvctl_log_segments", "Segment files of the log.", "gauge", double(s.segments)},
      {"kvctl_log_bytes", "Bytes of the log on disk.", "gauge", double(s.bytes)},
      {"kvctl_log_appends_total", "Appends (writes) to the log.", "counter", double(s.appends)},
      {"kvctl_log_syncs_total", "fdatasync calls on the log.", "counter", double(s.syncs)},
      {"kvctl_log_snapshot_bytes", "Bytes of the compaction snapshot on disk.", "gauge",
       double(s.snapshot_bytes)},
      {"kvctl_compactions_total", "Compactions completed (online, automatic or requested).",
       "counter", double(s.compactions)},
      {"kvctl_compaction_reclaimed_bytes_total", "Disk bytes freed by compactions.", "counter",
       double(s.reclaimed_bytes)},
  };
}

}  // namespace kvctl::core
