#include "lib/core/history_copy.h"

#include <memory>
#include <vector>

#include <fmt/format.h>

#include "lib/core/data_dir.h"
#include "lib/core/file_log.h"
#include "lib/core/snapshot.h"

namespace kvctl::core {
namespace {

constexpr size_t kBatchSize = 1024;

struct OwnedRecord {
  std::string key;
  std::string value;
  uint64_t revision = 0;
  KeyMeta meta;  // version 0: not carried by the source
};

class DataDirWriter {
 public:
  DataDirWriter(FileSystem& fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}

  void AddSnapshotRecord(const LogRecord& r) {
    snapshot_.push_back({std::string(r.key), std::string(r.value), r.revision, r.has_meta ? r.meta : KeyMeta{}});
  }

  // A compacted history starts as compaction leaves one: the segment that
  // follows the snapshot, then the snapshot (log_chain.h); the log is
  // opened after them.
  Status Begin(uint64_t covered_revision) {
    if (covered_revision > 0) {
      if (Status s = CreateSegment(fs_, dir_, covered_revision + 1); !s.ok()) return s;
      std::vector<SnapshotEntry> entries;
      entries.reserve(snapshot_.size());
      for (const OwnedRecord& r : snapshot_) entries.push_back({r.key, r.value, r.revision, r.meta});
      auto written = WriteSnapshot(fs_, dir_, covered_revision, entries);
      if (!written) return written.error();
      records_ += snapshot_.size();
      snapshot_.clear();
    }
    FileLogOptions options{.dir = dir_, .fsync = FsyncPolicy::kNever, .fs = &fs_};
    auto log = FileLog::Open(options, [](const LogRecord&) { return Status::Ok(); }, nullptr);
    if (!log) return log.error();
    log_ = std::move(*log);
    return Status::Ok();
  }

  Status Add(const LogRecord& r) {
    // A transaction's writes (one revision) go into one append, which
    // makes them one record again: never cut between them.
    if (batch_.size() >= kBatchSize && batch_.back().revision != r.revision) {
      if (Status s = Flush(); !s.ok()) return s;
    }
    batch_.push_back(
        Change{r.revision, r.type, std::string(r.key), std::string(r.value), r.has_meta ? r.meta : KeyMeta{}});
    return Status::Ok();
  }

  Status Finish() {
    if (Status s = Flush(); !s.ok()) return s;
    if (Status s = log_->Sync(); !s.ok()) return s;
    return log_->Close();
  }

  uint64_t records() const { return records_; }
  bool begun() const { return log_ != nullptr; }

 private:
  Status Flush() {
    if (batch_.empty()) return Status::Ok();
    if (Status s = log_->Append(batch_); !s.ok()) return s;
    records_ += batch_.size();
    batch_.clear();
    return Status::Ok();
  }

  FileSystem& fs_;
  std::string dir_;
  std::vector<OwnedRecord> snapshot_;
  std::vector<Change> batch_;
  std::unique_ptr<FileLog> log_;
  uint64_t records_ = 0;
};

}  // namespace

Result<CopyReport> CopyHistoryToDataDir(FileSystem& fs, const std::string& source_dir,
                                        const std::string& target_dir, uint64_t to_revision) {
  if (to_revision != 0 && fs.Exists(source_dir)) {
    auto listed = ListDataDir(fs, source_dir);
    if (listed && to_revision < listed->covered_revision()) {
      return Status::InvalidArgument(fmt::format(
          "the history before revision {} was compacted; --to must be at least that",
          listed->covered_revision()));
    }
  }
  return CopyHistoryToDataDir(
      fs,
      [&fs, &source_dir](const HistorySink& sink, HistoryReport* report) {
        return ReadHistory(fs, source_dir, sink, report);
      },
      target_dir, to_revision);
}

Result<CopyReport> CopyHistoryToDataDir(FileSystem& fs, const HistorySource& source,
                                        const std::string& target_dir, uint64_t to_revision) {
  if (fs.Exists(target_dir)) {
    auto names = fs.ListDir(target_dir);
    if (!names) return names.error();
    if (!names->empty()) {
      return Status::InvalidArgument(fmt::format(
          "--into {} is not empty; give a new or empty directory (replay never writes over a log)",
          target_dir));
    }
  }
  if (Status s = fs.CreateDirs(target_dir); !s.ok()) return s;

  CopyReport report;
  DataDirWriter writer(fs, target_dir);
  Status read = source(
      [&](const LogRecord& r, bool from_snapshot) -> Status {
        if (from_snapshot) {
          writer.AddSnapshotRecord(r);
          return Status::Ok();
        }
        if (to_revision != 0 && r.revision > to_revision) return Status::Ok();
        if (!writer.begun()) {
          if (Status s = writer.Begin(report.source.covered_revision); !s.ok()) return s;
        }
        report.last_revision = r.revision;
        return writer.Add(r);
      },
      &report.source);
  if (!read.ok()) return read;
  if (!writer.begun()) {
    if (Status s = writer.Begin(report.source.covered_revision); !s.ok()) return s;
  }
  if (report.last_revision == 0) report.last_revision = report.source.covered_revision;
  if (Status s = writer.Finish(); !s.ok()) return s;
  report.records_written = writer.records();
  return report;
}

}  // namespace kvctl::core
