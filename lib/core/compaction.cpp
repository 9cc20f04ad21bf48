#include "lib/core/compaction.h"

#include <unordered_map>

#include <fmt/format.h>

#include "lib/core/log_reader.h"

namespace kvctl::core {
namespace {

struct LiveValue {
  uint64_t revision = 0;
  std::string value;
};
using LiveState = std::unordered_map<std::string, LiveValue>;

void Apply(LiveState& state, const LogRecord& r) {
  if (r.type == RecordType::kPut) {
    LiveValue& v = state[std::string(r.key)];
    v.revision = r.revision;
    v.value.assign(r.value);
  } else {
    state.erase(std::string(r.key));
  }
}

}  // namespace

Result<MergeOutput> MergeIntoSnapshot(const MergeInput& input) {
  FileSystem& fs = *input.fs;
  LiveState state;
  MergeOutput out;
  uint64_t old_covered = 0;

  if (input.snapshot) {
    const std::string path = JoinPath(input.dir, *input.snapshot);
    auto contents = fs.MapFile(path);
    if (!contents) return contents.error();
    auto scan = ScanSnapshot((*contents)->bytes(), path, [&](const LogRecord& r) {
      Apply(state, r);
      return Status::Ok();
    });
    if (!scan) return scan.error();
    old_covered = scan->covered_revision;
    out.records_read += scan->records;
  }

  for (const std::string& name : input.segments) {
    const std::string path = JoinPath(input.dir, name);
    auto bytes = fs.ReadFile(path);
    if (!bytes) return bytes.error();
    auto scan = ScanSegment(*bytes, 0, [&](const LogRecord& r) {
      if (r.revision > old_covered) Apply(state, r);
      return Status::Ok();
    });
    if (!scan) return scan.error();
    if (scan->damage.found) {
      return Status::Corruption(fmt::format(
          "corrupt log: {} at offset {}: {}; compaction stopped and changed nothing. The server "
          "keeps running; restore the data dir from a backup before its next start",
          path, scan->damage.offset, scan->damage.reason));
    }
    if (scan->last_revision > input.covered_revision) {
      return Status::Corruption(fmt::format(
          "{} holds revision {}, past the {} compaction was told it covers; compaction changed "
          "nothing",
          path, scan->last_revision, input.covered_revision));
    }
    out.records_read += scan->records;
  }

  std::vector<SnapshotEntry> entries;
  entries.reserve(state.size());
  for (const auto& [key, live] : state) entries.push_back({key, live.value, live.revision});
  auto written = WriteSnapshot(fs, input.dir, input.covered_revision, entries);
  if (!written) return written.error();
  out.snapshot = std::move(*written);
  return out;
}

}  // namespace kvctl::core
