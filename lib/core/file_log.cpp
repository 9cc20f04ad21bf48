#include "lib/core/file_log.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "lib/core/log_reader.h"

namespace kvctl::core {
namespace {

constexpr std::string_view kLockFileName = "LOCK";
constexpr std::string_view kTempSuffix = ".tmp";

struct SegmentName {
  uint64_t first_revision;
  std::string name;
};

}  // namespace

FileLog::FileLog(FileLogOptions options, std::unique_ptr<FileLock> lock)
    : options_(std::move(options)), lock_(std::move(lock)) {}

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
  auto names = fs.ListDir(options_.dir);
  if (!names) return names.error();

  std::vector<SegmentName> segments;
  for (const std::string& name : *names) {
    uint64_t first = 0;
    if (ParseSegmentFileName(name, &first)) {
      segments.push_back({first, name});
    } else if (name.ends_with(kTempSuffix)) {
      // A segment that was being created when the process died: it was never
      // renamed into place, so no record was ever written to it.
      if (Status s = fs.Remove(JoinPath(options_.dir, name)); !s.ok()) return s;
      options_.logger->Info("removed unfinished segment", {{"file", name}});
    }
  }
  std::sort(segments.begin(), segments.end(),
            [](const SegmentName& a, const SegmentName& b) { return a.first_revision < b.first_revision; });

  bool reopen_newest = !segments.empty();
  for (size_t i = 0; i < segments.size(); ++i) {
    const bool newest = i + 1 == segments.size();
    const std::string path = JoinPath(options_.dir, segments[i].name);
    auto bytes = fs.ReadFile(path);
    if (!bytes) return bytes.error();

    if (newest && bytes->empty()) {
      // Created but its header never reached the disk: it holds nothing.
      if (Status s = fs.Remove(path); !s.ok()) return s;
      options_.logger->Warn("removed empty newest segment", {{"file", path}});
      reopen_newest = false;
      break;
    }

    uint64_t first_in_segment = 0;
    auto scan = ScanSegment(*bytes, last_revision_, [&](const LogRecord& record) -> Status {
      if (first_in_segment == 0) first_in_segment = record.revision;
      return sink(record);
    });
    if (!scan) return scan.error();
    if (first_in_segment != 0 && first_in_segment < segments[i].first_revision) {
      return Status::Corruption(fmt::format(
          "{} holds revision {}, below the first revision its name promises; the data dir has "
          "been tampered with or mixed with another one",
          path, first_in_segment));
    }

    const SegmentDamage& damage = scan->damage;
    if (damage.found) {
      if (!newest || damage.valid_record_after || damage.offset < kSegmentHeaderSize) {
        return Status::Corruption(fmt::format(
            "corrupt log: {} at offset {}: {}{}; kvctl will not start on a log it cannot trust. "
            "Restore the data dir from a backup, or, to keep only what precedes the damage, move "
            "this segment and every later one out of {} (writes after offset {} are then lost)",
            path, damage.offset, damage.reason,
            damage.valid_record_after ? " (valid records follow it, so this is not a torn write)" : "",
            options_.dir, damage.offset));
      }
      if (Status s = RepairTornTail(path, *bytes, damage.offset, report); !s.ok()) return s;
    }
    last_revision_ = scan->last_revision;
    report->records += scan->records;
    report->bytes += scan->valid_bytes;
    if (newest) {
      active_records_ = scan->records;
    } else {
      sealed_bytes_ += scan->valid_bytes;
    }
  }
  report->last_revision = last_revision_;

  if (!reopen_newest) {
    segments_ = segments.empty() ? 0 : segments.size() - 1;
    if (Status s = OpenNewSegment(last_revision_ + 1); !s.ok()) return s;
  } else {
    auto file = fs.OpenAppendable(JoinPath(options_.dir, segments.back().name));
    if (!file) return file.error();
    active_ = std::move(*file);
    active_bytes_ = active_->Size();
    segments_ = segments.size();
  }
  report->segments = segments_;
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

Status FileLog::OpenNewSegment(uint64_t first_revision) {
  FileSystem& fs = *options_.fs;
  const std::string path = JoinPath(options_.dir, SegmentFileName(first_revision));
  const std::string temp = path + std::string(kTempSuffix);
  std::string header;
  AppendSegmentHeader(&header);
  if (Status s = fs.WriteFile(temp, header); !s.ok()) return s;
  if (Status s = fs.Rename(temp, path); !s.ok()) return s;
  if (Status s = fs.SyncDir(options_.dir); !s.ok()) return s;
  auto file = fs.OpenAppendable(path);
  if (!file) return file.error();
  active_ = std::move(*file);
  active_records_ = 0;
  active_bytes_ = active_->Size();
  ++segments_;
  return Status::Ok();
}

Status FileLog::Append(const std::vector<Change>& batch) {
  if (closed_) return Status::Unavailable("the log is closed");
  if (!failed_.ok()) return failed_;
  if (batch.empty()) return Status::Ok();

  buffer_.clear();
  for (const Change& c : batch) AppendRecord(&buffer_, c.revision, c.type, c.key, c.value);

  if (active_records_ > 0 && active_->Size() + buffer_.size() > options_.segment_bytes) {
    // The old segment is synced whatever the policy: only the newest may end
    // in a torn write, which is what lets recovery tell damage apart.
    Status s = active_->Sync();
    if (s.ok()) s = active_->Close();
    if (s.ok()) {
      sealed_bytes_ += active_->Size();
      s = OpenNewSegment(batch.front().revision);
    }
    if (!s.ok()) {
      failed_ = s;
      return s;
    }
  }

  if (Status s = active_->Append(buffer_); !s.ok()) {
    failed_ = s;
    return s;
  }
  active_records_ += batch.size();
  active_bytes_ = active_->Size();
  last_revision_ = batch.back().revision;
  ++appends_;
  if (options_.fsync == FsyncPolicy::kAlways) return Sync();
  return Status::Ok();
}

Status FileLog::Sync() {
  if (closed_) return Status::Unavailable("the log is closed");
  if (!failed_.ok()) return failed_;
  if (Status s = active_->Sync(); !s.ok()) {
    failed_ = s;
    return s;
  }
  ++syncs_;
  return Status::Ok();
}

Status FileLog::Close() {
  if (closed_) return Status::Ok();
  Status s = failed_.ok() && active_ ? Sync() : failed_;
  if (active_) {
    Status c = active_->Close();
    if (s.ok()) s = c;
  }
  closed_ = true;
  lock_.reset();
  return s;
}

FileLogStats FileLog::stats() const {
  return {segments_.load(), sealed_bytes_.load() + active_bytes_.load(), appends_.load(),
          syncs_.load()};
}

}  // namespace kvctl::core
