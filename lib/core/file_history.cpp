#include "lib/core/file_history.h"

#include <algorithm>

#include <fmt/format.h>

#include "lib/core/log_format.h"

namespace kvctl::core {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

class FileReader final : public EventHistory::Reader {
 public:
  FileReader(const FileLog& log, WatchFilter filter) : log_(log), filter_(std::move(filter)) {}

  Result<uint64_t> Read(uint64_t from, uint64_t to, size_t max_bytes, std::vector<WatchEvent>* out) override {
    if (from < log_.HistoryFloor()) return Compacted(from);
    if (file_ == nullptr || next_ != from) {
      if (Status s = Seek(from); !s.ok()) return s;
    }
    size_t bytes = 0;
    while (next_ <= to) {
      if (!out->empty() && bytes >= max_bytes) break;
      Result<LogRecord> record = NextRecord();
      if (!record) return record.error();
      if (record->revision < from) continue;
      if (record->type == RecordType::kTxn) {
        DecodeTxnRecord(*record, &txn_writes_);
      } else {
        txn_writes_.assign(1, *record);
      }
      for (const LogRecord& r : txn_writes_) {
        if (!filter_.Matches(r.key)) continue;
        WatchEvent e{r.revision, r.type, std::string(r.key), std::string(r.value), {}};
        if (r.has_meta) e.meta = r.meta;
        bytes += e.bytes();
        out->push_back(std::move(e));
      }
    }
    // The file and the place are kept; the bytes are not: a reader waits
    // between calls, and many may.
    std::string().swap(buffer_);
    buffer_at_ = offset_;
    return next_;
  }

 private:
  Status Compacted(uint64_t revision) const {
    return Status::Compacted(fmt::format("revision {} is no longer in the log's history (it starts at {})",
                                         revision, log_.HistoryFloor()));
  }

  // Opens the segment holding `revision` and stands at its first record.
  Status Seek(uint64_t revision) {
    const std::vector<NamedFile> segments = log_.HistorySegments();
    auto it = std::upper_bound(segments.begin(), segments.end(), revision,
                               [](uint64_t r, const NamedFile& f) { return r < f.revision; });
    if (it == segments.begin()) return Compacted(revision);
    return Open(*std::prev(it));
  }

  Status Open(const NamedFile& segment) {
    auto file = log_.fs().OpenReadable(JoinPath(log_.dir(), segment.name));
    if (!file) {
      // Removed by a compaction since the listing.
      if (file.error().IsNotFound()) return Compacted(segment.revision);
      return file.error();
    }
    file_ = std::move(*file);
    segment_ = segment;
    offset_ = kSegmentHeaderSize;
    next_ = segment.revision;
    buffer_.clear();
    buffer_at_ = offset_;
    return Status::Ok();
  }

  // The record at the reader's place, moving past it; on to the next
  // segment at the end of this one.
  Result<LogRecord> NextRecord() {
    for (;;) {
      const size_t skip = static_cast<size_t>(offset_ - buffer_at_);
      const std::string_view have = std::string_view(buffer_).substr(std::min(skip, buffer_.size()));
      ParsedRecord parsed = ParseRecord(have);
      if (parsed.outcome == ParseOutcome::kOk) {
        if (parsed.record.revision != next_) {
          return Status::Corruption(fmt::format("{} at offset {}: revision {} where {} was expected",
                                                file_->path(), offset_, parsed.record.revision, next_));
        }
        offset_ += parsed.size;
        ++next_;
        return parsed.record;
      }
      // Not all of it here yet: read on (the whole record, if its header
      // says how long it is), or go on to the next segment at the end.
      const size_t want = std::max(kChunkBytes, parsed.outcome == ParseOutcome::kTruncated ? parsed.size : 0);
      if (parsed.outcome != ParseOutcome::kTruncated && have.size() >= kRecordHeaderSize) {
        // Zeros where a record would start end a segment (preallocated).
        if (have.find_first_not_of('\0') == std::string_view::npos) {
          if (Status s = NextSegment(); !s.ok()) return s;
          continue;
        }
        return Status::Corruption(
            fmt::format("{} at offset {}: {}", file_->path(), offset_, parsed.why));
      }
      auto more = file_->ReadAt(offset_, want);
      if (!more) return more.error();
      if (more->size() <= have.size()) {
        // Nothing more in this file: the next one holds what follows.
        if (Status s = NextSegment(); !s.ok()) return s;
        continue;
      }
      buffer_ = std::move(*more);
      buffer_at_ = offset_;
    }
  }

  Status NextSegment() {
    const std::vector<NamedFile> segments = log_.HistorySegments();
    for (const NamedFile& s : segments) {
      if (s.revision == next_) return Open(s);
    }
    if (next_ < log_.HistoryFloor()) return Compacted(next_);
    return Status::IOError(fmt::format(
        "the log's history has no segment starting at revision {} after {}", next_, segment_.name));
  }

  const FileLog& log_;
  const WatchFilter filter_;
  std::unique_ptr<ReadableFile> file_;
  NamedFile segment_;
  uint64_t offset_ = 0;  // where the next record starts in file_
  uint64_t next_ = 0;    // the revision of that record
  std::string buffer_;   // bytes of file_ from buffer_at_ on
  std::vector<LogRecord> txn_writes_;  // the writes of the record at hand
  uint64_t buffer_at_ = 0;
};

}  // namespace

std::unique_ptr<EventHistory::Reader> FileEventHistory::OpenReader(const WatchFilter& filter) {
  return std::make_unique<FileReader>(log_, filter);
}

}  // namespace kvctl::core
