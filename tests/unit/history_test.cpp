// Reading a data dir's history without the lock (replay), the state as of a
// revision, and copying a history into a new data dir.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "lib/core/file_log.h"
#include "lib/core/history_copy.h"
#include "lib/core/history_reader.h"
#include "tests/support/fault_fs.h"

namespace {

using namespace kvctl;
using kvctl::testing::TempDir;

struct Event {
  uint64_t revision;
  core::RecordType type;
  std::string key, value;
  bool from_snapshot;
  bool operator==(const Event&) const = default;
};

std::vector<Event> ReadAll(const std::string& dir, core::HistoryReport* report, core::Status* status) {
  std::vector<Event> events;
  *status = core::ReadHistory(
      core::PosixFileSystem(), dir,
      [&](const core::LogRecord& r, bool snap) {
        events.push_back({r.revision, r.type, std::string(r.key), std::string(r.value), snap});
        return core::Status::Ok();
      },
      report);
  return events;
}

core::Result<std::unique_ptr<core::FileLog>> OpenLog(const std::string& dir) {
  return core::FileLog::Open({dir, core::FsyncPolicy::kAlways, 4096, nullptr, nullptr},
                             [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
}

core::Change Put(uint64_t rev, std::string key, std::string value) {
  return {rev, core::RecordType::kPut, std::move(key), std::move(value)};
}
core::Change Del(uint64_t rev, std::string key) { return {rev, core::RecordType::kDelete, std::move(key), ""}; }

std::string NewestSegment(const std::string& dir) {
  std::string newest;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".log") && name > newest) newest = name;
  }
  return core::JoinPath(dir, newest);
}

}  // namespace

TEST_CASE("replay reads every event in order, binary-safe, beside a writer holding the dir") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  const std::string binary("\0\xff\n", 3);
  REQUIRE((*log)->Append({Put(1, "a", "1"), Put(2, binary, binary), Del(3, "a")}).ok());

  core::HistoryReport report;
  core::Status status;
  auto events = ReadAll(dir.path(), &report, &status);  // the log is still open and locked
  REQUIRE(status.ok());
  CHECK(events == std::vector<Event>{{1, core::RecordType::kPut, "a", "1", false},
                                     {2, core::RecordType::kPut, binary, binary, false},
                                     {3, core::RecordType::kDelete, "a", "", false}});
  CHECK(report.records == 3);
  CHECK(report.last_revision == 3);
  CHECK_FALSE(report.incomplete_tail);
  REQUIRE((*log)->Close().ok());
}

TEST_CASE("after compaction replay starts with the snapshot's live keys, flagged") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  REQUIRE((*log)->Append({Put(1, "a", "1"), Put(2, "b", "2"), Put(3, "a", "3"), Del(4, "b")}).ok());
  REQUIRE((*log)->Compact().has_value());
  REQUIRE((*log)->Append({Put(5, "c", "5")}).ok());

  core::HistoryReport report;
  core::Status status;
  auto events = ReadAll(dir.path(), &report, &status);
  REQUIRE(status.ok());
  CHECK(events == std::vector<Event>{{3, core::RecordType::kPut, "a", "3", true},
                                     {5, core::RecordType::kPut, "c", "5", false}});
  CHECK(report.covered_revision == 4);
  CHECK(report.last_revision == 5);

  auto at4 = core::ReadStateAt(core::PosixFileSystem(), dir.path(), 4, &report);
  REQUIRE(at4.has_value());
  CHECK(at4->size() == 1);
  auto at3 = core::ReadStateAt(core::PosixFileSystem(), dir.path(), 3, &report);
  REQUIRE_FALSE(at3.has_value());  // compacted away
  CHECK(at3.error().IsInvalidArgument());
  REQUIRE((*log)->Close().ok());
}

TEST_CASE("replay reads a key-ordered snapshot's records in revision order") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  REQUIRE((*log)->Append({Put(1, "c", "1"), Put(2, "a", "2"), Put(3, "b", "3")}).ok());
  REQUIRE((*log)->Compact().has_value());

  core::HistoryReport report;
  core::Status status;
  auto events = ReadAll(dir.path(), &report, &status);
  REQUIRE(status.ok());
  CHECK(events == std::vector<Event>{{1, core::RecordType::kPut, "c", "1", true},
                                     {2, core::RecordType::kPut, "a", "2", true},
                                     {3, core::RecordType::kPut, "b", "3", true}});
  REQUIRE((*log)->Close().ok());
}

TEST_CASE("the state as of a revision is the point-in-time view") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  REQUIRE((*log)->Append({Put(1, "a", "1"), Put(2, "b", "2"), Put(3, "a", "3"), Del(4, "b")}).ok());
  REQUIRE((*log)->Close().ok());
  core::HistoryReport report;
  auto at2 = core::ReadStateAt(core::PosixFileSystem(), dir.path(), 2, &report);
  REQUIRE(at2.has_value());
  CHECK((*at2)["a"].value == "1");
  CHECK((*at2)["b"].revision == 2);
  auto latest = core::ReadStateAt(core::PosixFileSystem(), dir.path(), 0, &report);
  REQUIRE(latest.has_value());
  CHECK(latest->size() == 1);
  CHECK(latest->at("a").value == "3");
  auto past_end = core::ReadStateAt(core::PosixFileSystem(), dir.path(), 9, &report);
  CHECK_FALSE(past_end.has_value());
}

TEST_CASE("a record cut off at the end of the newest segment ends the read without an error") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  REQUIRE((*log)->Append({Put(1, "a", "1"), Put(2, "b", "2")}).ok());
  REQUIRE((*log)->Close().ok());
  const std::string seg = NewestSegment(dir.path());
  const auto size = std::filesystem::file_size(seg);
  std::filesystem::resize_file(seg, size - 3);  // as if the second record were still being written

  core::HistoryReport report;
  core::Status status;
  auto events = ReadAll(dir.path(), &report, &status);
  REQUIRE(status.ok());
  CHECK(events.size() == 1);
  CHECK(report.incomplete_tail);
  CHECK(report.tail_file == seg);
  CHECK(report.tail_offset == core::kSegmentHeaderSize + core::EncodedRecordSize(1, 1));
}

TEST_CASE("damage followed by valid records is corruption naming file and offset") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  REQUIRE((*log)->Append({Put(1, "a", "1"), Put(2, "b", "2"), Put(3, "c", "3")}).ok());
  REQUIRE((*log)->Close().ok());
  const std::string seg = NewestSegment(dir.path());
  auto bytes = core::PosixFileSystem().ReadFile(seg);
  REQUIRE(bytes.has_value());
  const size_t at = core::kSegmentHeaderSize + core::EncodedRecordSize(1, 1) + 25;  // record 2's key
  (*bytes)[at] ^= 0x20;
  REQUIRE(core::PosixFileSystem().WriteFile(seg, *bytes).ok());

  core::HistoryReport report;
  core::Status status;
  auto events = ReadAll(dir.path(), &report, &status);
  CHECK(status.IsCorruption());
  CHECK(status.message().find(seg) != std::string::npos);
  CHECK(status.message().find(std::to_string(core::kSegmentHeaderSize + core::EncodedRecordSize(1, 1))) !=
        std::string::npos);
  CHECK(events.size() == 1);  // what precedes the damage was read
}

TEST_CASE("replay of a dir with no log is a clear error") {
  TempDir dir;
  core::HistoryReport report;
  core::Status status;
  ReadAll(dir.path(), &report, &status);
  CHECK(status.IsInvalidArgument());
  ReadAll(dir.Join("missing"), &report, &status);
  CHECK(status.IsInvalidArgument());
}

TEST_CASE("a history copied into a new data dir keeps revisions, deletions and the snapshot") {
  TempDir src, dst_parent;
  {
    auto log = OpenLog(src.path());
    REQUIRE(log.has_value());
    REQUIRE((*log)->Append({Put(1, "a", "1"), Put(2, "b", "2"), Del(3, "b")}).ok());
    REQUIRE((*log)->Compact().has_value());
    REQUIRE((*log)->Append({Put(4, "c", std::string("\0x", 2)), Del(5, "c")}).ok());
    REQUIRE((*log)->Close().ok());
  }
  const std::string dst = dst_parent.Join("copy");
  auto copied = core::CopyHistoryToDataDir(core::PosixFileSystem(), src.path(), dst, 0);
  REQUIRE(copied.has_value());
  CHECK(copied->last_revision == 5);

  core::HistoryReport a, b;
  core::Status sa, sb;
  auto from = ReadAll(src.path(), &a, &sa);
  auto to = ReadAll(dst, &b, &sb);
  REQUIRE(sa.ok());
  REQUIRE(sb.ok());
  CHECK(from == to);
  CHECK(b.covered_revision == 3);
  CHECK(b.last_revision == 5);

  auto again = core::CopyHistoryToDataDir(core::PosixFileSystem(), src.path(), dst, 0);
  REQUIRE_FALSE(again.has_value());  // never over an existing log
  CHECK(again.error().IsInvalidArgument());
}
