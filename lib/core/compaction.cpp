#include "lib/core/compaction.h"

#include <map>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>

#include "lib/core/log_chain.h"
#include "lib/core/log_reader.h"
#include "lib/core/log_format.h"

namespace kvctl::core {
namespace {

struct LiveValue {
  uint64_t revision = 0;
  std::string value;
  KeyMeta meta;
};
using LiveState = std::unordered_map<std::string, LiveValue>;

// The leases alive, by id: their grants.
using LiveLeases = std::map<uint64_t, SnapshotLease>;

void Apply(LiveState& state, LiveLeases& leases, const LogRecord& r) {
  if (LeaseRecord lease; !ChangesKey(r.type) && DecodeLeaseRecord(r, &lease)) {
    if (r.type == RecordType::kLeaseGrant) {
      leases[lease.id] = {lease.id, lease.ttl, r.revision};
    } else {
      leases.erase(lease.id);
    }
    return;
  }
  if (r.type == RecordType::kPut) {
    auto [it, created] = state.try_emplace(std::string(r.key));
    LiveValue& v = it->second;
    // Metadata a record does not carry is derived as on replay (MemTable).
    v.meta = r.has_meta ? r.meta : KeyMeta::AfterPut(created ? nullptr : &v.meta, r.revision, 0);
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
  LiveLeases leases;
  MergeOutput out;

  // The inputs must chain like any log (log_chain.h): compaction must not
  // fold a gap into a snapshot, where it could never be found again.
  std::optional<NamedFile> snapshot;
  if (input.snapshot) {
    uint64_t revision = 0;
    if (!ParseSnapshotFileName(*input.snapshot, &revision)) {
      return Status::InvalidArgument(fmt::format("{} is not a snapshot file name", *input.snapshot));
    }
    snapshot = NamedFile{revision, *input.snapshot};
  }
  std::vector<NamedFile> segments;
  for (const std::string& name : input.segments) {
    uint64_t revision = 0;
    if (!ParseSegmentFileName(name, &revision)) {
      return Status::InvalidArgument(fmt::format("{} is not a segment file name", name));
    }
    segments.push_back({revision, name});
  }
  LogChain chain = LogChain::Plan(snapshot, segments, input.dir);

  if (snapshot) {
    const std::string path = JoinPath(input.dir, snapshot->name);
    auto contents = fs.MapFile(path);
    if (!contents) return contents.error();
    auto scan = ScanSnapshot((*contents)->bytes(), path, snapshot->revision, [&](const LogRecord& r) {
      Apply(state, leases, r);
      return Status::Ok();
    });
    if (!scan) return scan.error();
    out.records_read += scan->records;
  }

  // Segments the snapshot covers (ones a crash or a failed removal kept)
  // add nothing: they are skipped.
  for (const NamedFile& segment : chain.segments()) {
    const std::string path = JoinPath(input.dir, segment.name);
    if (Status s = chain.Enter(segment); !s.ok()) return s;
    auto bytes = fs.ReadFile(path);
    if (!bytes) return bytes.error();
    auto scan = ScanSegment(*bytes, segment.revision, [&](const LogRecord& r) {
      Apply(state, leases, r);
      return Status::Ok();
    });
    if (!scan) return scan.error();
    if (scan->damage.found) {
      return Status::Corruption(fmt::format(
          "corrupt log: {} at offset {}: {}; compaction stopped and changed nothing. The server "
          "keeps running; restore the data dir from a backup before its next start",
          path, scan->damage.offset, scan->damage.reason));
    }
    chain.Leave(scan->last_revision);
    if (scan->last_revision > input.covered_revision) {
      return Status::Corruption(fmt::format(
          "{} holds revision {}, past the {} compaction was told it covers; compaction changed "
          "nothing",
          path, scan->last_revision, input.covered_revision));
    }
    out.records_read += scan->records;
  }
  if (chain.next_revision() != input.covered_revision + 1) {
    return Status::Corruption(fmt::format(
        "compaction was told its inputs end at revision {}, but they end at {}; compaction changed "
        "nothing",
        input.covered_revision, chain.next_revision() - 1));
  }

  std::vector<SnapshotEntry> entries;
  entries.reserve(state.size());
  for (const auto& [key, live] : state) entries.push_back({key, live.value, live.revision, live.meta});
  std::vector<SnapshotLease> live_leases;
  for (const auto& [id, lease] : leases) live_leases.push_back(lease);
  auto written = WriteSnapshot(fs, input.dir, input.covered_revision, entries, live_leases);
  if (!written) return written.error();
  out.snapshot = std::move(*written);
  return out;
}

}  // namespace kvctl::core
