// Watches (lib/core/watch.h) over a real Store and FileLog: every change
// from a revision on, in order, none lost, repeated or merged, from memory
// and from the log's segments; the history floor and retention; progress
// marks, slow watchers cut off, the end of a watch.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/file_log.h"
#include "lib/core/store.h"
#include "lib/core/watch.h"
#include "tests/support/fault_fs.h"

namespace {

using namespace kvctl;
using namespace std::chrono_literals;
using core::Watcher;
using kvctl::testing::TempDir;

TEST_SUITE_BEGIN("watch");

struct Options {
  size_t memory_events = 100000;
  uint64_t retention = 0;
  uint64_t max_lag = 10000;
  std::chrono::milliseconds progress{10000};
  uint64_t segment_bytes = 1 << 20;
};

// A Store over a FileLog in `dir`, with the given watch settings.
struct OpenStore {
  explicit OpenStore(const std::string& dir, Options o = {}) : store(StoreOptionsOf(o)) {
    core::RecoveryReport report;
    auto opened = core::FileLog::Open(
        {.dir = dir, .segment_bytes = o.segment_bytes, .history_retention = o.retention},
        [&](const core::LogRecord& r) {
          store.ApplyRecovered(r);
          return core::Status::Ok();
        },
        &report);
    REQUIRE(opened.has_value());
    store.NoteRecoveredRevision(report.last_revision);
    store.Start(std::move(*opened));
  }
  static core::StoreOptions StoreOptionsOf(const Options& o) {
    core::StoreOptions s;
    s.watch.memory_events = o.memory_events;
    s.watch.max_lag = o.max_lag;
    s.watch.progress_interval = o.progress;
    return s;
  }
  core::Store store;
};

// A watcher and what it received, polled as its notify says.
struct Watching {
  // Shared with the notify, which may still run on the hub's thread after
  // this Watching is gone (Watcher::Cancel).
  struct Signal {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  std::shared_ptr<Signal> signal = std::make_shared<Signal>();
  std::shared_ptr<Watcher> watcher;
  std::vector<core::WatchEvent> events;
  std::vector<uint64_t> progress;
  Watcher::End end = Watcher::End::kNone;
  uint64_t compact_revision = 0;

  core::Status Start(core::KvStore& store, core::WatchFilter filter, uint64_t from) {
    auto w = store.Watch(filter, from, [signal = signal] {
      std::lock_guard lock(signal->mu);
      signal->woken = true;
      signal->cv.notify_all();
    });
    if (!w) return w.error();
    watcher = *w;
    return core::Status::Ok();
  }

  // Polls until `done` holds or `limit` passes; true if it held.
  bool PollUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s,
                 size_t budget = 1 << 20) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      Watcher::Batch batch;
      watcher->Poll(budget, &batch);
      for (const auto& e : batch.events) events.push_back(*e);
      if (batch.progress != 0) progress.push_back(batch.progress);
      if (batch.end != Watcher::End::kNone) {
        end = batch.end;
        compact_revision = batch.compact_revision;
      }
      if (done()) return true;
      if (end != Watcher::End::kNone) return false;
      if (!batch.events.empty() || batch.progress != 0) continue;
      std::unique_lock lock(signal->mu);
      if (!signal->cv.wait_until(lock, deadline, [&] { return signal->woken; })) return done();
      signal->woken = false;
    }
  }
  bool UntilRevision(uint64_t revision) {
    return PollUntil([&] { return !events.empty() && events.back().revision >= revision; });
  }
};

// Whether `pred` holds within 10 s (the hub learns of a commit just after
// its writer is answered).
bool Eventually(const std::function<bool()>& pred) {
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

core::WatchFilter Prefix(std::string p) { return {std::move(p), true}; }
core::WatchFilter Key(std::string k) { return {std::move(k), false}; }

std::string KeyOf(int i) { return "k/" + std::to_string(i); }

// Revisions r in [first, last], each once, in order.
void CheckEvery(const std::vector<core::WatchEvent>& events, uint64_t first, uint64_t last) {
  REQUIRE(events.size() == last - first + 1);
  for (size_t i = 0; i < events.size(); ++i) {
    CAPTURE(i);
    CHECK(events[i].revision == first + i);
  }
}

TEST_CASE("a watch gets every change after it starts, in order, with the keys' metadata") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Put("a", "0").has_value());  // 1, before the watch
  Watching w;
  REQUIRE(w.Start(s.store, Prefix(""), 0).ok());
  REQUIRE(s.store.Put("a", "1").has_value());  // 2
  REQUIRE(s.store.Put("b", "1").has_value());  // 3
  REQUIRE(s.store.Delete("a").has_value());    // 4
  REQUIRE(s.store.Put("a", "2").has_value());  // 5
  REQUIRE(w.UntilRevision(5));
  CheckEvery(w.events, 2, 5);
  CHECK(w.events[0].key == "a");
  CHECK(w.events[0].value == "1");
  CHECK(w.events[0].meta == core::KeyMeta{1, 2, 0});
  CHECK(w.events[1].meta == core::KeyMeta{3, 1, 0});
  CHECK(w.events[2].type == core::RecordType::kDelete);
  CHECK(w.events[2].meta == core::KeyMeta{});
  CHECK(w.events[3].meta == core::KeyMeta{5, 1, 0});
}

TEST_CASE("a key watch and a prefix watch see only their keys") {
  TempDir dir;
  OpenStore s(dir.path());
  Watching key, prefix;
  REQUIRE(key.Start(s.store, Key("app/x"), 0).ok());
  REQUIRE(prefix.Start(s.store, Prefix("app/"), 0).ok());
  int n = 0;
  for (const char* k : {"app/x", "app/y", "other", "app/x/sub", "ap", "app/x"}) {
    REQUIRE(s.store.Put(k, std::to_string(++n)).has_value());
  }
  REQUIRE(prefix.UntilRevision(6));
  REQUIRE(key.UntilRevision(6));
  std::vector<uint64_t> got;
  for (const auto& e : key.events) got.push_back(e.revision);
  CHECK(got == std::vector<uint64_t>{1, 6});
  got.clear();
  for (const auto& e : prefix.events) got.push_back(e.revision);
  CHECK(got == std::vector<uint64_t>{1, 2, 4, 6});
}

TEST_CASE("a watch from an old revision reads the log's segments, then goes on live, losing nothing") {
  TempDir dir;
  // Memory keeps 8 events and segments are small: most of the history is
  // read back from the files.
  OpenStore s(dir.path(), {.memory_events = 8, .segment_bytes = 4096});
  Watching early;  // keeps memory in use, so that events are kept at all
  REQUIRE(early.Start(s.store, Key("nothing"), 0).ok());
  for (int i = 1; i <= 300; ++i) REQUIRE(s.store.Put(KeyOf(i % 17), std::string(40, char('a' + i % 26))).has_value());
  Watching w;
  REQUIRE(w.Start(s.store, Prefix(""), 1).ok());
  // Writes go on while it catches up.
  std::thread writer([&] {
    for (int i = 301; i <= 600; ++i) REQUIRE(s.store.Put(KeyOf(i % 17), std::to_string(i)).has_value());
  });
  const bool all = w.UntilRevision(600);
  writer.join();
  REQUIRE(all);
  CheckEvery(w.events, 1, 600);
  CHECK(w.events[599].value == "600");
  // Metadata from the segments too: key 600 % 17 = 5 was written at 5, 22,
  // ..., 600: 36 times.
  CHECK(w.events[599].meta.version == 36);
}

TEST_CASE("memory over its bound is brought down to seven eighths of it, not one commit's worth at a time") {
  TempDir dir;
  OpenStore s(dir.path(), {.memory_events = 16});
  Watching w;  // someone watching: events are kept
  REQUIRE(w.Start(s.store, Key("nothing"), 0).ok());
  for (int i = 1; i <= 16; ++i) REQUIRE(s.store.Put(KeyOf(i), "v").has_value());
  REQUIRE(Eventually([&] { return s.store.watch_stats().memory_events == 16; }));
  REQUIRE(s.store.Put("k/17", "v").has_value());  // over: down to 14
  REQUIRE(Eventually([&] { return s.store.watch_stats().memory_events == 14; }));
  REQUIRE(s.store.Put("k/18", "v").has_value());  // under again: kept
  REQUIRE(Eventually([&] { return s.store.watch_stats().memory_events == 15; }));
  // A watch from an evicted revision reads it from the log.
  Watching from_log;
  REQUIRE(from_log.Start(s.store, Prefix(""), 1).ok());
  REQUIRE(from_log.UntilRevision(18));
  CheckEvery(from_log.events, 1, 18);
}

TEST_CASE("after a restart, a watch from before it reads what the log holds") {
  TempDir dir;
  {
    OpenStore s(dir.path());
    for (int i = 1; i <= 50; ++i) REQUIRE(s.store.Put(KeyOf(i), "v").has_value());
    REQUIRE(s.store.Close().ok());
  }
  OpenStore s(dir.path());
  Watching w;
  REQUIRE(w.Start(s.store, Prefix("k/"), 10).ok());
  REQUIRE(s.store.Put(KeyOf(51), "v").has_value());
  REQUIRE(w.UntilRevision(51));
  CheckEvery(w.events, 10, 51);
}

TEST_CASE("compaction keeps history_retention revisions for watchers, and below them a watch is Compacted") {
  TempDir dir;
  OpenStore s(dir.path(), {.retention = 100, .segment_bytes = 4096});
  for (int i = 1; i <= 400; ++i) REQUIRE(s.store.Put(KeyOf(i % 10), std::string(60, char('a' + i % 26))).has_value());
  auto compacted = s.store.Compact();
  REQUIRE(compacted.has_value());
  REQUIRE(compacted->compacted);
  // Whole segments only: the newest 100 revisions and a little more stay.
  CHECK(compacted->covered_revision <= 300);
  CHECK(compacted->covered_revision > 0);
  const uint64_t floor = s.store.HistoryFloor();
  CHECK(floor == compacted->covered_revision + 1);
  Watching below;
  const core::Status refused = below.Start(s.store, Prefix(""), floor - 1);
  CHECK(refused.IsCompacted());
  Watching at;
  REQUIRE(at.Start(s.store, Prefix(""), floor).ok());
  REQUIRE(at.UntilRevision(400));
  CheckEvery(at.events, floor, 400);
}

TEST_CASE("a watch from a revision still to come waits for it") {
  TempDir dir;
  OpenStore s(dir.path());
  Watching w;
  REQUIRE(w.Start(s.store, Prefix(""), 3).ok());
  for (int i = 1; i <= 4; ++i) REQUIRE(s.store.Put(KeyOf(i), "v").has_value());
  REQUIRE(w.UntilRevision(4));
  CheckEvery(w.events, 3, 4);
}

TEST_CASE("an idle watch gets progress marks: up to date through the head") {
  TempDir dir;
  OpenStore s(dir.path(), {.progress = 50ms});
  REQUIRE(s.store.Put("a", "1").has_value());
  REQUIRE(s.store.Put("b", "1").has_value());
  Watching w;
  REQUIRE(w.Start(s.store, Key("zzz"), 0).ok());
  REQUIRE(w.PollUntil([&] { return !w.progress.empty(); }, 5s));
  CHECK(w.progress.back() == 2);
  CHECK(w.events.empty());
}

TEST_CASE("a watcher that stops reading is cut off once it falls max_lag behind, and can start again") {
  TempDir dir;
  OpenStore s(dir.path(), {.max_lag = 20});
  Watching w;
  REQUIRE(w.Start(s.store, Prefix(""), 0).ok());
  REQUIRE(s.store.Put("a", "1").has_value());
  REQUIRE(w.UntilRevision(1));
  // It reads no more while 30 changes happen.
  for (int i = 2; i <= 31; ++i) REQUIRE(s.store.Put("a", std::to_string(i)).has_value());
  CHECK_FALSE(w.PollUntil([] { return false; }, 2s));
  CHECK(w.end == Watcher::End::kLagging);
  CHECK(s.store.watch_stats().cut_off == 1);
  // What it had not read is still there: a new watch from where it was.
  Watching again;
  REQUIRE(again.Start(s.store, Prefix(""), 2).ok());
  REQUIRE(again.UntilRevision(31));
  CheckEvery(again.events, 2, 31);
}

TEST_CASE("200 watchers of one prefix each get every change") {
  TempDir dir;
  OpenStore s(dir.path());
  std::vector<std::unique_ptr<Watching>> watchers;
  for (int i = 0; i < 200; ++i) {
    watchers.push_back(std::make_unique<Watching>());
    REQUIRE(watchers.back()->Start(s.store, Prefix("p/"), 0).ok());
  }
  CHECK(s.store.watch_stats().watchers == 200);
  for (int i = 1; i <= 50; ++i) REQUIRE(s.store.Put("p/" + std::to_string(i % 7), std::to_string(i)).has_value());
  for (auto& w : watchers) {
    REQUIRE(w->UntilRevision(50));
    CheckEvery(w->events, 1, 50);
  }
}

TEST_CASE("a cancelled watcher is gone, and closing the store ends every watcher") {
  TempDir dir;
  OpenStore s(dir.path());
  Watching cancelled, open;
  REQUIRE(cancelled.Start(s.store, Prefix(""), 0).ok());
  REQUIRE(open.Start(s.store, Prefix(""), 0).ok());
  cancelled.watcher->Cancel();
  CHECK(s.store.watch_stats().watchers == 1);
  REQUIRE(s.store.Close().ok());
  CHECK_FALSE(open.PollUntil([] { return false; }, 2s));
  CHECK(open.end == Watcher::End::kClosed);
  CHECK_FALSE(s.store.Watch(Prefix(""), 0, [] {}).has_value());
}

TEST_SUITE_END();

}  // namespace
