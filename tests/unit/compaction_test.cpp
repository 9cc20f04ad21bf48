// Compaction: snapshots, what survives, crash safety at every step, faults,
// appends during compaction, the automatic policy.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>

#include <fmt/format.h>
#include <xxhash.h>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/auto_compaction.h"
#include "lib/core/data_dir.h"
#include "lib/core/file_log.h"
#include "lib/core/snapshot.h"
#include "lib/core/store.h"
#include "tests/support/fault_fs.h"

namespace {

using namespace kvctl;
using kvctl::testing::FaultFs;
using kvctl::testing::TempDir;

struct Live {
  std::string value;
  uint64_t revision;
  bool operator==(const Live&) const = default;
};
using State = std::map<std::string, Live>;

// What recovery hands back, folded into a key/value state.
struct Recovered {
  core::Status status;
  State state;
  core::RecoveryReport report;
};

Recovered Recover(const std::string& dir, core::FileSystem* fs = nullptr) {
  Recovered out;
  auto log = core::FileLog::Open({dir, core::FsyncPolicy::kAlways, 4096, fs, nullptr},
                                 [&](const core::LogRecord& r) {
                                   if (r.type == core::RecordType::kPut) {
                                     out.state[std::string(r.key)] = {std::string(r.value), r.revision};
                                   } else {
                                     out.state.erase(std::string(r.key));
                                   }
                                   return core::Status::Ok();
                                 },
                                 &out.report);
  out.status = log ? (*log)->Close() : log.error();
  return out;
}

core::Result<std::unique_ptr<core::FileLog>> OpenLog(const std::string& dir, core::FileSystem* fs = nullptr) {
  return core::FileLog::Open({dir, core::FsyncPolicy::kAlways, 4096, fs, nullptr},
                             [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
}

// Writes a history of overwrites and deletions over several 4 KiB segments,
// starting at revision `first`, and returns the state it leaves.
State WriteHistory(core::FileLog& log, uint64_t first, uint64_t count, State state = {}) {
  for (uint64_t rev = first; rev < first + count; ++rev) {
    const std::string key = "key" + std::to_string(rev % 13);
    core::Change c{rev, core::RecordType::kPut, key, std::string(40 + rev % 9, static_cast<char>('a' + rev % 26))};
    if (rev % 5 == 0) {
      c.type = core::RecordType::kDelete;
      c.value.clear();
      state.erase(key);
    } else {
      state[key] = {c.value, rev};
    }
    REQUIRE(log.Append({c}).ok());
  }
  return state;
}

size_t CountFiles(const std::string& dir, std::string_view suffix) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().ends_with(suffix)) ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("compaction keeps exactly the live keys with their revisions and frees the replaced segments") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  const State expected = WriteHistory(**log, 1, 600);
  REQUIRE(CountFiles(dir.path(), ".log") > 5);

  auto stats = (*log)->Compact();
  REQUIRE(stats.has_value());
  CHECK(stats->compacted);
  CHECK(stats->covered_revision == 600);
  CHECK(stats->records_read == 600);
  CHECK(stats->records_written == expected.size());
  CHECK(stats->bytes_after < stats->bytes_before / 5);
  CHECK(CountFiles(dir.path(), ".snapshot") == 1);
  CHECK(CountFiles(dir.path(), ".log") == 1);  // the new, empty active segment
  CHECK((*log)->stats().bytes == stats->bytes_after);
  REQUIRE((*log)->Close().ok());

  Recovered r = Recover(dir.path());
  REQUIRE(r.status.ok());
  CHECK(r.state == expected);
  CHECK(r.report.last_revision == 600);
  CHECK(r.report.covered_revision == 600);
}

TEST_CASE("a second compaction merges the snapshot with what came after it") {
  TempDir dir;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  State expected = WriteHistory(**log, 1, 300);
  REQUIRE((*log)->Compact().has_value());

  auto nothing = (*log)->Compact();
  REQUIRE(nothing.has_value());
  CHECK_FALSE(nothing->compacted);  // nothing written since

  expected = WriteHistory(**log, 301, 300, expected);
  auto again = (*log)->Compact();
  REQUIRE(again.has_value());
  CHECK(again->compacted);
  CHECK(again->covered_revision == 600);
  CHECK(CountFiles(dir.path(), ".snapshot") == 1);
  REQUIRE((*log)->Close().ok());
  Recovered r = Recover(dir.path());
  REQUIRE(r.status.ok());
  CHECK(r.state == expected);
}

TEST_CASE("revisions never go backwards when the last changes compacted were deletions") {
  TempDir dir;
  {
    core::Store store;
    auto log = core::FileLog::Open({dir.path(), core::FsyncPolicy::kAlways, 4096, nullptr, nullptr},
                                   [&](const core::LogRecord& r) {
                                     store.ApplyRecovered(r);
                                     return core::Status::Ok();
                                   },
                                   nullptr);
    REQUIRE(log.has_value());
    store.Start(std::move(*log));
    REQUIRE(store.Put("a", "1").has_value());
    REQUIRE(store.Put("b", "2").has_value());
    REQUIRE(store.Delete("b").has_value());  // revision 3, the last
    REQUIRE(store.Compact().has_value());
    REQUIRE(store.Close().ok());
  }
  core::Store store;
  core::RecoveryReport report;
  auto log = core::FileLog::Open({dir.path(), core::FsyncPolicy::kAlways, 4096, nullptr, nullptr},
                                 [&](const core::LogRecord& r) {
                                   store.ApplyRecovered(r);
                                   return core::Status::Ok();
                                 },
                                 &report);
  REQUIRE(log.has_value());
  CHECK(report.last_revision == 3);
  store.NoteRecoveredRevision(report.last_revision);
  store.Start(std::move(*log));
  CHECK_FALSE(store.Get("b").has_value());  // a deleted key stays deleted
  auto put = store.Put("c", "3");
  REQUIRE(put.has_value());
  CHECK(put->revision == 4);
  REQUIRE(store.Close().ok());
}

TEST_CASE("a crash at any step of compaction leaves a log that recovers the same state") {
  // n walks through every disk change compaction makes: cutting the active
  // segment, writing the snapshot, its sync, the rename, the directory sync
  // and each removal. The process "dies" before change n.
  bool completed = false;
  for (uint64_t n = 0; n < 400 && !completed; ++n) {
    CAPTURE(n);
    TempDir dir;
    State expected;
    {
      auto log = OpenLog(dir.path());
      REQUIRE(log.has_value());
      expected = WriteHistory(**log, 1, 200);
      REQUIRE((*log)->Compact().has_value());  // a snapshot exists, so the old one is replaced too
      expected = WriteHistory(**log, 201, 200, expected);
      REQUIRE((*log)->Close().ok());
    }
    FaultFs fs;
    {
      auto log = OpenLog(dir.path(), &fs);
      REQUIRE(log.has_value());
      fs.CrashAfterOps(n);
      auto stats = (*log)->Compact();
      completed = stats.has_value();
    }
    fs.SimulateCrash();
    fs.Revive();

    Recovered r = Recover(dir.path());
    REQUIRE(r.status.ok());
    CHECK(r.state == expected);
    CHECK(r.report.last_revision == 400);
    CHECK(CountFiles(dir.path(), ".tmp") == 0);
    CHECK(CountFiles(dir.path(), ".snapshot") == 1);

    // And the log goes on: it takes writes and compacts again.
    auto log = OpenLog(dir.path());
    REQUIRE(log.has_value());
    expected = WriteHistory(**log, 401, 20, expected);
    REQUIRE((*log)->Compact().has_value());
    REQUIRE((*log)->Close().ok());
    Recovered again = Recover(dir.path());
    REQUIRE(again.status.ok());
    CHECK(again.state == expected);
  }
  CHECK(completed);
}

TEST_CASE("a full disk or a failing snapshot fsync during compaction leaves the old log intact and writable") {
  TempDir dir;
  FaultFs fs;
  auto log = OpenLog(dir.path(), &fs);
  REQUIRE(log.has_value());
  State expected = WriteHistory(**log, 1, 400);
  const uint64_t bytes_before = (*log)->stats().bytes;

  SUBCASE("disk full while the snapshot is written") { fs.FailWritesAfter(100); }
  SUBCASE("the snapshot's fsync fails") { fs.FailSyncsOf(".snapshot"); }

  auto stats = (*log)->Compact();
  REQUIRE_FALSE(stats.has_value());
  CHECK(CountFiles(dir.path(), ".snapshot") == 0);
  CHECK(CountFiles(dir.path(), ".tmp") == 0);
  // Only the cut happened: a new, empty active segment (its header).
  CHECK((*log)->stats().bytes == bytes_before + core::kSegmentHeaderSize);

  fs.FailWritesAfter(UINT64_MAX);
  fs.FailSyncsOf("");
  expected = WriteHistory(**log, 401, 10, expected);  // appends go on
  REQUIRE((*log)->Close().ok());
  Recovered r = Recover(dir.path());
  REQUIRE(r.status.ok());
  CHECK(r.state == expected);
}

TEST_CASE("writers keep going during compaction and every acknowledged write survives") {
  TempDir dir;
  std::map<std::string, std::string> acked;
  std::mutex acked_mu;
  {
    core::Store store;
    auto log = OpenLog(dir.path());
    REQUIRE(log.has_value());
    store.Start(std::move(*log));
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; !stop; ++i) {
          const std::string key = fmt::format("w{}-{}", w, i % 50);
          const std::string value = fmt::format("{}-{}", i, std::string(30, 'x'));
          if (store.Put(key, value).has_value()) {
            std::lock_guard lock(acked_mu);
            acked[key] = value;
          }
        }
      });
    }
    int compactions = 0;
    while (compactions < 20) {
      auto stats = store.Compact();
      REQUIRE(stats.has_value());
      if (stats->compacted) ++compactions;
      auto get = store.Get("w0-0");  // readers go on too
      (void)get;
    }
    stop = true;
    for (auto& t : writers) t.join();
    REQUIRE(store.Close().ok());
  }
  Recovered r = Recover(dir.path());
  REQUIRE(r.status.ok());
  REQUIRE(r.state.size() == acked.size());
  for (const auto& [key, value] : acked) CHECK(r.state[key].value == value);
}

TEST_CASE("any flipped byte of a snapshot is corruption naming the file and offset") {
  TempDir dir;
  std::vector<core::SnapshotEntry> entries{{"a", "1", 3}, {"b", std::string("\0\n", 2), 7}};
  auto written = core::WriteSnapshot(core::PosixFileSystem(), dir.path(), 9, entries);
  REQUIRE(written.has_value());
  auto bytes = core::PosixFileSystem().ReadFile(written->path);
  REQUIRE(bytes.has_value());

  std::vector<std::pair<std::string, uint64_t>> seen;
  auto ok = core::ScanSnapshot(*bytes, written->path, 9, [&](const core::LogRecord& r) {
    seen.emplace_back(std::string(r.value), r.revision);
    return core::Status::Ok();
  });
  REQUIRE(ok.has_value());
  CHECK(ok->covered_revision == 9);
  CHECK(seen == std::vector<std::pair<std::string, uint64_t>>{{"1", 3}, {std::string("\0\n", 2), 7}});

  for (size_t at = 0; at < bytes->size(); ++at) {
    std::string damaged = *bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x01);
    auto scan = core::ScanSnapshot(damaged, written->path, 9, [](const core::LogRecord&) { return core::Status::Ok(); });
    REQUIRE_FALSE(scan.has_value());
    CHECK(scan.error().IsCorruption());
    CHECK(scan.error().message().find(written->path) != std::string::npos);
  }
  auto cut = core::ScanSnapshot(std::string_view(*bytes).substr(0, bytes->size() - 1), written->path, 9,
                                [](const core::LogRecord&) { return core::Status::Ok(); });
  CHECK_FALSE(cut.has_value());
}

namespace {

// Every record's key and revision, in the order ScanSnapshot gives them.
std::vector<std::pair<std::string, uint64_t>> ScanOrder(std::string_view bytes, uint64_t covered,
                                                       core::SnapshotScan* scan = nullptr) {
  std::vector<std::pair<std::string, uint64_t>> seen;
  auto ok = core::ScanSnapshot(bytes, "test.snapshot", covered, [&](const core::LogRecord& r) {
    seen.emplace_back(std::string(r.key), r.revision);
    return core::Status::Ok();
  });
  REQUIRE(ok.has_value());
  if (scan != nullptr) *scan = *ok;
  return seen;
}

// Rewrites a snapshot's version field and both checksums, as an older
// kvctl would have written it.
std::string WithVersion(std::string bytes, uint32_t version) {
  for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<char>((version >> (8 * i)) & 0xff);
  auto put64 = [&](size_t at, uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
  };
  put64(24, XXH3_64bits(bytes.data(), 24));
  const size_t sum_at = bytes.size() - 8;
  put64(sum_at, XXH3_64bits(bytes.data(), sum_at));
  return bytes;
}

}  // namespace

TEST_CASE("a snapshot holds its keys in key order, and a revision-ordered one (version 1) still reads") {
  TempDir dir;
  std::vector<core::SnapshotEntry> entries{{"c", "1", 1}, {"a", "2", 2}, {"b", "3", 3}};
  auto written = core::WriteSnapshot(core::PosixFileSystem(), dir.path(), 5, entries);
  REQUIRE(written.has_value());
  auto bytes = core::PosixFileSystem().ReadFile(written->path);
  REQUIRE(bytes.has_value());
  core::SnapshotScan scan;
  using Seen = std::vector<std::pair<std::string, uint64_t>>;
  CHECK(ScanOrder(*bytes, 5, &scan) == Seen{{"a", 2}, {"b", 3}, {"c", 1}});
  CHECK(scan.version == 4);

  // A version-1 file must be in revision order; key order there is damage.
  auto refused = core::ScanSnapshot(WithVersion(*bytes, 1), "v1.snapshot", 5,
                                    [](const core::LogRecord&) { return core::Status::Ok(); });
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message().find("revision out of order") != std::string::npos);

  auto v2 = core::WriteSnapshot(core::PosixFileSystem(), dir.path(), 6, {{"a", "2", 2}, {"b", "1", 1}});
  REQUIRE(v2.has_value());
  auto v2_bytes = core::PosixFileSystem().ReadFile(v2->path);
  REQUIRE(v2_bytes.has_value());
  // Keys a < b with revisions 2, 1: fine in version 2, out of order as version 1.
  CHECK_FALSE(core::ScanSnapshot(WithVersion(*v2_bytes, 1), "v1.snapshot", 6,
                                 [](const core::LogRecord&) { return core::Status::Ok(); })
                  .has_value());
  // Keys and revisions both increasing: a valid version-1 file.
  auto both = core::WriteSnapshot(core::PosixFileSystem(), dir.path(), 7, {{"y", "1", 6}, {"x", "2", 4}});
  REQUIRE(both.has_value());
  auto both_bytes = core::PosixFileSystem().ReadFile(both->path);
  REQUIRE(both_bytes.has_value());
  CHECK(ScanOrder(WithVersion(*both_bytes, 1), 7, &scan) == Seen{{"x", 4}, {"y", 6}});
  CHECK(scan.version == 1);
}

TEST_CASE("a snapshot refuses two entries for one key") {
  TempDir dir;
  auto written = core::WriteSnapshot(core::PosixFileSystem(), dir.path(), 5, {{"a", "1", 1}, {"a", "2", 2}});
  REQUIRE_FALSE(written.has_value());
  CHECK(written.error().IsInvalidArgument());
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(dir.path()) / core::SnapshotFileName(5)));
}

TEST_CASE("the automatic policy compacts a big enough log that is mostly dead") {
  core::AutoCompactionPolicy p;
  p.min_bytes = 1000;
  p.dead_percent = 50;
  CHECK_FALSE(core::ShouldCompact(p, 999, 0));     // too small
  CHECK(core::ShouldCompact(p, 1000, 0));          // all dead
  CHECK(core::ShouldCompact(p, 2000, 1000));       // half dead
  CHECK_FALSE(core::ShouldCompact(p, 2000, 1100)); // less than half
  CHECK_FALSE(core::ShouldCompact(p, 2000, 3000)); // live estimate above the log
  p.enabled = false;
  CHECK_FALSE(core::ShouldCompact(p, 1 << 30, 0));
}

TEST_CASE("the automatic compactor shrinks a log of overwrites on its own") {
  TempDir dir;
  core::Store store;
  auto log = OpenLog(dir.path());
  REQUIRE(log.has_value());
  store.Start(std::move(*log));
  for (int i = 0; i < 2000; ++i) REQUIRE(store.Put("k" + std::to_string(i % 10), std::string(100, 'a' + i % 26)).has_value());
  const uint64_t before = store.LogDiskBytes();
  REQUIRE(before > 200000);

  core::AutoCompactionPolicy p;
  p.min_bytes = 64 << 10;
  p.check_interval = std::chrono::milliseconds(10);
  core::AutoCompactor compactor(p, store, core::NullLogger());
  for (int i = 0; i < 500 && store.LogDiskBytes() >= before / 10; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(store.LogDiskBytes() < before / 10);
  compactor.Stop();
  REQUIRE(store.Close().ok());
}
