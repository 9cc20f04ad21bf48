// Key metadata and watches on the PostgreSQL backend, at the store level:
// PgStore instances in this process stand for servers sharing one real,
// throwaway database (the HTTP routes are tested on the file backend; these
// test what only PostgreSQL does: metadata decided by the database, kv_log
// as the watchers' history, retention in compaction, other servers'
// changes).
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/history_reader.h"
#include "lib/core/watch.h"
#include "lib/pg/pg_history.h"
#include "lib/pg/pg_store.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using namespace std::chrono_literals;
using core::KeyMeta;

std::unique_ptr<pg::PgStore> OpenStore(const std::string& dsn, uint64_t retention = 0) {
  pg::PgStoreOptions o;
  o.dsn = dsn;
  o.history_retention = retention;
  o.watch.progress_interval = 200ms;
  auto store = pg::PgStore::Open(o);
  REQUIRE_MESSAGE(store.has_value(), store.error().message());
  return std::move(*store);
}

KeyMeta MetaOf(const core::KvStore& s, const std::string& key) {
  auto e = s.Get(key);
  REQUIRE_MESSAGE(e.has_value(), key, ": ", e.error().message());
  return e->meta;
}

uint64_t PutOk(core::KvStore& s, const std::string& key, const std::string& value) {
  auto r = s.Put(key, value);
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  return r->revision;
}

uint64_t DeleteOk(core::KvStore& s, const std::string& key) {
  auto r = s.Delete(key);
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  return r->revision;
}


// What a watch received until it had `want` events, ended, or 10 s passed.
struct Seen {
  std::vector<core::WatchEvent> events;
  core::Watcher::End end = core::Watcher::End::kNone;
  uint64_t compact_revision = 0;
  std::string why;
};

void Collect(core::Watcher& w, size_t want, Seen* seen) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (seen->events.size() < want && std::chrono::steady_clock::now() < deadline) {
    core::Watcher::Batch batch;
    w.Poll(64 << 10, &batch);
    for (const auto& e : batch.events) seen->events.push_back(*e);
    if (batch.end != core::Watcher::End::kNone) {
      seen->end = batch.end;
      seen->compact_revision = batch.compact_revision;
      seen->why = batch.why;
      return;
    }
    if (batch.events.empty()) std::this_thread::sleep_for(5ms);
  }
}

std::shared_ptr<core::Watcher> WatchOk(core::KvStore& s, core::WatchFilter filter, uint64_t from) {
  auto w = s.Watch(filter, from, [] {});
  REQUIRE_MESSAGE(w.has_value(), w.error().message());
  return *w;
}

// The changes made, as a watcher must see them, with metadata by SPEC §6's
// rule (kept here, apart from the code under test).
struct Model {
  std::vector<core::WatchEvent> events;
  std::map<std::string, KeyMeta> live;

  void Put(core::KvStore& s, const std::string& key, const std::string& value) {
    const uint64_t r = PutOk(s, key, value);
    auto it = live.find(key);
    KeyMeta m = it == live.end() ? KeyMeta{r, 1, 0} : KeyMeta{it->second.create_revision, it->second.version + 1, 0};
    live[key] = m;
    events.push_back({r, core::RecordType::kPut, key, value, m});
  }
  void Delete(core::KvStore& s, const std::string& key) {
    const uint64_t r = DeleteOk(s, key);
    live.erase(key);
    events.push_back({r, core::RecordType::kDelete, key, "", {}});
  }
  // The events `filter` matches from revision `from` on.
  std::vector<core::WatchEvent> Matching(const core::WatchFilter& filter, uint64_t from = 1) const {
    std::vector<core::WatchEvent> out;
    for (const auto& e : events) {
      if (e.revision >= from && filter.Matches(e.key)) out.push_back(e);
    }
    return out;
  }
};

std::string Describe(const std::vector<core::WatchEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    out += std::to_string(e.revision) + (e.type == core::RecordType::kPut ? " put " : " del ");
    for (unsigned char c : e.key) {
      out += c >= 0x20 && c < 0x7f ? std::string(1, static_cast<char>(c)) : "\\x" + std::to_string(c);
    }
    out += "=" + e.value + " " + std::to_string(e.meta.create_revision) + "," +
           std::to_string(e.meta.version) + "," + std::to_string(e.meta.lease) + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("PostgreSQL: the database decides each put's metadata, and other servers and a reload apply it as written") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  auto b = OpenStore(db.dsn);

  const uint64_t r1 = PutOk(*a, "k", "1");
  PutOk(*a, "k", "2");
  CHECK(MetaOf(*a, "k") == KeyMeta{r1, 2, 0});
  // B writes the key next: its transaction reads A's row from kv_state,
  // whatever B has applied so far.
  const uint64_t r3 = PutOk(*b, "k", "3");
  CHECK(MetaOf(*b, "k") == KeyMeta{r1, 3, 0});
  CHECK(Eventually([&] { return a->revision() >= r3; }));
  CHECK(MetaOf(*a, "k") == KeyMeta{r1, 3, 0});

  // Three puts of one key queued at once (likely one transaction): each
  // sees the one before it.
  std::vector<std::promise<core::Result<core::PutOutcome>>> done(3);
  for (int i = 0; i < 3; ++i) {
    a->PutAsync("batch", "v" + std::to_string(i), {}, 0,
                [&done, i](core::Result<core::PutOutcome> r) { done[i].set_value(std::move(r)); });
  }
  std::vector<uint64_t> revisions;
  for (auto& d : done) {
    auto r = d.get_future().get();
    REQUIRE(r.has_value());
    revisions.push_back(r->revision);
  }
  CHECK(MetaOf(*a, "batch") == KeyMeta{revisions[0], 3, 0});

  // Deleted and created again: a new generation.
  DeleteOk(*a, "k");
  const uint64_t r5 = PutOk(*a, "k", "again");
  CHECK(MetaOf(*a, "k") == KeyMeta{r5, 1, 0});
  CHECK(db.Sql("SELECT create_revision || ',' || version FROM kv_state WHERE key = 'k'") ==
            std::to_string(r5) + ",1");
  CHECK(db.Sql("SELECT string_agg(version::text, ',' ORDER BY revision) FROM kv_log WHERE key = 'k'") ==
        "1,2,3,0,1");
  CHECK(Eventually([&] { return b->revision() >= r5; }));
  CHECK(MetaOf(*b, "k") == KeyMeta{r5, 1, 0});
  CHECK(MetaOf(*b, "batch") == KeyMeta{revisions[0], 3, 0});

  // A server started now (a reload of kv_state) and one restarted agree.
  auto c = OpenStore(db.dsn);
  CHECK(MetaOf(*c, "k") == KeyMeta{r5, 1, 0});
  CHECK(MetaOf(*c, "batch") == KeyMeta{revisions[0], 3, 0});
  REQUIRE(b->Close().ok());
  b.reset();
  b = OpenStore(db.dsn);
  CHECK(MetaOf(*b, "batch") == KeyMeta{revisions[0], 3, 0});
  // After a compaction (which keeps only the live keys' last puts up to
  // it), the metadata stays what it was, and a new put goes on from it.
  REQUIRE(a->Compact().has_value());
  auto d = OpenStore(db.dsn);
  CHECK(MetaOf(*d, "batch") == KeyMeta{revisions[0], 3, 0});
  PutOk(*d, "batch", "v3");
  CHECK(MetaOf(*d, "batch") == KeyMeta{revisions[0], 4, 0});

  // replay --dsn reads the metadata kv_log holds (not derived again from a
  // compacted history), and replay --into copies it.
  const pg::PgDatabase source{db.dsn};
  core::HistoryReport report;
  auto state = core::ReadStateAt(pg::PgHistorySource(source), 0, &report);
  REQUIRE_MESSAGE(state.has_value(), state.error().message());
  CHECK(state->at("batch").meta == KeyMeta{revisions[0], 4, 0});
  CHECK(state->at("k").meta == KeyMeta{r5, 1, 0});
  const std::string copy_db = db.pg.CreateDatabase();
  const std::string copy_dsn = db.pg.Dsn(copy_db);
  MigrateUp(copy_dsn);
  auto copied = pg::CopyHistoryToPg(pg::PgHistorySource(source), pg::PgDatabase{copy_dsn}, 0);
  REQUIRE_MESSAGE(copied.has_value(), copied.error().message());
  auto e = OpenStore(copy_dsn);
  CHECK(MetaOf(*e, "batch") == KeyMeta{revisions[0], 4, 0});
  CHECK(MetaOf(*e, "k") == KeyMeta{r5, 1, 0});
}

TEST_CASE("PostgreSQL: a watch on one server sees every write made through another, from kv_log and then live") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  Model model;
  // Keys next to the edges of a prefix's byte range: 0xff bytes, a prefix
  // that is all 0xff (no upper bound), NUL.
  const std::string ff = "\xff";
  const std::string a_ff = std::string("a\xff");
  for (int round = 0; round < 3; ++round) {
    const std::string v = std::to_string(round);
    model.Put(*a, "p/1", "one" + v);
    model.Put(*a, "p/2", "two" + v);
    model.Put(*a, "q", "q" + v);
    model.Put(*a, ff + "x", "ff" + v);
    model.Put(*a, ff + ff, "ffff" + v);
    model.Put(*a, a_ff + std::string(1, '\0'), "aff" + v);
    model.Put(*a, "b", "b" + v);
    if (round == 1) {
      model.Delete(*a, "p/1");
      model.Delete(*a, ff + "x");
    }
  }
  const uint64_t old_head = a->revision();

  // B starts after all of that: what it watches from revision 1 can only
  // come from kv_log. Its memory holds 4 events, so even what it applies
  // live is soon read back from kv_log.
  pg::PgStoreOptions o;
  o.dsn = db.dsn;
  o.watch.memory_events = 4;
  o.watch.history_batch_bytes = 16;  // many small reads: the bounds and resumption
  auto opened = pg::PgStore::Open(o);
  REQUIRE_MESSAGE(opened.has_value(), opened.error().message());
  std::unique_ptr<pg::PgStore> b = std::move(*opened);

  const std::vector<core::WatchFilter> filters = {
      {"p/", true}, {"q", false}, {ff, true}, {ff + ff, true}, {a_ff, true}, {"", true}, {"p/1", false}};
  std::vector<std::shared_ptr<core::Watcher>> watchers;
  for (const auto& f : filters) watchers.push_back(WatchOk(*b, f, 1));
  // Same server, from the middle of the history.
  auto middle = WatchOk(*b, {"", true}, old_head / 2);

  // More writes through A while B's watchers read: they follow on, live.
  for (int i = 0; i < 10; ++i) model.Put(*a, "p/live", std::to_string(i));
  model.Delete(*a, "p/2");
  model.Put(*a, "q", "last");

  for (size_t i = 0; i < filters.size(); ++i) {
    CAPTURE(filters[i].key);
    CAPTURE(filters[i].prefix);
    const auto want = model.Matching(filters[i]);
    REQUIRE(!want.empty());
    Seen seen;
    Collect(*watchers[i], want.size(), &seen);
    CHECK(seen.end == core::Watcher::End::kNone);
    CHECK(Describe(seen.events) == Describe(want));
  }
  Seen seen;
  const auto want = model.Matching({"", true}, old_head / 2);
  Collect(*middle, want.size(), &seen);
  CHECK(Describe(seen.events) == Describe(want));

  // And nothing more: a progress mark up to the head, no extra event.
  core::Watcher::Batch batch;
  CHECK(Eventually([&] {
    watchers[5]->Poll(64 << 10, &batch);
    return !batch.events.empty() || batch.progress > 0;
  }));
  CHECK(batch.events.empty());
  CHECK(batch.progress == model.events.back().revision);
}

TEST_CASE("PostgreSQL: compaction keeps the last history_retention revisions as history, and a watch below them is Compacted on every server") {
  MigratedDb db;
  auto a = OpenStore(db.dsn, /*retention=*/5);
  auto b = OpenStore(db.dsn, /*retention=*/0);
  Model model;
  for (int i = 0; i < 20; ++i) model.Put(*a, "k" + std::to_string(i % 4), std::to_string(i));
  REQUIRE(model.events.back().revision == 20);
  CHECK(Eventually([&] { return b->revision() == 20; }));
  // Opened on B before the compaction, from the start, and not read yet.
  auto early = WatchOk(*b, {"k", true}, 1);

  auto stats = a->Compact();
  REQUIRE_MESSAGE(stats.has_value(), stats.error().message());
  CHECK(stats->covered_revision == 15);
  CHECK(stats->compacted);
  CHECK(db.Sql("SELECT compacted_revision FROM kv_meta") == "15");
  // 16..20 whole; up to 15 only each key's last put up to 15 (k3 at 12,
  // k0..k2 at 13..15), a snapshot as of 15.
  CHECK(db.Sql("SELECT string_agg(revision::text, ',' ORDER BY revision) FROM kv_log") ==
        "12,13,14,15,16,17,18,19,20");
  CHECK(a->HistoryFloor() == 16);

  // Below the retained history: Compacted (HTTP 410), on A at once and on
  // B once it has caught up (the compaction notifies).
  auto refused = a->Watch({"k", true}, 15, [] {});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsCompacted());
  CHECK(Eventually([&] { return b->HistoryFloor() == 16; }));
  refused = b->Watch({"k0", false}, 10, [] {});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsCompacted());
  // The watcher that was behind ends Compacted, saying where history starts.
  Seen behind;
  Collect(*early, 100, &behind);
  CHECK(behind.events.empty());
  CHECK(behind.end == core::Watcher::End::kCompacted);
  CHECK(behind.compact_revision == 15);

  // From the floor on, every retained revision, with its metadata.
  for (auto* store : {a.get(), b.get()}) {
    auto w = WatchOk(*store, {"k", true}, 16);
    Seen seen;
    const auto want = model.Matching({"k", true}, 16);
    REQUIRE(want.size() == 5);
    Collect(*w, want.size(), &seen);
    CHECK(Describe(seen.events) == Describe(want));
  }

  // Nothing new to compact: the compacted revision stays.
  stats = a->Compact();
  REQUIRE(stats.has_value());
  CHECK(stats->covered_revision == 15);
  CHECK_FALSE(stats->compacted);
  // Without retention, up to the current revision.
  stats = b->Compact();
  REQUIRE(stats.has_value());
  CHECK(stats->covered_revision == 20);
  CHECK(db.Sql("SELECT count(*) FROM kv_log") == "4");
  CHECK(Eventually([&] { return a->HistoryFloor() == 21; }));
}

TEST_CASE("PostgreSQL: live watches on two servers see the same changes as kv_log holds them while both write at once") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  auto b = OpenStore(db.dsn);
  auto on_a = WatchOk(*a, {"c/", true}, 0);
  auto on_b = WatchOk(*b, {"c/", true}, 0);
  auto one_key = WatchOk(*b, {"c/3", false}, 0);

  // Three writers, two through A and one through B, on the same ten keys.
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t) {
    core::KvStore* store = t < 2 ? static_cast<core::KvStore*>(a.get()) : b.get();
    writers.emplace_back([store, t] {
      for (int i = 0; i < 60; ++i) {
        const std::string key = "c/" + std::to_string((i * 7 + t) % 10);
        if (i % 9 == 8) {
          (void)store->Delete(key);
        } else {
          (void)store->Put(key, std::to_string(t) + "-" + std::to_string(i));
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  const uint64_t head = std::stoull(db.Sql("SELECT revision FROM kv_meta"));
  REQUIRE(head > 100);

  // What kv_log holds, in the watchers' words.
  auto from_log = [&](const std::string& where) {
    std::vector<core::WatchEvent> out;
    for (const std::string& line : Lines(db.Sql(
             "SELECT revision || '|' || kind || '|' || convert_from(key, 'UTF8') || '|' || "
             "coalesce(convert_from(value, 'UTF8'), '') || '|' || create_revision || '|' || version "
             "FROM kv_log WHERE " + where + " ORDER BY revision"))) {
      std::vector<std::string> f;
      size_t start = 0;
      for (size_t bar; (bar = line.find('|', start)) != std::string::npos; start = bar + 1) {
        f.push_back(line.substr(start, bar - start));
      }
      f.push_back(line.substr(start));
      REQUIRE(f.size() == 6);
      core::WatchEvent e;
      e.revision = std::stoull(f[0]);
      e.type = f[1] == "1" ? core::RecordType::kPut : core::RecordType::kDelete;
      e.key = f[2];
      e.value = f[3];
      e.meta = {std::stoull(f[4]), std::stoull(f[5]), 0};
      out.push_back(e);
    }
    return out;
  };
  const auto all = from_log("true");
  REQUIRE(all.size() == head);  // every revision, 1..head
  for (auto* w : {on_a.get(), on_b.get()}) {
    Seen seen;
    Collect(*w, all.size(), &seen);
    CHECK(Describe(seen.events) == Describe(all));
  }
  const auto c3 = from_log("key = 'c/3'");
  Seen seen;
  Collect(*one_key, c3.size(), &seen);
  CHECK(Describe(seen.events) == Describe(c3));

  // The versions follow SPEC §6 along kv_log (the database decided them
  // under its lock, whichever server wrote).
  std::map<std::string, KeyMeta> live;
  for (const auto& e : all) {
    if (e.type == core::RecordType::kDelete) {
      live.erase(e.key);
      continue;
    }
    auto it = live.find(e.key);
    const KeyMeta want = it == live.end() ? KeyMeta{e.revision, 1, 0}
                                          : KeyMeta{it->second.create_revision, it->second.version + 1, 0};
    CHECK(e.meta == want);
    live[e.key] = want;
  }
  for (const auto& [key, meta] : live) {
    CHECK(MetaOf(*a, key) == meta);
    CHECK(MetaOf(*b, key) == meta);
  }
}

TEST_CASE("PostgreSQL: a watch that must read kv_log while the database is away ends Failed, and a new one reads it once the database is back") {
  PgCluster pg;  // its own: it is stopped
  const std::string name = pg.CreateDatabase();
  const std::string dsn = pg.Dsn(name);
  MigrateUp(dsn);
  auto a = OpenStore(dsn);
  Model model;
  for (int i = 0; i < 10; ++i) model.Put(*a, "k" + std::to_string(i % 3), std::to_string(i));
  a.reset();
  pg::PgStoreOptions o;
  o.dsn = dsn;
  o.connect_timeout = 1000ms;
  o.pool_timeout = 1000ms;
  o.reconnect_max_backoff = 200ms;
  auto opened = pg::PgStore::Open(o);
  REQUIRE_MESSAGE(opened.has_value(), opened.error().message());
  std::unique_ptr<pg::PgStore> b = std::move(*opened);

  pg.Stop("fast");
  // B has noticed (so that, back, it drops its pooled connections).
  CHECK(Eventually([&] { return !b->Writable().ok(); }));
  auto w = WatchOk(*b, {"k", true}, 1);  // before its memory: kv_log
  Seen seen;
  Collect(*w, 1, &seen);
  CHECK(seen.events.empty());
  CHECK(seen.end == core::Watcher::End::kFailed);
  CHECK_MESSAGE(seen.why.find("kv_log") != std::string::npos, seen.why);

  pg.Start();
  CHECK(Eventually([&] { return b->Writable().ok(); }, 20s));
  w = WatchOk(*b, {"k", true}, 1);
  Seen again;
  Collect(*w, model.events.size(), &again);
  CHECK(Describe(again.events) == Describe(model.events));
}

}  // namespace kvctl::e2e
