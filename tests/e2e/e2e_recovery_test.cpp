// End-to-end tests of durability and recovery (SPEC §1, log on disk): restart,
// kill -9 under concurrent load, torn and garbage tails, mid-log corruption and
// the data dir lock — all on real files written by a real `kvctl serve`.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

// ----------------------------------------------------------- a sequential log
//
// kWrites new keys written one at a time (fsync=always, the default), then the
// server stopped with SIGTERM. Write j is key w/NN with revision j+1. Each
// one's end offset in the segment comes from the record sizes the format
// documents (log_format.h: a 16-byte segment header, records of 32 + key +
// value bytes + the PUT's metadata: three varints, create revision j+1 (one
// byte below 128), version 1 and lease 0), not from the file's size while the server runs: the server
// zero-fills the segment ahead of its appends. The size after the shutdown,
// which cuts those zeros, must match.

constexpr int kWrites = 40;

std::string SeqKey(int j) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "w/%02d", j);
  return buf;
}

std::string SeqValue(int j) {
  // ~100 bytes, distinct per write, with bytes that are not text.
  return "value-" + std::to_string(j) + "-" + S("\0\xff\n", 3) + std::string(90, char('a' + j % 26));
}

struct SequentialLog {
  TempDir tmp;
  fs::path data_dir;
  fs::path segment;  // the newest segment, holding every write
  // ends[j]: where write j's record ends in the segment.
  std::vector<uint64_t> ends;
};

void BuildSequentialLog(SequentialLog& log) {
  log.data_dir = log.tmp / "base";
  fs::create_directories(log.data_dir);
  const int port = FreePort();
  ServerProcess server(log.tmp.path(), ServerOptions{log.data_dir.string(), port, {}, {}});
  server.WaitReady();
  HttpClient http(port);
  uint64_t end = 16;  // the segment header
  for (int j = 0; j < kWrites; ++j) {
    HttpResponse r = http.Put(SeqKey(j), SeqValue(j));
    REQUIRE(r.status == 201);
    REQUIRE(r.Json()["revision"].get<uint64_t>() == uint64_t(j + 1));
    auto segs = Segments(log.data_dir);
    REQUIRE_MESSAGE(!segs.empty(), "no <20 digits>.log segment in the data dir after a write");
    log.segment = segs.back();
    static_assert(kWrites < 128, "each create revision takes one varint byte");
    end += 32 + SeqKey(j).size() + SeqValue(j).size() + 3;
    log.ends.push_back(end);
  }
  http.Close();
  const int code = server.Terminate();
  REQUIRE_MESSAGE(code == 0, "SIGTERM exit " << code << "; stderr:\n" << server.Stderr());
  auto segs = Segments(log.data_dir);
  REQUIRE_MESSAGE(segs.back() == log.segment,
                  "a newer segment appeared at shutdown; the last writes are not in the newest one");
  REQUIRE_MESSAGE(fs::file_size(log.segment) == log.ends.back(),
                  "after shutdown the segment should end with the last record, no zeros after it");
}

fs::path CopyLog(const SequentialLog& log, const std::string& name) {
  fs::path dest = log.tmp / name;
  fs::copy(log.data_dir, dest, fs::copy_options::recursive);
  return dest;
}

// Reads w/00..w/39 from a server and checks they form a prefix of the writes,
// each with its value and revision; returns how many survived.
int CheckPrefix(HttpClient& http) {
  int survived = 0;
  bool gap = false;
  for (int j = 0; j < kWrites; ++j) {
    CAPTURE(j);
    HttpResponse r = http.Get(SeqKey(j));
    if (r.status == 404) {
      gap = true;
      continue;
    }
    REQUIRE(r.status == 200);
    CHECK_MESSAGE(!gap, "write " << j << " survived but an earlier one did not");
    CHECK(r.body == SeqValue(j));
    CHECK(r.EtagRevision() == uint64_t(j + 1));
    ++survived;
  }
  return survived;
}

// New files whose name starts with the segment's name (or its 20-digit stem)
// and says "broken" or "torn".
std::vector<std::string> BrokenCopies(const std::vector<std::string>& before, const fs::path& dir,
                                      const fs::path& segment) {
  const std::string stem = segment.stem().string();
  std::vector<std::string> out;
  for (const auto& name : ListDir(dir)) {
    if (std::find(before.begin(), before.end(), name) != before.end()) continue;
    if (name.rfind(stem, 0) == 0 &&
        (name.find("broken") != std::string::npos || name.find("torn") != std::string::npos)) {
      out.push_back(name);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("restart after SIGTERM keeps every key, value and revision") {
  KvServer server;
  HttpClient http(server.port());

  // While running, the data dir holds a LOCK file and <20 digits>.log segments.
  REQUIRE(http.Put("first", "1").status == 201);
  CHECK(fs::exists(server.data_dir() / "LOCK"));
  CHECK(!Segments(server.data_dir()).empty());

  uint64_t changes = 1;
  std::map<std::string, std::string> expected{{"first", "1"}};
  for (int i = 0; i < 60; ++i) {
    const std::string key = "r/" + std::to_string(i);
    const std::string value = RandomBytes(static_cast<size_t>(i * 37 % 500), uint64_t(i));
    REQUIRE(http.Put(key, value).status == 201);
    expected[key] = value;
    ++changes;
  }
  for (int i = 0; i < 60; i += 6) {  // overwrites
    const std::string key = "r/" + std::to_string(i);
    REQUIRE(http.Put(key, "overwritten " + std::to_string(i)).status == 200);
    expected[key] = "overwritten " + std::to_string(i);
    ++changes;
  }
  for (int i = 1; i < 60; i += 10) {  // deletes
    const std::string key = "r/" + std::to_string(i);
    REQUIRE(http.Delete(key).status == 204);
    expected.erase(key);
    ++changes;
  }
  REQUIRE(http.Put("first", "1").status == 200);   // unchanged: no revision
  REQUIRE(http.Delete("never").status == 204);     // missing: no revision
  const auto before = Snapshot(http);
  CHECK(before.size() == expected.size());
  for (const auto& [key, value] : expected) {
    CAPTURE(PercentEncode(key));
    CHECK(before.count(key) == 1);
    CHECK(before.at(key).value == value);
  }

  http.Close();
  for (int cycle = 0; cycle < 2; ++cycle) {
    CAPTURE(cycle);
    const int code = server.Stop();
    CHECK_MESSAGE(code == 0, "SIGTERM exit code " << code << "; stderr:\n"
                                                   << server.process().Stderr());
    server.Start();
    HttpClient again(server.port());
    const auto after = Snapshot(again);
    CHECK(after.size() == before.size());
    for (const auto& [key, stored] : before) {
      CAPTURE(PercentEncode(key));
      REQUIRE(after.count(key) == 1);
      CHECK(after.at(key).value == stored.value);
      CHECK(after.at(key).revision == stored.revision);
      HttpResponse get = again.Get(key);
      CHECK(get.body == stored.value);
      CHECK(get.EtagRevision() == stored.revision);
    }
    CHECK(again.Get("r/1").status == 404);  // deleted before the restart
    again.Close();
  }
  // Revisions continue where they stopped (deletes took one each).
  HttpClient last(server.port());
  HttpResponse next = last.Put("after-restart", "x");
  REQUIRE(next.status == 201);
  CHECK(next.Json()["revision"].get<uint64_t>() == changes + 1);
  last.Close();
  CHECK(server.Stop() == 0);
}

TEST_CASE("kill -9 during concurrent writes loses no acknowledged write (5 rounds)") {
  // 8 writers, each on its own keys: new keys, overwrites of a few hot keys and
  // deletes, so recovery must replay every kind of record in order. The server
  // is killed after 0.3 to 1.7 s of writing; odd rounds use 64 KiB segments so
  // the kill also lands while segments are being cut. All rounds share one
  // data dir: each recovery starts from a log that earlier crashes left.
  constexpr int kThreads = 8;
  constexpr int kMaxPerThread = 10000;
  KvServer server;

  using State = std::optional<std::string>;  // nullopt: deleted
  struct Op {
    std::string key;
    State value;
  };
  std::map<std::string, State> expected_all;  // what was observed after each recovery

  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    std::atomic<bool> stop{false};
    std::vector<std::map<std::string, State>> acked(kThreads);
    std::vector<std::optional<Op>> in_flight(kThreads);
    std::vector<std::string> bad_answers(kThreads);
    std::vector<size_t> acked_count(kThreads, 0);
    std::vector<std::thread> writers;
    const int port = server.port();
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        HttpClient http(port);
        for (int i = 0; i < kMaxPerThread && !stop.load(); ++i) {
          char key[64];
          Op op;
          if (i % 2 == 0) {  // a new key
            std::snprintf(key, sizeof key, "dur/%d/%d/new/%05d", round, t, i);
          } else {  // one of 16 hot keys, overwritten, sometimes deleted
            std::snprintf(key, sizeof key, "dur/%d/%d/hot/%02d", round, t, (i / 2) % 16);
          }
          op.key = key;
          if (i % 10 != 9) {
            op.value = std::to_string(i) + "|" +
                       RandomBytes(static_cast<size_t>((i * 7 + t) % 300),
                                   uint64_t(round) * 1000003 + uint64_t(t) * 100003 + uint64_t(i));
          }
          in_flight[t] = op;
          auto r = op.value ? http.TryRequest("PUT", KeyPath(op.key), *op.value)
                            : http.TryRequest("DELETE", KeyPath(op.key));
          if (!r) return;  // the server is gone
          const bool ok = op.value ? (r->status == 200 || r->status == 201) : r->status == 204;
          if (!ok) {
            bad_answers[t] = std::to_string(r->status) + " " + r->body;
            return;
          }
          acked[t][op.key] = op.value;
          ++acked_count[t];
          in_flight[t].reset();
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 350 * round));
    server.Kill9();
    stop = true;
    for (auto& w : writers) w.join();

    size_t round_acked = 0;
    for (int t = 0; t < kThreads; ++t) {
      CHECK_MESSAGE(bad_answers[t].empty(), "a write got an unexpected answer: " << bad_answers[t]);
      round_acked += acked_count[t];
    }
    MESSAGE("round " << round << ": " << round_acked << " acknowledged writes before kill -9");
    REQUIRE_MESSAGE(round_acked > 0, "no write was acknowledged before the kill");

    server.set_env(round % 2 == 0 ? Env{{"KVCTL_STORAGE_SEGMENT_BYTES", "65536"}} : Env{});
    server.Start();  // same data dir
    HttpClient http(server.port());
    size_t lost = 0;
    for (int t = 0; t < kThreads; ++t) {
      for (const auto& [key, want] : acked[t]) {
        HttpResponse r = http.Get(key);
        const State got = r.status == 200 ? State(r.body) : std::nullopt;
        REQUIRE((r.status == 200 || r.status == 404));
        bool fine = got == want;
        if (!fine && in_flight[t] && in_flight[t]->key == key) {
          fine = got == in_flight[t]->value;  // the unacknowledged last write may have landed
        }
        if (!fine && ++lost <= 5) {
          CHECK_MESSAGE(false, "acknowledged state lost: " << key << " is "
                                   << (got ? "\"" + got->substr(0, 12) + "...\"" : "absent")
                                   << ", want " << (want ? "\"" + want->substr(0, 12) + "...\"" : "absent"));
        }
        expected_all[key] = got;
      }
      if (in_flight[t] && !acked[t].count(in_flight[t]->key)) {
        // A never-acknowledged write to a fresh key: there or not, never altered.
        HttpResponse r = http.Get(in_flight[t]->key);
        CHECK((r.status == 404 || (r.status == 200 && State(r.body) == in_flight[t]->value)));
      }
    }
    CHECK_MESSAGE(lost == 0, lost << " acknowledged writes lost in round " << round);
    // Every live key reports a distinct revision.
    std::set<uint64_t> revisions;
    size_t live = 0;
    for (const auto& item : http.ListAll("dur/", 10000)) {
      ++live;
      CHECK_MESSAGE(revisions.insert(item["revision"].get<uint64_t>()).second,
                    "revision " << item["revision"] << " reported by two keys");
    }
    CHECK(live == revisions.size());
  }

  // A clean restart (and each later crash) kept what every round recovered.
  CHECK(server.Stop() == 0);
  server.Start();
  HttpClient http(server.port());
  size_t differ = 0;
  for (const auto& [key, want] : expected_all) {
    HttpResponse r = http.Get(key);
    const State got = r.status == 200 ? State(r.body) : std::nullopt;
    if (got != want) ++differ;
  }
  CHECK_MESSAGE(differ == 0, differ << " of " << expected_all.size()
                                    << " keys changed since they were recovered");
}

TEST_CASE("a torn tail at any offset of the last segment recovers a prefix and keeps the cut bytes") {
  SequentialLog log;
  BuildSequentialLog(log);
  const uint64_t size = fs::file_size(log.segment);

  struct Cut {
    uint64_t offset;
    int expect_survivors;
    bool mid_record;
  };
  std::vector<Cut> cuts;
  // Ten cuts inside records 1..39 (past the segment header), at positions
  // moving from a record's first byte to its last; plus two cuts exactly at a
  // record boundary, which leave a clean log.
  for (int k = 0; k < 10; ++k) {
    const int rec = 1 + k * (kWrites - 2) / 9;
    const uint64_t start = log.ends[rec - 1];
    const uint64_t len = log.ends[rec] - start;
    const uint64_t inside = len <= 2 ? 1 : 1 + (len - 2) * uint64_t(k) / 9;
    cuts.push_back({start + inside, rec, true});
  }
  cuts.push_back({log.ends[kWrites / 2 - 1], kWrites / 2, false});
  cuts.push_back({log.ends[kWrites - 2], kWrites - 1, false});

  for (size_t c = 0; c < cuts.size(); ++c) {
    const Cut cut = cuts[c];
    CAPTURE(cut.offset);
    CAPTURE(size);
    const fs::path dir = CopyLog(log, "torn-" + std::to_string(c));
    const fs::path segment = dir / log.segment.filename();
    const auto names_before = ListDir(dir);
    fs::resize_file(segment, cut.offset);

    const int port = FreePort();
    ServerProcess server(log.tmp.path(), ServerOptions{dir.string(), port, {}, {}});
    server.WaitReady();
    HttpClient http(port);
    const int survived = CheckPrefix(http);
    CHECK_MESSAGE(survived == cut.expect_survivors,
                  "complete records before the cut were dropped, or a cut one was kept");
    if (cut.mid_record) {
      // Nothing is dropped silently: the server's log says what it cut, and where.
      const std::string err = server.Stderr();
      CHECK_MESSAGE(err.find("torn write") != std::string::npos, "stderr:\n" << err);
      CHECK(err.find(segment.filename().string()) != std::string::npos);
      CHECK(err.find("dropped_bytes=") != std::string::npos);
      auto copies = BrokenCopies(names_before, dir, segment);
      CHECK_MESSAGE(!copies.empty(), "no copy of the cut bytes beside the segment; dir: "
                                         << [&] {
                                              std::string all;
                                              for (const auto& n : ListDir(dir)) all += n + " ";
                                              return all;
                                            }());
    }
    // Writable again, and the repair holds across another restart.
    HttpResponse put = http.Put("after-repair", "ok");
    CHECK(put.status == 201);
    CHECK(put.Json()["revision"].get<uint64_t>() > uint64_t(survived));
    http.Close();
    const int code = server.Terminate();
    CHECK(code == 0);
    const int port2 = FreePort();
    ServerProcess again(log.tmp.path(), ServerOptions{dir.string(), port2, {}, {}});
    again.WaitReady();
    HttpClient http2(port2);
    CHECK(CheckPrefix(http2) == survived);
    CHECK(http2.Get("after-repair").body == "ok");
    http2.Close();
    CHECK(again.Terminate() == 0);
  }
}

// Zeros are what a crash leaves of the space the server preallocates.
TEST_CASE("garbage or zeros appended to the last segment are dropped at startup") {
  SequentialLog log;
  BuildSequentialLog(log);
  const std::vector<std::pair<std::string, std::string>> tails = {
      {"random", RandomBytes(777, 99)},
      {"zeros", std::string(4096, '\0')},
      {"random-large", RandomBytes(70000, 5)},
  };
  for (const auto& [name, tail] : tails) {
    CAPTURE(name);
    const fs::path dir = CopyLog(log, "garbage-" + name);
    const fs::path segment = dir / log.segment.filename();
    WriteFile(segment, ReadFile(segment) + tail);

    const int port = FreePort();
    ServerProcess server(log.tmp.path(), ServerOptions{dir.string(), port, {}, {}});
    server.WaitReady();
    HttpClient http(port);
    CHECK(CheckPrefix(http) == kWrites);  // every real record is kept
    HttpResponse put = http.Put("after-garbage", "ok");
    CHECK(put.status == 201);
    CHECK(put.Json()["revision"].get<uint64_t>() == uint64_t(kWrites + 1));
    http.Close();
    CHECK(server.Terminate() == 0);

    // The write made after recovery is readable after another restart, so it
    // was not appended behind the garbage.
    const int port2 = FreePort();
    ServerProcess again(log.tmp.path(), ServerOptions{dir.string(), port2, {}, {}});
    again.WaitReady();
    HttpClient http2(port2);
    CHECK(CheckPrefix(http2) == kWrites);
    CHECK(http2.Get("after-garbage").body == "ok");
    http2.Close();
    CHECK(again.Terminate() == 0);
  }
}

TEST_CASE("a flipped byte in the middle of the log makes serve exit 5 naming the file and offset") {
  SequentialLog log;
  BuildSequentialLog(log);
  const fs::path dir = CopyLog(log, "flipped");
  const fs::path segment = dir / log.segment.filename();
  std::string bytes = ReadFile(segment);
  // Three quarters into record 10 of 40: inside its value, with 29 valid
  // records after it.
  const uint64_t at = log.ends[9] + (log.ends[10] - log.ends[9]) * 3 / 4;
  CAPTURE(at);
  bytes[at] = static_cast<char>(bytes[at] ^ 0xFF);
  WriteFile(segment, bytes);

  const int port = FreePort();
  ServerProcess server(log.tmp.path(), ServerOptions{dir.string(), port, {}, {}});
  auto code = server.WaitExit(std::chrono::seconds(20));
  REQUIRE_MESSAGE(code.has_value(), "kvctl serve kept running on a corrupt log");
  const std::string err = server.Stderr();
  CHECK_MESSAGE(*code == 5, "exit " << *code << "; stderr:\n" << err);
  CHECK_MESSAGE(err.find(segment.filename().string()) != std::string::npos,
                "stderr does not name the segment:\n" << err);
  std::string lower = err;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  const bool names_offset = lower.find("offset") != std::string::npos ||
                            lower.find(segment.filename().string() + ":") != std::string::npos;
  CHECK_MESSAGE(names_offset, "stderr does not give an offset:\n" << err);
  // Refusing must not repair: the valid records after the damage are still on disk.
  CHECK_MESSAGE(ReadFile(segment) == bytes, "the corrupt segment was modified");
}

TEST_CASE("damage anywhere in a record's first bytes mid-log makes serve exit 5, never a silent cut") {
  // A length or checksum field hit by the damage must not make the reader take
  // the rest of the segment (29 valid records) for a torn tail.
  SequentialLog log;
  BuildSequentialLog(log);
  const uint64_t start = log.ends[9];  // record 10 of 40
  const uint64_t len = log.ends[10] - start;
  std::vector<uint64_t> positions;
  for (uint64_t i = 0; i < std::min<uint64_t>(24, len); ++i) positions.push_back(start + i);
  positions.push_back(start + len / 2);
  positions.push_back(start + len - 1);
  for (size_t n = 0; n < positions.size(); ++n) {
    const uint64_t at = positions[n];
    CAPTURE(at - start);
    const fs::path dir = CopyLog(log, "damaged-" + std::to_string(n));
    const fs::path segment = dir / log.segment.filename();
    std::string bytes = ReadFile(segment);
    bytes[at] = static_cast<char>(bytes[at] ^ 0xFF);
    WriteFile(segment, bytes);
    const int port = FreePort();
    ServerProcess server(log.tmp.path(), ServerOptions{dir.string(), port, {}, {}});
    auto code = server.WaitExit(std::chrono::seconds(20));
    if (!code) {
      // It started: then it must at least still hold every write.
      HttpClient http(port);
      CHECK_MESSAGE(false, "kvctl serve started on a log with a damaged record mid-log; it holds "
                               << CheckPrefix(http) << " of " << kWrites << " writes");
      continue;
    }
    CHECK_MESSAGE(*code == 5, "exit " << *code << "; stderr:\n" << server.Stderr());
    CHECK_MESSAGE(ReadFile(segment) == bytes, "the corrupt segment was modified");
  }
}

TEST_CASE("with 4 KiB segments the log spans many files named by first revision, and restart reads them all") {
  KvServer server({}, {{"KVCTL_STORAGE_SEGMENT_BYTES", "4096"}});
  HttpClient http(server.port());
  std::set<std::string> seen;
  std::map<std::string, std::string> expected;
  for (int r = 1; r <= 120; ++r) {
    const std::string key = "seg/" + std::to_string(r);
    const std::string value = RandomBytes(200, uint64_t(r));
    HttpResponse put = http.Put(key, value);
    REQUIRE(put.status == 201);
    REQUIRE(put.Json()["revision"].get<uint64_t>() == uint64_t(r));
    expected[key] = value;
    for (const auto& seg : Segments(server.data_dir())) {
      const std::string name = seg.filename().string();
      if (!seen.insert(name).second) continue;
      // A segment that appears as write r is acknowledged starts at r (cut
      // before writing it) or r + 1 (cut ahead for the next write).
      const uint64_t first = std::stoull(name.substr(0, 20));
      CHECK_MESSAGE((first == uint64_t(r) || first == uint64_t(r) + 1 || (r == 1 && first == 0)),
                    "segment " << name << " appeared when revision " << r << " was written");
    }
  }
  CHECK_MESSAGE(Segments(server.data_dir()).size() >= 4,
                "120 writes of 200 bytes should fill several 4 KiB segments");
  http.Close();
  server.Restart();
  HttpClient again(server.port());
  for (const auto& [key, value] : expected) {
    HttpResponse get = again.Get(key);
    CHECK(get.body == value);
    CHECK(get.EtagRevision() == std::stoull(key.substr(4)));
  }
  HttpResponse next = again.Put("seg/next", "n");
  CHECK(next.Json()["revision"].get<uint64_t>() == 121);
}

TEST_CASE("a second server on the same data dir is refused while the first runs") {
  KvServer first;
  HttpClient http(first.port());
  REQUIRE(http.Put("owner", "first").status == 201);

  const int port = FreePort();
  ServerProcess second(first.tmp().path(),
                       ServerOptions{first.data_dir().string(), port, {}, {}});
  auto code = second.WaitExit(std::chrono::seconds(20));
  REQUIRE_MESSAGE(code.has_value(), "the second server kept running on a locked data dir");
  const std::string err = second.Stderr();
  CHECK_MESSAGE(*code == 2, "exit " << *code << "; stderr:\n" << err);
  std::string lower = err;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  CHECK_MESSAGE((lower.find("in use") != std::string::npos || lower.find("lock") != std::string::npos),
                "stderr does not say the data dir is in use:\n" << err);
  CHECK_MESSAGE(err.find(first.data_dir().string()) != std::string::npos,
                "stderr does not name the data dir:\n" << err);

  // The first server is unharmed and its lock goes with it.
  CHECK(http.Put("owner", "still first").status == 200);
  CHECK(http.Get("owner").body == "still first");
  http.Close();
  first.Restart();
  HttpClient after(first.port());
  CHECK(after.Get("owner").body == "still first");
}

}  // namespace kvctl::e2e
