// FileLog: segments, recovery, torn tails, corruption, the directory lock.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/core/file_log.h"
#include "lib/core/log_format.h"
#include "lib/core/log_reader.h"
#include "tests/support/fault_fs.h"

namespace {

using namespace kvctl;
using kvctl::testing::FaultFs;
using kvctl::testing::TempDir;

struct Seen {
  uint64_t revision;
  core::RecordType type;
  std::string key, value;
};

struct Opened {
  core::Result<std::unique_ptr<core::FileLog>> log;
  std::vector<Seen> records;
  core::RecoveryReport report;
};

Opened Open(const std::string& dir, uint64_t segment_bytes = 1 << 20, core::FileSystem* fs = nullptr,
            core::FsyncPolicy fsync = core::FsyncPolicy::kAlways) {
  std::vector<Seen> seen;
  core::RecoveryReport report;
  auto log = core::FileLog::Open({dir, fsync, segment_bytes, fs, nullptr},
                                 [&](const core::LogRecord& r) {
                                   seen.push_back({r.revision, r.type, std::string(r.key), std::string(r.value)});
                                   return core::Status::Ok();
                                 },
                                 &report);
  return {std::move(log), std::move(seen), report};
}

core::Change Put(uint64_t rev, std::string key, std::string value) {
  return {rev, core::RecordType::kPut, std::move(key), std::move(value)};
}

std::vector<std::string> SegmentNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    uint64_t first = 0;
    if (core::ParseSegmentFileName(e.path().filename().string(), &first)) names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> FilesContaining(const std::string& dir, std::string_view part) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(part) != std::string::npos) names.push_back(e.path().string());
  }
  return names;
}

// Writes `n` puts (revisions 1..n) in batches of one, then closes the log.
void WriteRecords(const std::string& dir, int n, uint64_t segment_bytes = 1 << 20) {
  auto opened = Open(dir, segment_bytes);
  REQUIRE(opened.log.has_value());
  for (int i = 1; i <= n; ++i) {
    REQUIRE((*opened.log)->Append({Put(i, "key" + std::to_string(i), std::string(i % 7, 'v'))}).ok());
  }
  REQUIRE((*opened.log)->Close().ok());
}

void FlipByte(const std::string& path, uint64_t offset) {
  auto bytes = core::PosixFileSystem().ReadFile(path);
  REQUIRE(bytes.has_value());
  (*bytes)[offset] = static_cast<char>((*bytes)[offset] ^ 0x40);
  REQUIRE(core::PosixFileSystem().WriteFile(path, *bytes).ok());
}

}  // namespace

TEST_CASE("records survive close and reopen, in order, binary-safe") {
  TempDir dir;
  {
    auto opened = Open(dir.path());
    REQUIRE(opened.log.has_value());
    CHECK(opened.records.empty());
    REQUIRE((*opened.log)->Append({Put(1, std::string("a\0b", 3), std::string("\xff\n\0", 3)),
                                   Put(2, "empty", ""),
                                   {3, core::RecordType::kDelete, "a", ""}})
                .ok());
  }
  auto reopened = Open(dir.path());
  REQUIRE(reopened.log.has_value());
  REQUIRE(reopened.records.size() == 3);
  CHECK(reopened.records[0].key == std::string("a\0b", 3));
  CHECK(reopened.records[0].value == std::string("\xff\n\0", 3));
  CHECK(reopened.records[1].value.empty());
  CHECK(reopened.records[2].type == core::RecordType::kDelete);
  CHECK(reopened.report.last_revision == 3);
}

TEST_CASE("segments are cut at segment_bytes, named by first revision, and all read back") {
  TempDir dir;
  WriteRecords(dir.path(), 400, 4096);
  const auto names = SegmentNames(dir.path());
  CHECK(names.size() > 3);
  CHECK(std::filesystem::path(names.front()).filename() == "00000000000000000001.log");
  for (const auto& name : names) {
    // A segment is cut once it holds segment_bytes: it exceeds that by at most one batch.
    CHECK(std::filesystem::file_size(name) <= 4096 + core::EncodedRecordSize(8, 7));
  }
  auto reopened = Open(dir.path(), 4096);
  REQUIRE(reopened.log.has_value());
  REQUIRE(reopened.records.size() == 400);
  for (size_t i = 0; i < reopened.records.size(); ++i) CHECK(reopened.records[i].revision == i + 1);
  CHECK(reopened.report.segments == names.size());
}

TEST_CASE("a torn write at any offset of the newest segment recovers the prefix and keeps the cut bytes") {
  TempDir scratch;
  const std::string pristine = scratch.Join("pristine");
  WriteRecords(pristine, 6);
  const std::string segment = SegmentNames(pristine).back();
  const uint64_t size = std::filesystem::file_size(segment);
  auto full = core::PosixFileSystem().ReadFile(segment);
  REQUIRE(full.has_value());

  // Record boundaries, to know how many whole records each cut keeps.
  std::vector<uint64_t> ends;
  for (uint64_t at = core::kSegmentHeaderSize; at < size;) {
    auto parsed = core::ParseRecord(std::string_view(*full).substr(at));
    REQUIRE(parsed.outcome == core::ParseOutcome::kOk);
    at += parsed.size;
    ends.push_back(at);
  }

  for (uint64_t cut = core::kSegmentHeaderSize; cut < size; ++cut) {
    CAPTURE(cut);
    TempDir dir;
    std::filesystem::copy(pristine, dir.path(), std::filesystem::copy_options::recursive);
    const std::string seg = dir.Join(std::filesystem::path(segment).filename().string());
    std::filesystem::resize_file(seg, cut);

    auto opened = Open(dir.path());
    REQUIRE(opened.log.has_value());
    const size_t whole = static_cast<size_t>(std::count_if(ends.begin(), ends.end(), [&](uint64_t e) { return e <= cut; }));
    CHECK(opened.records.size() == whole);
    for (size_t i = 0; i < opened.records.size(); ++i) CHECK(opened.records[i].revision == i + 1);
    const bool torn = whole == 0 ? cut > core::kSegmentHeaderSize : ends[whole - 1] != cut;
    CHECK(opened.report.repaired_torn_tail == torn);
    if (torn) {
      const auto copies = FilesContaining(dir.path(), ".broken-");
      REQUIRE(copies.size() == 1);
      const uint64_t cut_at = whole == 0 ? core::kSegmentHeaderSize : ends[whole - 1];
      CHECK(std::filesystem::file_size(copies[0]) == cut - cut_at);
      CHECK(std::filesystem::file_size(seg) == cut_at);
    }
    // The repaired log takes new writes after what survived.
    REQUIRE((*opened.log)->Append({Put(whole + 1, "after", "x")}).ok());
  }
}

TEST_CASE("garbage after the last record of the newest segment is cut off, and kept") {
  for (const std::string& tail : {std::string("\x13garbage that is no record at all"),
                                  std::string("\x13torn") + std::string(4096, '\0')}) {
    TempDir dir;
    WriteRecords(dir.path(), 5);
    const std::string seg = SegmentNames(dir.path()).back();
    auto bytes = core::PosixFileSystem().ReadFile(seg);
    REQUIRE(core::PosixFileSystem().WriteFile(seg, *bytes + tail).ok());

    auto opened = Open(dir.path());
    REQUIRE(opened.log.has_value());
    CHECK(opened.records.size() == 5);
    CHECK(opened.report.repaired_torn_tail);
    CHECK(opened.report.torn_bytes == tail.size());
    CHECK(std::filesystem::file_size(seg) == bytes->size());
  }
}

TEST_CASE("preallocated zeros left by a crash are cut on reopen, with no copy and no torn tail") {
  TempDir dir;
  WriteRecords(dir.path(), 5);
  const std::string seg = SegmentNames(dir.path()).back();
  auto bytes = core::PosixFileSystem().ReadFile(seg);
  REQUIRE(core::PosixFileSystem().WriteFile(seg, *bytes + std::string(1 << 20, '\0')).ok());

  auto opened = Open(dir.path());
  REQUIRE(opened.log.has_value());
  CHECK(opened.records.size() == 5);
  CHECK_FALSE(opened.report.repaired_torn_tail);
  CHECK(FilesContaining(dir.path(), ".broken-").empty());
  // Appends resume right after the last record.
  REQUIRE((*opened.log)->Append({Put(6, "after", "x")}).ok());
  REQUIRE((*opened.log)->Close().ok());
  auto reopened = Open(dir.path());
  REQUIRE(reopened.log.has_value());
  CHECK(reopened.records.size() == 6);
  CHECK(reopened.records.back().key == "after");
}

TEST_CASE("the active segment is zero-filled ahead of appends, and the zeros go when it is sealed or closed") {
  TempDir dir;
  auto opened = Open(dir.path(), 8 << 20);
  REQUIRE(opened.log.has_value());
  REQUIRE((*opened.log)->Append({Put(1, "a", "1")}).ok());
  const std::string first = SegmentNames(dir.path()).back();
  const uint64_t written = core::kSegmentHeaderSize + core::EncodedRecordSize(1, 1);
  // A MiB ahead of the appends, so their fdatasync need not write the size.
  CHECK(std::filesystem::file_size(first) == core::kSegmentHeaderSize + (1 << 20));
  auto bytes = core::PosixFileSystem().ReadFile(first);
  CHECK(bytes->find_first_not_of('\0', written) == std::string::npos);
  // A reader beside the writer sees the record and stops at the zeros.
  auto scan = core::ScanSegment(*bytes, 1, [](const core::LogRecord&) { return core::Status::Ok(); });
  REQUIRE(scan.has_value());
  CHECK(scan->records == 1);
  CHECK_FALSE(scan->damage.found);

  // Compaction seals the active segment: it keeps no zeros.
  REQUIRE((*opened.log)->Compact().has_value());
  REQUIRE((*opened.log)->Append({Put(2, "b", "2")}).ok());
  const std::string second = SegmentNames(dir.path()).back();
  CHECK(second != first);
  CHECK(std::filesystem::file_size(second) == core::kSegmentHeaderSize + (1 << 20));
  REQUIRE((*opened.log)->Close().ok());
  CHECK(std::filesystem::file_size(second) == core::kSegmentHeaderSize + core::EncodedRecordSize(1, 1));
}

TEST_CASE("preallocation never reaches past the segment size, and a full disk turns it off") {
  SUBCASE("small segments") {
    TempDir dir;
    auto opened = Open(dir.path(), 4096);
    REQUIRE(opened.log.has_value());
    REQUIRE((*opened.log)->Append({Put(1, "a", "1")}).ok());
    CHECK(std::filesystem::file_size(SegmentNames(dir.path()).back()) == 4096);
  }
  SUBCASE("a failed preallocation leaves plain appends, which go on") {
    TempDir dir;
    FaultFs fs;
    fs.FailPreallocations(true);
    auto opened = Open(dir.path(), 8 << 20, &fs);
    REQUIRE(opened.log.has_value());
    REQUIRE((*opened.log)->Append({Put(1, "a", "1")}).ok());
    REQUIRE((*opened.log)->Append({Put(2, "b", "2")}).ok());
    const std::string seg = SegmentNames(dir.path()).back();
    CHECK(std::filesystem::file_size(seg) == core::kSegmentHeaderSize + 2 * core::EncodedRecordSize(1, 1));
    fs.FailPreallocations(false);
    REQUIRE((*opened.log)->Close().ok());
    auto reopened = Open(dir.path());
    REQUIRE(reopened.log.has_value());
    CHECK(reopened.records.size() == 2);
  }
}

TEST_CASE("a flipped byte followed by valid records is corruption naming file and offset, and nothing is changed") {
  TempDir dir;
  WriteRecords(dir.path(), 10);
  const std::string seg = SegmentNames(dir.path()).back();
  const uint64_t offset = core::kSegmentHeaderSize + 2 * core::EncodedRecordSize(4, 2) + 30;
  FlipByte(seg, offset);
  const auto before = std::filesystem::file_size(seg);

  auto opened = Open(dir.path());
  REQUIRE_FALSE(opened.log.has_value());
  CHECK(opened.log.error().IsCorruption());
  CHECK(opened.log.error().message().find(seg) != std::string::npos);
  CHECK(opened.log.error().message().find("offset") != std::string::npos);
  CHECK(std::filesystem::file_size(seg) == before);
  CHECK(FilesContaining(dir.path(), ".broken-").empty());
}

TEST_CASE("damage at the end of an older segment is corruption, not a torn write") {
  TempDir dir;
  WriteRecords(dir.path(), 200, 4096);
  const auto names = SegmentNames(dir.path());
  REQUIRE(names.size() >= 2);
  const std::string older = names[names.size() - 2];
  std::filesystem::resize_file(older, std::filesystem::file_size(older) - 3);

  auto opened = Open(dir.path(), 4096);
  REQUIRE_FALSE(opened.log.has_value());
  CHECK(opened.log.error().IsCorruption());
  CHECK(opened.log.error().message().find(older) != std::string::npos);
}

TEST_CASE("a damaged segment header is corruption") {
  TempDir dir;
  WriteRecords(dir.path(), 3);
  FlipByte(SegmentNames(dir.path()).back(), 2);
  auto opened = Open(dir.path());
  REQUIRE_FALSE(opened.log.has_value());
  CHECK(opened.log.error().IsCorruption());
}

TEST_CASE("a second open of a data dir is refused while the first holds it") {
  TempDir dir;
  auto first = Open(dir.path());
  REQUIRE(first.log.has_value());
  auto second = Open(dir.path());
  REQUIRE_FALSE(second.log.has_value());
  CHECK(second.log.error().IsBusy());
  CHECK(second.log.error().message().find("in use") != std::string::npos);
  REQUIRE((*first.log)->Close().ok());
  CHECK(Open(dir.path()).log.has_value());
}

TEST_CASE("an unfinished temp segment from a crash is removed on open") {
  TempDir dir;
  WriteRecords(dir.path(), 2);
  REQUIRE(core::PosixFileSystem().WriteFile(dir.Join("00000000000000000003.log.tmp"), "KVCTL").ok());
  auto opened = Open(dir.path());
  REQUIRE(opened.log.has_value());
  CHECK(opened.records.size() == 2);
  CHECK_FALSE(std::filesystem::exists(dir.Join("00000000000000000003.log.tmp")));
}

TEST_CASE("a crash loses nothing that an append under fsync=always returned for") {
  TempDir dir;
  FaultFs fs;
  {
    auto opened = Open(dir.path(), 4096, &fs);
    REQUIRE(opened.log.has_value());
    for (int i = 1; i <= 100; ++i) REQUIRE((*opened.log)->Append({Put(i, "k" + std::to_string(i), "v")}).ok());
    fs.SimulateCrash();
    // The process is gone: nothing more of it reaches the disk.
    fs.FailWritesAfter(0);
    fs.FailSyncs(true);
  }
  auto reopened = Open(dir.path(), 4096);
  REQUIRE(reopened.log.has_value());
  CHECK(reopened.records.size() == 100);
}

TEST_CASE("a crash under fsync=never keeps a clean prefix of the log") {
  TempDir dir;
  FaultFs fs;
  {
    auto opened = Open(dir.path(), 4096, &fs, core::FsyncPolicy::kNever);
    REQUIRE(opened.log.has_value());
    for (int i = 1; i <= 300; ++i) REQUIRE((*opened.log)->Append({Put(i, "k" + std::to_string(i), "v")}).ok());
    fs.SimulateCrash();
    fs.FailWritesAfter(0);
    fs.FailSyncs(true);
  }
  auto reopened = Open(dir.path(), 4096);
  REQUIRE(reopened.log.has_value());
  // Sealed segments were synced when the next one was cut; the active one's
  // unsynced records are gone.
  CHECK(reopened.records.size() < 300);
  CHECK(reopened.records.size() > 0);
  for (size_t i = 0; i < reopened.records.size(); ++i) CHECK(reopened.records[i].revision == i + 1);
}

TEST_CASE("a failed sync or a full disk fails the append and every later one") {
  SUBCASE("failing fsync") {
    TempDir dir;
    FaultFs fs;
    auto opened = Open(dir.path(), 1 << 20, &fs);
    REQUIRE(opened.log.has_value());
    REQUIRE((*opened.log)->Append({Put(1, "a", "1")}).ok());
    fs.FailSyncs(true);
    core::Status s = (*opened.log)->Append({Put(2, "b", "2")});
    CHECK(s.IsIOError());
    CHECK(s.message().find("fdatasync") != std::string::npos);
    fs.FailSyncs(false);
    CHECK_FALSE((*opened.log)->Append({Put(3, "c", "3")}).ok());
  }
  SUBCASE("no space left mid-record, then recovery cuts the partial record") {
    TempDir dir;
    FaultFs fs;
    {
      auto opened = Open(dir.path(), 1 << 20, &fs);
      REQUIRE(opened.log.has_value());
      REQUIRE((*opened.log)->Append({Put(1, "a", "1")}).ok());
      fs.FailWritesAfter(10);
      core::Status s = (*opened.log)->Append({Put(2, "b", std::string(100, 'x'))});
      CHECK(s.IsIOError());
      CHECK(s.message().find("No space") != std::string::npos);
    }
    auto reopened = Open(dir.path());
    REQUIRE(reopened.log.has_value());
    CHECK(reopened.records.size() == 1);
    CHECK(reopened.report.repaired_torn_tail);
    // The 10 bytes written, then the zeros preallocated for them.
    auto copy = core::PosixFileSystem().ReadFile(reopened.report.torn_copy);
    REQUIRE(copy.has_value());
    CHECK(copy->size() == reopened.report.torn_bytes);
    std::string record;
    core::AppendRecord(&record, 2, core::RecordType::kPut, "b", std::string(100, 'x'));
    CHECK(copy->substr(0, 10) == record.substr(0, 10));
    CHECK(copy->find_first_not_of('\0', 10) == std::string::npos);
  }
}

TEST_CASE("every new segment is renamed into place and made durable by syncing the directory") {
  TempDir dir;
  FaultFs fs;
  auto opened = Open(dir.path(), 4096, &fs);
  REQUIRE(opened.log.has_value());
  CHECK(fs.dir_sync_count(dir.path()) == 1);  // the first segment
  for (int i = 1; i <= 400; ++i) REQUIRE((*opened.log)->Append({Put(i, "key" + std::to_string(i), "v")}).ok());
  const size_t segments = SegmentNames(dir.path()).size();
  REQUIRE(segments > 2);
  CHECK(fs.dir_sync_count(dir.path()) == segments);
  CHECK(FilesContaining(dir.path(), ".tmp").empty());
}
