// End-to-end tests of compaction (SPEC §3 `kvctl compact`, POST
// /v1/admin/compact): online under load, offline, the lock, the automatic
// policy — on a real server and real files.
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

// A running compaction may remove a file between the listing and its size:
// it then counts as gone.
uint64_t DirBytes(const fs::path& dir) {
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::error_code gone;
    const uintmax_t size = fs::file_size(e.path(), gone);
    if (!gone) total += size;
  }
  return total;
}

size_t CountSuffix(const fs::path& dir, std::string_view suffix) {
  size_t n = 0;
  for (const auto& name : ListDir(dir)) n += name.ends_with(suffix) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("online compaction under concurrent writers and readers keeps every acknowledged write across a restart") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0"});
  std::mutex mu;
  std::map<std::string, std::string> acked;
  std::atomic<bool> stop{false};
  std::atomic<int> read_errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      HttpClient http(server.port());
      for (int i = 0; !stop; ++i) {
        const std::string key = "w" + std::to_string(w) + "/" + std::to_string(i % 25);
        const std::string value = RandomBytes(60 + i % 40, w * 100000 + i);
        auto r = http.TryRequest("PUT", KeyPath(key), value);
        if (r && (r->status == 200 || r->status == 201)) {
          std::lock_guard lock(mu);
          acked[key] = value;
        }
      }
    });
  }
  threads.emplace_back([&] {
    HttpClient http(server.port());
    for (int i = 0; !stop; ++i) {
      auto r = http.TryRequest("GET", KeyPath("w0/" + std::to_string(i % 25)));
      if (!r || (r->status != 200 && r->status != 404)) ++read_errors;
    }
  });

  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    CliResult r = RunCli({"compact", "--addr", server.addr()});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK(r.out.find("compacted") == 0);
  }
  stop = true;
  for (auto& t : threads) t.join();
  CHECK(read_errors == 0);
  REQUIRE(acked.size() == 100);

  server.Restart();
  HttpClient http(server.port());
  auto stored = Snapshot(http);
  REQUIRE(stored.size() == acked.size());
  for (const auto& [key, value] : acked) CHECK(stored[key].value == value);
  http.Close();
}

TEST_CASE("kvctl compact prints what it did, and -o json holds the figures") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0"});
  HttpClient http(server.port());
  for (int i = 0; i < 500; ++i) {
    REQUIRE(http.Put("k" + std::to_string(i % 10), std::string(100, char('a' + i % 26))).status / 100 == 2);
  }
  REQUIRE(http.Delete("k9").status == 204);

  CliResult r = RunCli({"compact", "--addr", server.addr(), "-o", "json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["compacted"] == true);
  CHECK(j["covered_revision"] == 501);
  CHECK(j["records_read"] == 501);
  CHECK(j["records_kept"] == 9);
  CHECK(j["records_dropped"] == 492);
  CHECK(j["bytes_after"].get<uint64_t>() * 10 < j["bytes_before"].get<uint64_t>());
  CHECK(j["seconds"].get<double>() >= 0);

  auto again = http.Request("POST", "/v1/admin/compact");
  CHECK(again.status == 200);
  CHECK(again.Json()["compacted"] == false);  // nothing new since
  auto wrong = http.Request("GET", "/v1/admin/compact");
  CHECK(wrong.status == 405);
  CHECK(wrong.Header("Allow") == "POST");

  // A deleted key stays deleted and revisions go on after a restart.
  http.Close();
  server.Restart();
  HttpClient after(server.port());
  CHECK(after.Get("k9").status == 404);
  CHECK(after.Put("new", "v").EtagRevision() == 502);
  after.Close();
}

TEST_CASE("offline compaction is refused while a server holds the dir and works once it stopped") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0"});
  HttpClient http(server.port());
  for (int i = 0; i < 300; ++i) REQUIRE(http.Put("k" + std::to_string(i % 7), std::to_string(i)).status / 100 == 2);
  const auto before = Snapshot(http);
  http.Close();

  CliResult busy = RunCli({"compact", "--data-dir", server.data_dir().string()});
  CHECK(busy.exit_code == 2);
  CHECK(IsOneErrorLine(busy.err));
  CHECK(busy.err.find("--addr") != std::string::npos);
  CHECK(CountSuffix(server.data_dir(), ".snapshot") == 0);

  REQUIRE(server.Stop() == 0);
  // Offline, compaction keeps storage.history_retention (10000) revisions
  // for watchers, as the server does: 300 revisions are all history.
  CliResult kept = RunCli({"compact", "--data-dir", server.data_dir().string()});
  CHECK_MESSAGE(kept.exit_code == 0, kept.err);
  CHECK(CountSuffix(server.data_dir(), ".snapshot") == 0);
  CliResult offline = RunCli({"compact", "--data-dir", server.data_dir().string()},
                             {.env = {{"KVCTL_STORAGE_HISTORY_RETENTION", "0"}}});
  CHECK_MESSAGE(offline.exit_code == 0, offline.err);
  CHECK(offline.out.find("compacted " + server.data_dir().string() + " up to revision 300") == 0);
  CHECK(CountSuffix(server.data_dir(), ".snapshot") == 1);

  CliResult both = RunCli({"compact", "--data-dir", server.data_dir().string(), "--addr", "127.0.0.1:1"});
  CHECK(both.exit_code == 2);
  CliResult missing = RunCli({"compact", "--data-dir", (server.tmp() / "nope").string()});
  CHECK(missing.exit_code == 2);

  server.Start();
  HttpClient again(server.port());
  auto after = Snapshot(again);
  CHECK(after.size() == before.size());
  for (const auto& [key, s] : before) {
    CHECK(after[key].value == s.value);
    CHECK(after[key].revision == s.revision);
  }
  again.Close();
}

TEST_CASE("automatic compaction keeps a log of overwrites small") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0", "--storage-compact-min-bytes", "64KiB"});
  HttpClient http(server.port());
  for (int i = 0; i < 3000; ++i) {
    REQUIRE(http.Put("k" + std::to_string(i % 10), std::string(100, char('a' + i % 26))).status / 100 == 2);
  }
  // 3000 records of ~135 bytes: ~400 kB written, ~1.4 kB live.
  // The server checks every 2 s; once writes stop, one check must bring the
  // log under the 64 KiB threshold. The counters move just after the files
  // are removed, so both are waited for.
  auto compacted = [&] {
    return DirBytes(server.data_dir()) < 80000 &&
           Metric(http, "kvctl_compaction_reclaimed_bytes_total") > 250000;
  };
  for (int i = 0; i < 150 && !compacted(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(DirBytes(server.data_dir()) < 80000);
  CHECK(Metric(http, "kvctl_compactions_total") >= 1);
  CHECK(Metric(http, "kvctl_compaction_reclaimed_bytes_total") > 250000);
  http.Close();
}

}  // namespace kvctl::e2e
