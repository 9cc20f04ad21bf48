// End-to-end tests of the chain rule (SPEC §8, log_format.h): a data dir
// whose files do not chain revision to revision (a segment moved away, the
// snapshot gone or renamed, the newest segment emptied) is corruption for
// every reader: `kvctl serve`, `replay --check`, `replay --into` and offline
// `compact` all exit 5 naming what is missing, and change nothing.
#include <map>
#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

constexpr int kKeys = 120;

std::string ChainKey(int i) { return fmt::format("chain/{:03}", i); }
std::string ChainValue(int i) { return RandomBytes(200, uint64_t(i)); }

// Every file of a dir with its bytes, to show nothing was changed.
std::map<std::string, std::string> Contents(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const std::string& name : ListDir(dir)) {
    if (name != "LOCK") out[name] = ReadFile(dir / name);
  }
  return out;
}

uint64_t FirstRevision(const fs::path& segment) { return std::stoull(segment.filename().string().substr(0, 20)); }

std::string SnapshotName(uint64_t covered) { return fmt::format("{:020}.snapshot", covered); }

// A stopped data dir of 4 KiB segments holding kKeys writes (revisions
// 1..kKeys); with `compact`, compacted online half way and written on.
struct ChainedLog {
  TempDir tmp;
  fs::path data_dir;
  uint64_t covered = 0;  // the snapshot's revision, 0 without one
  fs::path before_compaction;  // a copy of the dir just before the compaction
};

void Build(ChainedLog& log, bool compact) {
  log.data_dir = log.tmp / "data";
  fs::create_directories(log.data_dir);
  const Env env{{"KVCTL_STORAGE_SEGMENT_BYTES", "4096"}, {"KVCTL_STORAGE_COMPACT_DEAD_PERCENT", "0"},
                 {"KVCTL_STORAGE_HISTORY_RETENTION", "0"}};
  int port = FreePort();
  auto server = std::make_unique<ServerProcess>(log.tmp.path(), ServerOptions{log.data_dir.string(), port, {}, env});
  server->WaitReady();
  auto http = std::make_unique<HttpClient>(port);
  for (int i = 1; i <= kKeys; ++i) {
    if (compact && i == kKeys / 2 + 1) {
      http->Close();
      REQUIRE(server->Terminate() == 0);
      log.before_compaction = log.tmp / "before-compaction";
      fs::copy(log.data_dir, log.before_compaction, fs::copy_options::recursive);
      port = FreePort();
      server = std::make_unique<ServerProcess>(log.tmp.path(), ServerOptions{log.data_dir.string(), port, {}, env});
      server->WaitReady();
      http = std::make_unique<HttpClient>(port);
      CliResult compacted = RunCli({"compact", "--addr", Addr(port), "-o", "json"});
      REQUIRE_MESSAGE(compacted.exit_code == 0, compacted.err);
      log.covered = nlohmann::json::parse(compacted.out)["covered_revision"].get<uint64_t>();
      REQUIRE(log.covered == uint64_t(kKeys / 2));
    }
    REQUIRE(http->Put(ChainKey(i), ChainValue(i)).status == 201);
  }
  http->Close();
  REQUIRE(server->Terminate() == 0);
  REQUIRE(Segments(log.data_dir).size() >= 4);
}

fs::path Copy(const ChainedLog& log, const std::string& name) {
  const fs::path dest = log.tmp / name;
  fs::copy(log.data_dir, dest, fs::copy_options::recursive);
  return dest;
}

// Runs `kvctl serve` on `dir`: it must exit 5 with every one of `parts` in
// its stderr, and leave every file as it was.
void ExpectServeRefuses(const ChainedLog& log, const fs::path& dir, const std::vector<std::string>& parts) {
  const auto before = Contents(dir);
  const int port = FreePort();
  ServerProcess server(log.tmp.path(), ServerOptions{dir.string(), port, {}, {}});
  auto code = server.WaitExit(std::chrono::seconds(20));
  REQUIRE_MESSAGE(code.has_value(), "kvctl serve started on a log that is missing a piece");
  const std::string err = server.Stderr();
  CHECK_MESSAGE(*code == 5, "exit " << *code << "; stderr:\n" << err);
  for (const std::string& part : parts) {
    CHECK_MESSAGE(err.find(part) != std::string::npos, "stderr does not say \"" << part << "\":\n" << err);
  }
  CHECK_MESSAGE(Contents(dir) == before, "a file of the refused data dir was changed or removed");
}

// `kvctl ARGS...` must exit 5 naming `part`.
void ExpectCorrupt(const std::vector<std::string>& args, const std::string& part) {
  CliResult r = RunCli(args);
  CHECK_MESSAGE(r.exit_code == 5, "kvctl " << args[0] << " exit " << r.exit_code << "; stdout:\n"
                                           << r.out << "stderr:\n" << r.err);
  CHECK_MESSAGE(r.err.find(part) != std::string::npos, "stderr does not say \"" << part << "\":\n" << r.err);
  CHECK(IsOneErrorLine(r.err));
}

}  // namespace

TEST_CASE("a data dir missing a middle segment is refused by every reader, naming the missing revisions") {
  ChainedLog log;
  Build(log, false);
  const fs::path dir = Copy(log, "gap");
  const auto segments = Segments(dir);
  const fs::path moved = segments[2];
  const std::string range = fmt::format("revisions {} to {} are missing", FirstRevision(moved),
                                        FirstRevision(segments[3]) - 1);
  fs::rename(moved, log.tmp / "moved-away.log");

  ExpectCorrupt({"replay", "--data-dir", dir.string(), "--check"}, range);
  ExpectCorrupt({"replay", "--data-dir", dir.string()}, range);
  ExpectCorrupt({"replay", "--data-dir", dir.string(), "--into", (log.tmp / "copy").string()}, range);
  ExpectServeRefuses(log, dir, {range, segments[1].filename().string(), segments[3].filename().string()});
  const auto before = Contents(dir);
  ExpectCorrupt({"compact", "--data-dir", dir.string()}, range);
  CHECK(Contents(dir) == before);

  // The piece put back, the log is whole again.
  fs::rename(log.tmp / "moved-away.log", moved);
  CliResult check = RunCli({"replay", "--data-dir", dir.string(), "--check"});
  CHECK_MESSAGE(check.exit_code == 0, check.err);
  const int port = FreePort();
  ServerProcess server(log.tmp.path(), ServerOptions{dir.string(), port, {}, {}});
  server.WaitReady();
  HttpClient http(port);
  for (int i = 1; i <= kKeys; ++i) CHECK(http.Get(ChainKey(i)).body == ChainValue(i));
  http.Close();
  CHECK(server.Terminate() == 0);
}

TEST_CASE("after a compaction, a missing snapshot is refused: the segments rely on it") {
  ChainedLog log;
  Build(log, true);
  const fs::path dir = Copy(log, "no-snapshot");
  REQUIRE(fs::exists(dir / SnapshotName(log.covered)));
  fs::remove(dir / SnapshotName(log.covered));
  const std::string range = fmt::format("revisions 1 to {} are missing", log.covered);
  ExpectCorrupt({"replay", "--data-dir", dir.string(), "--check"}, range);
  ExpectServeRefuses(log, dir, {range});
}

TEST_CASE("a snapshot renamed to another revision is refused before any segment is removed as covered") {
  ChainedLog log;
  Build(log, true);
  // A crash after the snapshot went into place and before the segments it
  // covers were removed: those segments are back beside it.
  const fs::path crashed = Copy(log, "crashed");
  for (const fs::path& segment : Segments(log.before_compaction)) {
    if (FirstRevision(segment) <= log.covered) fs::copy_file(segment, crashed / segment.filename());
  }
  const size_t segments = Segments(crashed).size();

  SUBCASE("renamed higher") {
    const std::string renamed = SnapshotName(log.covered + 5);
    fs::rename(crashed / SnapshotName(log.covered), crashed / renamed);
    ExpectCorrupt({"replay", "--data-dir", crashed.string(), "--check"}, renamed);
    ExpectServeRefuses(log, crashed, {renamed, fmt::format("covers revision {}", log.covered)});
    CHECK(Segments(crashed).size() == segments);
  }
  SUBCASE("renamed lower") {
    const std::string renamed = SnapshotName(log.covered - 5);
    fs::rename(crashed / SnapshotName(log.covered), crashed / renamed);
    ExpectServeRefuses(log, crashed, {renamed});
    CHECK(Segments(crashed).size() == segments);
  }
  SUBCASE("as it was, the covered segments go and every key is there") {
    const int port = FreePort();
    ServerProcess server(log.tmp.path(), ServerOptions{crashed.string(), port, {}, {}});
    server.WaitReady();
    HttpClient http(port);
    for (int i = 1; i <= kKeys; ++i) CHECK(http.Get(ChainKey(i)).body == ChainValue(i));
    http.Close();
    CHECK(server.Terminate() == 0);
    for (const fs::path& segment : Segments(crashed)) CHECK(FirstRevision(segment) > log.covered);
  }
}

TEST_CASE("the newest segment truncated to zero bytes is damage: serve exits 5 and keeps it") {
  ChainedLog log;
  Build(log, false);
  const fs::path dir = Copy(log, "emptied");
  const fs::path newest = Segments(dir).back();
  fs::resize_file(newest, 0);
  ExpectCorrupt({"replay", "--data-dir", dir.string(), "--check"}, newest.filename().string());
  ExpectServeRefuses(log, dir, {newest.filename().string(), "empty"});
  CHECK(fs::exists(newest));
  CHECK(fs::file_size(newest) == 0);
}

}  // namespace kvctl::e2e
