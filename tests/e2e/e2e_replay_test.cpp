// End-to-end tests of `kvctl replay` (SPEC §3): events in text and JSON,
// --from/--to, --state, --check, corruption, --into, and reading beside a
// running server.
#include <atomic>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

std::vector<nlohmann::json> JsonLines(const std::string& out) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

const std::string kBinary("k\0\xff\n\"", 5);

// Revisions 1..4: put a=1, put <binary>=<binary>, put a=3, delete a.
void WriteSmallHistory(HttpClient& http) {
  REQUIRE(http.Put("a", "1").status == 201);
  REQUIRE(http.Put(kBinary, kBinary).status == 201);
  REQUIRE(http.Put("a", "three").status == 200);
  REQUIRE(http.Delete("a").status == 204);
}

}  // namespace

TEST_CASE("replay prints every event in JSON and text, binary-safe, while the server runs") {
  KvServer server;
  HttpClient http(server.port());
  WriteSmallHistory(http);
  const std::string dir = server.data_dir().string();

  CliResult json = RunCli({"replay", "--data-dir", dir, "-o", "json"});
  REQUIRE_MESSAGE(json.exit_code == 0, json.err);
  auto events = JsonLines(json.out);
  REQUIRE(events.size() == 4);
  CHECK(events[0]["revision"] == 1);
  CHECK(events[0]["op"] == "put");
  CHECK(events[0]["key"] == "a");
  CHECK(Base64Decode(events[0]["value"].get<std::string>()) == "1");
  CHECK(Base64Decode(events[1]["key_base64"].get<std::string>()) == kBinary);
  CHECK(Base64Decode(events[1]["value"].get<std::string>()) == kBinary);
  CHECK(events[3]["op"] == "delete");
  CHECK_FALSE(events[3].contains("value"));
  CHECK(events[3]["snapshot"] == false);

  CliResult text = RunCli({"replay", "--data-dir", dir});
  REQUIRE(text.exit_code == 0);
  CHECK(Lines(text.out) == std::vector<std::string>{
                               "1 PUT \"a\" \"1\"",
                               "2 PUT \"k\\x00\\xff\\n\\\"\" \"k\\x00\\xff\\n\\\"\"",
                               "3 PUT \"a\" \"three\"",
                               "4 DELETE \"a\"",
                           });

  CliResult window = RunCli({"replay", "--data-dir", dir, "--from", "2", "--to", "3"});
  CHECK(Lines(window.out).size() == 2);
  CHECK(window.out.find("2 PUT") == 0);

  CliResult bad = RunCli({"replay", "--data-dir", dir, "--from", "3", "--to", "2"});
  CHECK(bad.exit_code == 2);
  CHECK(IsOneErrorLine(bad.err));
  http.Close();
}

TEST_CASE("replay --state shows the keys as of a revision, also after compaction") {
  KvServer server({"--storage-history-retention", "0"});  // the compaction takes all it can
  HttpClient http(server.port());
  WriteSmallHistory(http);
  const std::string dir = server.data_dir().string();

  CliResult at3 = RunCli({"replay", "--data-dir", dir, "--state", "--to", "3", "-o", "json"});
  REQUIRE_MESSAGE(at3.exit_code == 0, at3.err);
  auto items = JsonLines(at3.out);
  REQUIRE(items.size() == 2);
  CHECK(items[0]["key"] == "a");
  CHECK(Base64Decode(items[0]["value"].get<std::string>()) == "three");
  CHECK(items[0]["revision"] == 3);

  CliResult latest = RunCli({"replay", "--data-dir", dir, "--state"});
  CHECK(Lines(latest.out).size() == 1);  // a was deleted

  REQUIRE(http.Request("POST", "/v1/admin/compact").status == 200);
  REQUIRE(http.Put("b", "5").status == 201);
  CliResult after = RunCli({"replay", "--data-dir", dir, "-o", "json"});
  auto events = JsonLines(after.out);
  REQUIRE(events.size() == 2);
  CHECK(events[0]["revision"] == 2);
  CHECK(events[0]["snapshot"] == true);
  CHECK(events[1]["revision"] == 5);
  CliResult gone = RunCli({"replay", "--data-dir", dir, "--state", "--to", "3"});
  CHECK(gone.exit_code == 2);
  CHECK(gone.err.find("compacted") != std::string::npos);
  http.Close();
}

TEST_CASE("replay --check reports what it verified, and mid-log damage exits 5 naming the file and offset") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0"});
  HttpClient http(server.port());
  for (int i = 0; i < 200; ++i) REQUIRE(http.Put("k" + std::to_string(i), std::string(50, 'v')).status == 201);
  http.Close();
  REQUIRE(server.Stop() == 0);
  const std::string dir = server.data_dir().string();

  CliResult ok = RunCli({"replay", "--data-dir", dir, "--check", "-o", "json"});
  REQUIRE_MESSAGE(ok.exit_code == 0, ok.err);
  auto report = nlohmann::json::parse(ok.out);
  CHECK(report["records"] == 200);
  CHECK(report["last_revision"] == 200);
  CHECK(report["incomplete_tail"].is_null());
  CliResult ok_text = RunCli({"replay", "--data-dir", dir, "--check"});
  CHECK(ok_text.out.find("ok: ") == 0);

  const auto segments = Segments(server.data_dir());
  REQUIRE(segments.size() > 2);
  std::string bytes = ReadFile(segments[1]);
  bytes[100] = static_cast<char>(bytes[100] ^ 0x10);
  WriteFile(segments[1], bytes);
  CliResult bad = RunCli({"replay", "--data-dir", dir, "--check"});
  CHECK(bad.exit_code == 5);
  CHECK(IsOneErrorLine(bad.err));
  CHECK(bad.err.find(segments[1].filename().string()) != std::string::npos);
  CHECK(bad.err.find("offset") != std::string::npos);

  CliResult none = RunCli({"replay", "--data-dir", (server.tmp() / "nowhere").string()});
  CHECK(none.exit_code == 2);
  CHECK(IsOneErrorLine(none.err));
}

TEST_CASE("replay --into makes a data dir a server starts on with the same keys and revisions") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0"});
  HttpClient http(server.port());
  for (int i = 0; i < 150; ++i) REQUIRE(http.Put("k" + std::to_string(i % 30), RandomBytes(40, i)).status / 100 == 2);
  REQUIRE(http.Request("POST", "/v1/admin/compact").status == 200);
  for (int i = 0; i < 20; ++i) REQUIRE(http.Put("n" + std::to_string(i), "v").status == 201);
  REQUIRE(http.Delete("k0").status == 204);
  const auto before = Snapshot(http);

  TempDir target;
  const std::string copy = (target / "copy").string();
  CliResult r = RunCli({"replay", "--data-dir", server.data_dir().string(), "--into", copy});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("up to revision 171") != std::string::npos);
  CliResult twice = RunCli({"replay", "--data-dir", server.data_dir().string(), "--into", copy});
  CHECK(twice.exit_code == 2);

  ServerOptions options;
  options.data_dir = copy;
  options.port = FreePort();
  ServerProcess second(target.path(), options);
  second.WaitReady();
  HttpClient other(second.port());
  auto after = Snapshot(other);
  REQUIRE(after.size() == before.size());
  for (const auto& [key, s] : before) {
    CHECK(after[key].value == s.value);
    CHECK(after[key].revision == s.revision);
  }
  CHECK(other.Put("next", "x").EtagRevision() == 172);
  other.Close();
  http.Close();
}

TEST_CASE("replay beside a server under load and compaction always reads a consistent prefix") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0"});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    HttpClient http(server.port());
    for (int i = 0; !stop; ++i) {
      (void)http.TryRequest("PUT", KeyPath("k" + std::to_string(i % 40)), std::string(80, 'x'));
      if (i % 300 == 299) (void)http.TryRequest("POST", "/v1/admin/compact");
    }
  });
  for (int round = 0; round < 8; ++round) {
    CliResult r = RunCli({"replay", "--data-dir", server.data_dir().string(), "-o", "json"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    uint64_t last = 0;
    for (const auto& e : JsonLines(r.out)) {
      CHECK(e["revision"].get<uint64_t>() > last);
      last = e["revision"].get<uint64_t>();
    }
  }
  stop = true;
  writer.join();
}

}  // namespace kvctl::e2e
