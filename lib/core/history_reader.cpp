#include "lib/core/history_reader.h"

#include <algorithm>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "lib/core/data_dir.h"
#include "lib/core/log_chain.h"
#include "lib/core/log_reader.h"
#include "lib/core/snapshot.h"

namespace kvctl::core {
namespace {

// A compaction between listing and opening can remove a listed file; the
// listing is then taken again.
constexpr int kOpenAttempts = 5;

struct OpenedFiles {
  LogChain chain;
  std::unique_ptr<ReadableFile> snapshot;
  std::vector<std::unique_ptr<ReadableFile>> segments;  // chain.segments(), opened
};

Result<OpenedFiles> OpenConsistentSet(FileSystem& fs, const std::string& dir) {
  if (!fs.Exists(dir)) {
    return Status::InvalidArgument(fmt::format("no data dir at {} (give the server's --data-dir)", dir));
  }
  for (int attempt = 0; attempt < kOpenAttempts; ++attempt) {
    auto listed = ListDataDir(fs, dir);
    if (!listed) return listed.error();
    if (listed->segments.empty() && listed->snapshots.empty()) {
      return Status::InvalidArgument(fmt::format(
          "{} holds no kvctl log (no *.log or *.snapshot files); give the server's --data-dir", dir));
    }
    OpenedFiles opened{LogChain::Plan(*listed, dir), nullptr, {}};
    bool vanished = false;
    auto open = [&](const std::string& name) -> Result<std::unique_ptr<ReadableFile>> {
      auto file = fs.OpenReadable(JoinPath(dir, name));
      if (!file && file.error().IsNotFound()) vanished = true;
      return file;
    };
    if (const auto& snapshot = opened.chain.snapshot()) {
      auto file = open(snapshot->name);
      if (!file && !vanished) return file.error();
      if (file) opened.snapshot = std::move(*file);
    }
    for (size_t i = 0; i < opened.chain.segments().size() && !vanished; ++i) {
      auto file = open(opened.chain.segments()[i].name);
      if (!file && !vanished) return file.error();
      if (file) opened.segments.push_back(std::move(*file));
    }
    if (!vanished) return opened;
  }
  return Status::Unavailable(fmt::format(
      "the files in {} kept changing while replay opened them (compactions running back to back); "
      "try again",
      dir));
}

}  // namespace

Status ReadHistory(FileSystem& fs, const std::string& dir, const HistorySink& sink,
                   HistoryReport* report) {
  *report = {};
  auto opened = OpenConsistentSet(fs, dir);
  if (!opened) return opened.error();
  LogChain& chain = opened->chain;

  if (opened->snapshot) {
    auto bytes = opened->snapshot->ReadAll();
    if (!bytes) return bytes.error();
    // History order: a snapshot holds its records in key order (version 1
    // in revision order, which the sort keeps).
    std::vector<LogRecord> records;
    auto scan = ScanSnapshot(*bytes, opened->snapshot->path(), chain.covered_revision(), [&](const LogRecord& r) {
      records.push_back(r);
      return Status::Ok();
    });
    if (!scan) return scan.error();
    std::sort(records.begin(), records.end(),
              [](const LogRecord& a, const LogRecord& b) { return a.revision < b.revision; });
    for (const LogRecord& r : records) {
      if (Status s = sink(r, true); !s.ok()) return s;
    }
    ++report->files;
    report->records += scan->records;
    report->bytes += bytes->size();
    report->covered_revision = report->last_revision = scan->covered_revision;
  }
  if (Status s = chain.CheckSnapshotFollowed(); !s.ok()) return s;

  for (size_t i = 0; i < opened->segments.size(); ++i) {
    ReadableFile& file = *opened->segments[i];
    const NamedFile& named = chain.segments()[i];
    const bool newest = i + 1 == opened->segments.size();
    if (Status s = chain.Enter(named); !s.ok()) return s;
    auto bytes = file.ReadAll();
    if (!bytes) return bytes.error();
    ++report->files;
    if (bytes->empty()) {
      // A segment is renamed into place with its header synced: an empty
      // one was truncated afterwards (log_format.h).
      return Status::Corruption(fmt::format(
          "corrupt log: {} is empty, not even a segment header: it was truncated after it was "
          "made, and what it held (revisions from {} on) is lost; {} records before it verified. "
          "Restore the data dir from a backup; a server refuses to start on it",
          file.path(), named.revision, report->records));
    }
    auto scan = ScanSegment(*bytes, named.revision, [&](const LogRecord& r) { return sink(r, false); });
    if (!scan) return scan.error();
    chain.Leave(scan->last_revision);
    report->records += scan->records;
    report->bytes += scan->valid_bytes;
    report->last_revision = scan->last_revision;
    const SegmentDamage& damage = scan->damage;
    if (!damage.found) continue;
    if (newest && !damage.valid_record_after && damage.offset >= kSegmentHeaderSize) {
      report->incomplete_tail = true;
      report->tail_file = file.path();
      report->tail_offset = damage.offset;
      report->tail_reason = damage.reason;
      break;
    }
    return Status::Corruption(fmt::format(
        "corrupt log: {} at offset {}: {}{}; {} records before it verified. Restore the data dir "
        "from a backup; a server refuses to start on it",
        file.path(), damage.offset, damage.reason,
        damage.valid_record_after ? " (valid records follow it, so this is not a torn write)" : "",
        report->records));
  }
  return Status::Ok();
}

Result<std::map<std::string, StateEntry>> ReadStateAt(FileSystem& fs, const std::string& dir,
                                                      uint64_t revision, HistoryReport* report) {
  return ReadStateAt(
      [&fs, &dir](const HistorySink& sink, HistoryReport* r) { return ReadHistory(fs, dir, sink, r); },
      revision, report);
}

Result<std::map<std::string, StateEntry>> ReadStateAt(const HistorySource& source,
                                                      uint64_t revision, HistoryReport* report) {
  std::map<std::string, StateEntry> state;
  Status s = source(
      [&](const LogRecord& r, bool) {
        if (revision != 0 && r.revision > revision) return Status::Ok();
        if (!ChangesKey(r.type)) return Status::Ok();  // a lease's grant or end: its deletes come as records
        if (r.type == RecordType::kPut) {
          auto [it, created] = state.try_emplace(std::string(r.key));
          StateEntry& e = it->second;
          e.meta = r.has_meta ? r.meta : KeyMeta::AfterPut(created ? nullptr : &e.meta, r.revision, 0);
          e.value.assign(r.value);
          e.revision = r.revision;
        } else {
          state.erase(std::string(r.key));
        }
        return Status::Ok();
      },
      report);
  if (!s.ok()) return s;
  if (revision != 0 && revision < report->covered_revision) {
    return Status::InvalidArgument(fmt::format(
        "the history before revision {} was compacted; the earliest state replay can show is "
        "--to {}",
        report->covered_revision, report->covered_revision));
  }
  if (revision > report->last_revision) {
    return Status::InvalidArgument(fmt::format(
        "revision {} is past the end of the log (the last is {})", revision, report->last_revision));
  }
  return state;
}

}  // namespace kvctl::core
