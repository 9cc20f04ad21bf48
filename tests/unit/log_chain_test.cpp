// The chain rule (lib/core/log_chain.h, log_format.h): the files of a data
// dir must chain revision to revision, and every reader (recovery,
// compaction, replay, the copy of replay --into) refuses a log that does
// not, before it changes anything.
#include "lib/core/log_chain.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lib/core/compaction.h"
#include "lib/core/file_log.h"
#include "lib/core/history_copy.h"
#include "lib/core/history_reader.h"
#include "lib/core/log_format.h"
#include "lib/core/snapshot.h"
#include "tests/support/fault_fs.h"

namespace {

using namespace kvctl;
using kvctl::testing::FaultFs;
using kvctl::testing::TempDir;
namespace fs = std::filesystem;

TEST_SUITE_BEGIN("log_chain");

core::NamedFile Seg(uint64_t first) { return {first, core::SegmentFileName(first)}; }
core::NamedFile Snap(uint64_t covered) { return {covered, core::SnapshotFileName(covered)}; }

core::DataDirFiles Files(std::vector<core::NamedFile> segments, std::vector<core::NamedFile> snapshots = {}) {
  core::DataDirFiles files;
  files.segments = std::move(segments);
  files.snapshots = std::move(snapshots);
  return files;
}

bool Mentions(const core::Status& s, std::string_view part) {
  return s.message().find(part) != std::string::npos;
}

TEST_CASE("segments that chain are entered one after another") {
  auto chain = core::LogChain::Plan(Files({Seg(1), Seg(11), Seg(21)}), "d");
  CHECK(chain.CheckSnapshotFollowed().ok());
  CHECK(chain.segments().size() == 3);
  CHECK(chain.covered().empty());
  CHECK(chain.next_revision() == 1);
  REQUIRE(chain.Enter(Seg(1)).ok());
  chain.Leave(10);
  REQUIRE(chain.Enter(Seg(11)).ok());
  chain.Leave(20);
  REQUIRE(chain.Enter(Seg(21)).ok());
  chain.Leave(20);  // the newest holds no record yet
  CHECK(chain.next_revision() == 21);
}

TEST_CASE("a gap between two segments is corruption naming the missing revisions and both files") {
  auto chain = core::LogChain::Plan(Files({Seg(1), Seg(21)}), "d");
  REQUIRE(chain.Enter(Seg(1)).ok());
  chain.Leave(10);
  const core::Status s = chain.Enter(Seg(21));
  CHECK(s.IsCorruption());
  CHECK(Mentions(s, "revisions 11 to 20 are missing"));
  CHECK(Mentions(s, Seg(1).name));
  CHECK(Mentions(s, Seg(21).name));
}

TEST_CASE("with no snapshot the first segment must start at revision 1") {
  auto chain = core::LogChain::Plan(Files({Seg(101)}), "d");
  const core::Status s = chain.Enter(Seg(101));
  CHECK(s.IsCorruption());
  CHECK(Mentions(s, "revisions 1 to 100 are missing"));
  CHECK(Mentions(s, "snapshot"));
}

TEST_CASE("segments overlapping what came before are corruption") {
  auto chain = core::LogChain::Plan(Files({Seg(1), Seg(5)}), "d");
  REQUIRE(chain.Enter(Seg(1)).ok());
  chain.Leave(10);
  const core::Status s = chain.Enter(Seg(5));
  CHECK(s.IsCorruption());
  CHECK(Mentions(s, "overlap"));
}

TEST_CASE("a snapshot sets apart the segments it covers and the next must start right after it") {
  auto chain = core::LogChain::Plan(Files({Seg(1), Seg(50), Seg(101), Seg(150)}, {Snap(40), Snap(100)}), "d");
  REQUIRE(chain.snapshot().has_value());
  CHECK(chain.snapshot()->revision == 100);
  CHECK(chain.covered().size() == 2);
  CHECK(chain.segments().size() == 2);
  CHECK(chain.next_revision() == 101);
  CHECK(chain.Enter(Seg(101)).ok());

  auto gap = core::LogChain::Plan(Files({Seg(1), Seg(150)}, {Snap(100)}), "d");
  const core::Status s = gap.Enter(Seg(150));
  CHECK(s.IsCorruption());
  CHECK(Mentions(s, "revisions 101 to 149 are missing"));
  CHECK(Mentions(s, Snap(100).name));
}

TEST_CASE("a snapshot with no segment after it is corruption: every compaction leaves one") {
  auto chain = core::LogChain::Plan(Files({Seg(1)}, {Snap(100)}), "d");
  const core::Status s = chain.CheckSnapshotFollowed();
  CHECK(s.IsCorruption());
  CHECK(Mentions(s, Seg(101).name));
}

// A data dir with several segments (small ones), closed. Revisions 1..n.
void WriteLog(const std::string& dir, int n, uint64_t segment_bytes = 200) {
  auto log = core::FileLog::Open({dir, core::FsyncPolicy::kAlways, segment_bytes, nullptr, nullptr},
                                 [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
  REQUIRE(log.has_value());
  for (int i = 1; i <= n; ++i) {
    REQUIRE((*log)->Append({{static_cast<uint64_t>(i), core::RecordType::kPut, "key" + std::to_string(i % 5),
                             "value-" + std::to_string(i)}})
                .ok());
  }
  REQUIRE((*log)->Close().ok());
}

std::vector<std::string> Names(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(suffix)) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Every file of `dir` with its bytes: what "nothing was changed" compares.
std::map<std::string, std::string> Contents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename() == "LOCK") continue;
    auto bytes = core::PosixFileSystem().ReadFile(e.path().string());
    REQUIRE(bytes.has_value());
    out[e.path().filename().string()] = *bytes;
  }
  return out;
}

// Opens `dir` through a FaultFs and expects Corruption mentioning every one
// of `parts`, with no disk-changing call made and every file as it was.
void ExpectRecoveryRefuses(const std::string& dir, const std::vector<std::string>& parts) {
  const auto before = Contents(dir);
  FaultFs faults;
  auto log = core::FileLog::Open({dir, core::FsyncPolicy::kAlways, 200, &faults, nullptr},
                                 [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
  REQUIRE_FALSE(log.has_value());
  CHECK(log.error().IsCorruption());
  for (const std::string& part : parts) {
    CAPTURE(part);
    CHECK(Mentions(log.error(), part));
  }
  CHECK(faults.ops_count() == 0);
  CHECK(Contents(dir) == before);
}

core::Status Replay(const std::string& dir) {
  core::HistoryReport report;
  return core::ReadHistory(core::PosixFileSystem(), dir,
                           [](const core::LogRecord&, bool) { return core::Status::Ok(); }, &report);
}

TEST_CASE("a missing middle segment is refused by recovery, replay and the copy, with nothing changed") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  const auto segments = Names(dir.path(), ".log");
  REQUIRE(segments.size() >= 4);
  const std::string moved = segments[2];
  uint64_t missing_from = 0, next_first = 0;
  REQUIRE(core::ParseSegmentFileName(moved, &missing_from));
  REQUIRE(core::ParseSegmentFileName(segments[3], &next_first));
  fs::rename(dir.Join(moved), dir.path() + "-" + moved);

  const std::string range = fmt::format("revisions {} to {} are missing", missing_from, next_first - 1);
  ExpectRecoveryRefuses(dir.path(), {range, segments[1], segments[3]});
  const core::Status replayed = Replay(dir.path());
  CHECK(replayed.IsCorruption());
  CHECK(Mentions(replayed, range));
  TempDir target_parent;
  auto copied = core::CopyHistoryToDataDir(core::PosixFileSystem(), dir.path(), target_parent.Join("copy"), 0);
  REQUIRE_FALSE(copied.has_value());
  CHECK(copied.error().IsCorruption());
  fs::remove(dir.path() + "-" + moved);
}

TEST_CASE("a missing first segment is refused: without a snapshot the log starts at revision 1") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  const auto segments = Names(dir.path(), ".log");
  uint64_t second = 0;
  REQUIRE(core::ParseSegmentFileName(segments[1], &second));
  fs::remove(dir.Join(segments[0]));
  ExpectRecoveryRefuses(dir.path(), {fmt::format("revisions 1 to {} are missing", second - 1)});
  CHECK(Replay(dir.path()).IsCorruption());
}

// Compacts `dir` (closed), leaving the snapshot and the segment after it.
uint64_t Compact(const std::string& dir) {
  auto log = core::FileLog::Open({dir, core::FsyncPolicy::kAlways, 200, nullptr, nullptr},
                                 [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
  REQUIRE(log.has_value());
  auto stats = (*log)->Compact();
  REQUIRE(stats.has_value());
  REQUIRE((*log)->Close().ok());
  return stats->covered_revision;
}

TEST_CASE("a missing snapshot that the segments rely on is refused") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  const uint64_t covered = Compact(dir.path());
  WriteLog(dir.path(), 0);  // opens and closes: nothing changes
  REQUIRE(Names(dir.path(), ".snapshot").size() == 1);
  fs::remove(dir.Join(core::SnapshotFileName(covered)));
  ExpectRecoveryRefuses(dir.path(), {fmt::format("revisions 1 to {} are missing", covered)});
  CHECK(Replay(dir.path()).IsCorruption());
}

TEST_CASE("a snapshot renamed to another revision is refused before any segment is removed as covered") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  // A crash after the snapshot went into place and before the segments it
  // covers were removed: they are still there.
  const auto segments = Names(dir.path(), ".log");
  REQUIRE(segments.size() >= 4);
  uint64_t newest_first = 0;
  REQUIRE(core::ParseSegmentFileName(segments.back(), &newest_first));
  const uint64_t covered = newest_first - 1;
  {
    core::HistoryReport report;
    auto state = core::ReadStateAt(core::PosixFileSystem(), dir.path(), covered, &report);
    REQUIRE(state.has_value());
    std::vector<core::SnapshotEntry> entries;
    for (const auto& [key, entry] : *state) entries.push_back({key, entry.value, entry.revision});
    REQUIRE(core::WriteSnapshot(core::PosixFileSystem(), dir.path(), covered, entries).has_value());
  }
  SUBCASE("as it is, the covered segments go and the state is whole") {
    auto log = core::FileLog::Open({dir.path(), core::FsyncPolicy::kAlways, 200, nullptr, nullptr},
                                   [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
    REQUIRE(log.has_value());
    CHECK(Names(dir.path(), ".log") == std::vector<std::string>{segments.back()});
  }
  SUBCASE("renamed higher") {
    fs::rename(dir.Join(core::SnapshotFileName(covered)), dir.Join(core::SnapshotFileName(covered + 3)));
    ExpectRecoveryRefuses(dir.path(), {core::SnapshotFileName(covered + 3), "renamed"});
    CHECK(Names(dir.path(), ".log") == segments);
    CHECK(Replay(dir.path()).IsCorruption());
  }
  SUBCASE("renamed lower") {
    fs::rename(dir.Join(core::SnapshotFileName(covered)), dir.Join(core::SnapshotFileName(covered - 3)));
    ExpectRecoveryRefuses(dir.path(), {core::SnapshotFileName(covered - 3)});
    CHECK(Names(dir.path(), ".log") == segments);
  }
}

TEST_CASE("a segment renamed to another revision is refused") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  const auto segments = Names(dir.path(), ".log");
  uint64_t first = 0;
  REQUIRE(core::ParseSegmentFileName(segments[1], &first));
  // Renamed over the gap it leaves: the names alone chain no longer, and the
  // records do not start where the name says.
  fs::rename(dir.Join(segments[1]), dir.Join(core::SegmentFileName(first - 2)));
  ExpectRecoveryRefuses(dir.path(), {core::SegmentFileName(first - 2)});
  CHECK(Replay(dir.path()).IsCorruption());
}

TEST_CASE("the newest segment truncated to zero bytes is damage, not an empty tail to drop") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  const auto segments = Names(dir.path(), ".log");
  fs::resize_file(dir.Join(segments.back()), 0);
  ExpectRecoveryRefuses(dir.path(), {segments.back(), "empty"});
  CHECK(fs::exists(dir.Join(segments.back())));
  CHECK(Replay(dir.path()).IsCorruption());
}

TEST_CASE("compaction refuses inputs that do not chain and writes no snapshot") {
  TempDir dir;
  WriteLog(dir.path(), 40);
  auto segments = Names(dir.path(), ".log");
  REQUIRE(segments.size() >= 4);
  core::MergeInput input;
  input.fs = &core::PosixFileSystem();
  input.dir = dir.path();
  input.segments = {segments[0], segments[2]};  // segments[1] left out: a gap
  uint64_t third = 0;
  REQUIRE(core::ParseSegmentFileName(segments[3], &third));
  input.covered_revision = third - 1;
  auto merged = core::MergeIntoSnapshot(input);
  REQUIRE_FALSE(merged.has_value());
  CHECK(merged.error().IsCorruption());
  CHECK(Mentions(merged.error(), "are missing"));
  CHECK(Names(dir.path(), ".snapshot").empty());
}

TEST_SUITE_END();

}  // namespace
