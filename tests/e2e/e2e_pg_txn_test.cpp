// Transactions on the PostgreSQL backend (SPEC §6), mostly at the store
// level: PgStore instances in this process stand for servers sharing one
// real, throwaway database, as in e2e_pg_watch_test.cpp; the last cases go
// through POST /v1/txn on two kvctl servers. What only PostgreSQL
// does is tested here: compares judged by the database (not a server's
// memory, which may be behind), one revision and one kv_log row per key
// written, every server applying and publishing a transaction's changes
// together, kv_log read back in whole revisions by watchers and replay.
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/base64.h"
#include "lib/core/history_reader.h"
#include "lib/core/txn.h"
#include "lib/core/watch.h"
#include "lib/pg/pg_history.h"
#include "lib/pg/pg_store.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"
#include "tests/support/txn_shapes.h"

namespace kvctl::e2e {
namespace {

using namespace std::chrono_literals;
using core::KeyMeta;
using core::TxnCompare;
using core::TxnOp;

std::unique_ptr<pg::PgStore> OpenStore(const std::string& dsn, size_t history_batch_bytes = 256 << 10) {
  pg::PgStoreOptions o;
  o.dsn = dsn;
  o.watch.progress_interval = 200ms;
  o.watch.history_batch_bytes = history_batch_bytes;
  auto store = pg::PgStore::Open(o);
  REQUIRE_MESSAGE(store.has_value(), store.error().message());
  return std::move(*store);
}

TxnOp PutOp(const std::string& key, const std::string& value, uint64_t lease = 0) {
  TxnOp op;
  op.kind = TxnOp::Kind::kPut;
  op.key = key;
  op.value = value;
  op.lease = lease;
  return op;
}

TxnOp KeyOp(TxnOp::Kind kind, const std::string& key, size_t limit = 0) {
  TxnOp op;
  op.kind = kind;
  op.key = key;
  op.limit = limit;
  return op;
}

TxnCompare ValueIs(const std::string& key, const std::string& value) {
  TxnCompare c;
  c.key = key;
  c.target = TxnCompare::Target::kValue;
  c.op = TxnCompare::Op::kEqual;
  c.value = value;
  return c;
}

TxnCompare NumberIs(const std::string& key, TxnCompare::Target target, uint64_t number) {
  TxnCompare c;
  c.key = key;
  c.target = target;
  c.op = TxnCompare::Op::kEqual;
  c.number = number;
  return c;
}

core::TxnResult TxnOk(core::KvStore& s, const core::TxnRequest& request) {
  auto r = s.Txn(request);
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  return *r;
}

uint64_t PutOk(core::KvStore& s, const std::string& key, const std::string& value) {
  auto r = s.Put(key, value);
  REQUIRE_MESSAGE(r.has_value(), r.error().message());
  return r->revision;
}

std::string ValueOf(const core::KvStore& s, const std::string& key) {
  auto e = s.Get(key);
  return e.has_value() ? e->value : "(none)";
}

std::string Describe(const std::vector<core::WatchEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    out += std::to_string(e.revision) + (e.type == core::RecordType::kPut ? " put " : " del ") + e.key +
           "=" + e.value + " " + std::to_string(e.meta.create_revision) + "," +
           std::to_string(e.meta.version) + "\n";
  }
  return out;
}

// Polls `w` until it gave `want` events or 10 s passed; also records how
// the events came in batches (a revision is never split between two).
std::vector<core::WatchEvent> Collect(core::Watcher& w, size_t want, size_t poll_bytes = 64 << 10,
                                      bool* revision_split = nullptr) {
  std::vector<core::WatchEvent> out;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    core::Watcher::Batch batch;
    w.Poll(poll_bytes, &batch);
    if (!batch.events.empty() && !out.empty() && revision_split != nullptr &&
        out.back().revision == batch.events.front()->revision) {
      *revision_split = true;
    }
    for (const auto& e : batch.events) out.push_back(*e);
    if (batch.end != core::Watcher::End::kNone) break;
    if (batch.events.empty()) std::this_thread::sleep_for(5ms);
  }
  return out;
}

std::shared_ptr<core::Watcher> WatchOk(core::KvStore& s, core::WatchFilter filter, uint64_t from) {
  auto w = s.Watch(filter, from, [] {});
  REQUIRE_MESSAGE(w.has_value(), w.error().message());
  return *w;
}

}  // namespace

TEST_CASE("PostgreSQL txn: either branch writes its keys at one revision, seen together by another server and its watchers") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  auto b = OpenStore(db.dsn);
  auto on_b = WatchOk(*b, {"", true}, 0);

  const uint64_t r1 = PutOk(*a, "x", "1");
  // Success: the compare holds; a get sees the branch's earlier writes.
  core::TxnRequest request;
  request.compare = {ValueIs("x", "1"), NumberIs("y", TxnCompare::Target::kVersion, 0)};
  request.success = {PutOp("x", "2"), PutOp("y", "y1"), KeyOp(TxnOp::Kind::kGet, "x"),
                     KeyOp(TxnOp::Kind::kGetPrefix, "")};
  request.failure = {KeyOp(TxnOp::Kind::kGet, "x")};
  core::TxnResult ok = TxnOk(*a, request);
  const uint64_t r2 = r1 + 1;
  CHECK(ok.succeeded);
  CHECK(ok.changed);
  CHECK(ok.revision == r2);
  REQUIRE(ok.results.size() == 4);
  CHECK(ok.results[0].revision == r2);
  CHECK(ok.results[0].meta == KeyMeta{r1, 2, 0});
  CHECK_FALSE(ok.results[0].created);
  CHECK(ok.results[1].created);
  CHECK(ok.results[1].meta == KeyMeta{r2, 1, 0});
  REQUIRE(ok.results[2].items.size() == 1);
  CHECK(ok.results[2].items[0].value == "2");
  CHECK(ok.results[2].items[0].revision == r2);
  REQUIRE(ok.results[3].items.size() == 2);
  CHECK(ok.results[3].items[1].key == "y");
  CHECK_FALSE(ok.results[3].more);
  // One revision, one kv_log row per key, read back at once on A.
  CHECK(db.Sql("SELECT revision FROM kv_meta") == std::to_string(r2));
  CHECK(db.Sql("SELECT string_agg(revision || ':' || convert_from(key, 'UTF8'), ' ' ORDER BY revision, key) "
               "FROM kv_log") == "1:x 2:x 2:y");
  CHECK(a->revision() == r2);
  CHECK(ValueOf(*a, "y") == "y1");

  // Failure: x is no longer 1; the failure branch writes z and deletes y.
  request.success = {PutOp("never", "written")};
  request.failure = {PutOp("z", "z1"), KeyOp(TxnOp::Kind::kDelete, "y"), KeyOp(TxnOp::Kind::kGet, "y")};
  core::TxnResult failed = TxnOk(*a, request);
  const uint64_t r3 = r2 + 1;
  CHECK_FALSE(failed.succeeded);
  CHECK(failed.revision == r3);
  REQUIRE(failed.results.size() == 3);
  CHECK(failed.results[1].deleted == 1);
  CHECK(failed.results[2].items.empty());
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE revision = " + std::to_string(r3)) == "2");
  CHECK(db.Sql("SELECT count(*) FROM kv_state WHERE key = 'never'") == "0");

  // B applied both transactions whole, and its watcher got each one's
  // changes at the same revision, in key order.
  CHECK(Eventually([&] { return b->revision() >= r3; }));
  CHECK(ValueOf(*b, "x") == "2");
  CHECK(b->Get("x")->revision == r2);
  CHECK(ValueOf(*b, "y") == "(none)");
  CHECK(b->Get("z")->revision == r3);
  const std::string want = "1 put x=1 1,1\n"
                           "2 put x=2 1,2\n"
                           "2 put y=y1 2,1\n"
                           "3 del y= 0,0\n"
                           "3 put z=z1 3,1\n";
  CHECK(Describe(Collect(*on_b, 5)) == want);
  // A watch on A sees the same.
  CHECK(Describe(Collect(*WatchOk(*a, {"", true}, 1), 5)) == want);

  // A server started now reads it all from kv_log: with a history read
  // bound of one byte, every read stops inside a revision, and the
  // revision still comes whole, never split between two batches.
  auto c = OpenStore(db.dsn, /*history_batch_bytes=*/1);
  bool split = false;
  CHECK(Describe(Collect(*WatchOk(*c, {"", true}, 1), 5, 1, &split)) == want);
  CHECK_FALSE(split);
  // Four bytes: reads that end inside the second revision they reach
  // (which is left for the next read) or inside the only one.
  auto d = OpenStore(db.dsn, /*history_batch_bytes=*/4);
  CHECK(Describe(Collect(*WatchOk(*d, {"", true}, 1), 5)) == want);
  CHECK(Describe(Collect(*WatchOk(*d, {"", true}, 3), 2)) == want.substr(want.find("3 del")));

  // replay reads several rows at one revision, and --into copies them.
  core::HistoryReport report;
  auto state = core::ReadStateAt(pg::PgHistorySource(pg::PgDatabase{db.dsn}), 0, &report);
  REQUIRE_MESSAGE(state.has_value(), state.error().message());
  CHECK(report.last_revision == r3);
  CHECK(state->size() == 2);
  CHECK(state->at("z").revision == r3);
  const std::string copy_dsn = db.pg.Dsn(db.pg.CreateDatabase());
  MigrateUp(copy_dsn);
  auto copied = pg::CopyHistoryToPg(pg::PgHistorySource(pg::PgDatabase{db.dsn}), pg::PgDatabase{copy_dsn}, 0);
  REQUIRE_MESSAGE(copied.has_value(), copied.error().message());
  auto e = OpenStore(copy_dsn);
  CHECK(Describe(Collect(*WatchOk(*e, {"", true}, 1), 5)) == want);
}

TEST_CASE("PostgreSQL txn: the database judges the compares, whatever the server's memory has applied") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  auto b = OpenStore(db.dsn);
  // B writes, A at once compares against it: A may not have applied B's
  // write yet, but its transaction reads kv_state under the lock.
  for (int i = 0; i < 20; ++i) {
    const std::string v = "v" + std::to_string(i);
    const uint64_t written = PutOk(*b, "k", v);
    core::TxnRequest request;
    request.compare = {ValueIs("k", v), NumberIs("k", TxnCompare::Target::kRevision, written),
                       NumberIs("k", TxnCompare::Target::kVersion, static_cast<uint64_t>(i + 1))};
    request.success = {PutOp("seen", v)};
    core::TxnResult r = TxnOk(*a, request);
    CHECK(r.succeeded);
    CHECK(r.revision == written + 1);
    // A answers after applying what its transaction rested on: B's write.
    CHECK(ValueOf(*a, "k") == v);
  }
  // A missing key: version, revision and create revision 0, and a value
  // compare fails.
  core::TxnRequest missing;
  missing.compare = {NumberIs("nope", TxnCompare::Target::kCreateRevision, 0)};
  CHECK(TxnOk(*a, missing).succeeded);
  missing.compare = {ValueIs("nope", "")};
  CHECK_FALSE(TxnOk(*a, missing).succeeded);
}

TEST_CASE("PostgreSQL txn: a transaction that changes nothing takes no revision and writes no row") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  const uint64_t r1 = PutOk(*a, "k", "v");
  const std::string log_before = db.Sql("SELECT count(*) FROM kv_log");
  core::TxnRequest request;
  request.success = {PutOp("k", "v"), KeyOp(TxnOp::Kind::kDelete, "missing"),
                     KeyOp(TxnOp::Kind::kDeletePrefix, "none/"), KeyOp(TxnOp::Kind::kGet, "k")};
  core::TxnResult r = TxnOk(*a, request);
  CHECK(r.succeeded);
  CHECK_FALSE(r.changed);
  CHECK(r.revision == r1);
  CHECK(r.results[0].revision == r1);  // the put changed nothing
  CHECK(r.results[0].meta == KeyMeta{r1, 1, 0});
  CHECK(r.results[1].deleted == 0);
  CHECK(r.results[2].deleted == 0);
  CHECK(r.results[3].items.at(0).value == "v");
  CHECK(db.Sql("SELECT revision FROM kv_meta") == std::to_string(r1));
  CHECK(db.Sql("SELECT count(*) FROM kv_log") == log_before);
  CHECK(a->revision() == r1);
  // The next write takes the next revision: no gap.
  CHECK(PutOk(*a, "k", "w") == r1 + 1);
}

TEST_CASE("PostgreSQL txn: delete-prefix and get-prefix, bounded, and refusals roll everything back") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  for (int i = 0; i < 5; ++i) PutOk(*a, "p/" + std::to_string(i), "v");
  PutOk(*a, "q", "v");
  const uint64_t before = a->revision();

  core::TxnRequest request;
  request.success = {KeyOp(TxnOp::Kind::kGetPrefix, "p/", 2), KeyOp(TxnOp::Kind::kDeletePrefix, "p/"),
                     KeyOp(TxnOp::Kind::kGetPrefix, "")};
  core::TxnResult r = TxnOk(*a, request);
  CHECK(r.revision == before + 1);
  REQUIRE(r.results.size() == 3);
  CHECK(r.results[0].items.size() == 2);
  CHECK(r.results[0].more);
  CHECK(r.results[1].deleted == 5);
  REQUIRE(r.results[2].items.size() == 1);
  CHECK(r.results[2].items[0].key == "q");
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE revision = " + std::to_string(before + 1)) == "5");
  CHECK(ValueOf(*a, "p/3") == "(none)");

  // A put with a lease that does not exist (none was granted). The put
  // before it in the branch is rolled back with it.
  const std::string head = db.Sql("SELECT revision FROM kv_meta");
  request.success = {PutOp("r", "1"), PutOp("s", "1", 7)};
  auto refused = a->Txn(request);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsNotFound());
  CHECK(refused.error().message().find("lease 7 does not exist") != std::string::npos);
  CHECK(db.Sql("SELECT count(*) FROM kv_state WHERE key = 'r'") == "0");
  CHECK(ValueOf(*a, "r") == "(none)");

  // One key written twice.
  request.success = {PutOp("r", "1"), KeyOp(TxnOp::Kind::kDelete, "r")};
  refused = a->Txn(request);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsInvalidArgument());

  // A delete-prefix over more keys than one transaction deletes (made in
  // the database directly: this server's memory does not matter here).
  db.Sql("INSERT INTO kv_state (key, value, revision, create_revision, version, lease) "
         "SELECT convert_to('big/' || g, 'UTF8'), 'v', 1, 1, 1, 0 FROM generate_series(1, " +
         std::to_string(core::kMaxTxnDeleteKeys + 1) + ") g");
  request.success = {PutOp("r", "1"), KeyOp(TxnOp::Kind::kDeletePrefix, "big/")};
  refused = a->Txn(request);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsInvalidArgument());
  CHECK(refused.error().message().find("success[1] (delete prefix)") != std::string::npos);
  CHECK(db.Sql("SELECT count(*) FROM kv_state WHERE key >= 'big/' AND key < 'big0'") ==
        std::to_string(core::kMaxTxnDeleteKeys + 1));
  CHECK(db.Sql("SELECT count(*) FROM kv_state WHERE key = 'r'") == "0");
  CHECK(db.Sql("SELECT revision FROM kv_meta") == head);
  // Exactly the most is allowed. B, started now (it loads the big/ keys),
  // applies the 10,001 rows of that one revision together although they
  // are more than one catch-up read takes (10,000 rows).
  db.Sql("DELETE FROM kv_state WHERE key = 'big/1'");
  auto b = OpenStore(db.dsn);
  core::ListOptions big;
  big.prefix = "big/";
  big.limit = 5;
  REQUIRE(b->List(big).items.size() == 5);
  r = TxnOk(*a, request);
  CHECK(r.results[1].deleted == core::kMaxTxnDeleteKeys);
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE revision = " + std::to_string(r.revision)) ==
        std::to_string(core::kMaxTxnDeleteKeys + 1));
  CHECK(Eventually([&] { return b->revision() >= r.revision; }));
  CHECK(b->List(big).items.empty());
  CHECK(ValueOf(*b, "r") == "1");
}

TEST_CASE("PostgreSQL txn: two servers racing compare-and-increment on one counter lose no increment") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  auto b = OpenStore(db.dsn);
  PutOk(*a, "counter", "0");
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    core::KvStore* store = t % 2 == 0 ? static_cast<core::KvStore*>(a.get()) : b.get();
    threads.emplace_back([store, &succeeded] {
      for (int i = 0; i < 25; ++i) {
        // Read through a transaction (the database's state), then write
        // only if the version is still the one read.
        core::TxnRequest read;
        read.success = {KeyOp(TxnOp::Kind::kGet, "counter")};
        auto seen = store->Txn(read);
        if (!seen.has_value() || seen->results.at(0).items.size() != 1) continue;
        const auto& item = seen->results[0].items[0];
        core::TxnRequest cas;
        cas.compare = {NumberIs("counter", TxnCompare::Target::kVersion, item.meta.version)};
        cas.success = {PutOp("counter", std::to_string(std::stoi(item.value) + 1))};
        auto r = store->Txn(cas);
        if (r.has_value() && r->succeeded) ++succeeded;
      }
    });
  }
  // Meanwhile plain puts through both, queued in bursts so that they
  // batch, and the transactions cut their batches.
  threads.emplace_back([&a, &b] {
    for (int round = 0; round < 10; ++round) {
      std::vector<std::promise<core::Result<core::PutOutcome>>> done(10);
      for (int i = 0; i < 10; ++i) {
        core::KvStore& store = i % 2 == 0 ? static_cast<core::KvStore&>(*a) : *b;
        store.PutAsync("other/" + std::to_string(i), std::to_string(round), {}, 0,
                       [&done, i](core::Result<core::PutOutcome> r) { done[i].set_value(std::move(r)); });
      }
      for (auto& d : done) CHECK(d.get_future().get().has_value());
    }
  });
  for (auto& t : threads) t.join();
  CHECK(succeeded.load() > 0);
  CHECK(db.Sql("SELECT convert_from(value, 'UTF8') FROM kv_state WHERE key = 'counter'") ==
        std::to_string(succeeded.load()));
  CHECK(db.Sql("SELECT version FROM kv_state WHERE key = 'counter'") == std::to_string(succeeded.load() + 1));
  // Every revision 1..head taken once, none lost to a rolled-back
  // transaction; the puts all there.
  const uint64_t head = std::stoull(db.Sql("SELECT revision FROM kv_meta"));
  CHECK(head == static_cast<uint64_t>(succeeded.load()) + 1 + 100);
  CHECK(db.Sql("SELECT count(DISTINCT revision) || ',' || max(revision) FROM kv_log") ==
        std::to_string(head) + "," + std::to_string(head));
  for (auto* s : {a.get(), b.get()}) {
    CHECK(Eventually([&] { return s->revision() == head; }));
    CHECK(ValueOf(*s, "counter") == std::to_string(succeeded.load()));
  }
}

TEST_CASE("PostgreSQL txn: a server behind a compaction that kept part of a transaction's revision reloads") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);  // history_retention 0: compacts up to the head
  PgServer b(db.dsn);
  HttpClient hb(b.port());
  PutOk(*a, "c", "1");
  REQUIRE(Eventually([&] { return hb.Get("c").status == 200; }));

  // B stops following while A writes a transaction and compacts part of
  // it away: its delete of c, and its put of x (superseded next); its put
  // of y stays. No revision is missing from kv_log, so only the compacted
  // revision tells B that it must reload.
  ::kill(b.process().pid(), SIGSTOP);
  core::TxnRequest request;
  request.success = {PutOp("x", "1"), PutOp("y", "1"), KeyOp(TxnOp::Kind::kDelete, "c")};
  const uint64_t txn = TxnOk(*a, request).revision;
  PutOk(*a, "x", "2");
  auto stats = a->Compact();
  REQUIRE_MESSAGE(stats.has_value(), stats.error().message());
  CHECK(stats->covered_revision == txn + 1);
  CHECK(db.Sql("SELECT string_agg(revision || ':' || convert_from(key, 'UTF8'), ' ' ORDER BY revision, key) "
               "FROM kv_log") == std::to_string(txn) + ":y " + std::to_string(txn + 1) + ":x");
  ::kill(b.process().pid(), SIGCONT);
  CHECK(Eventually([&] { return hb.Get("x").body == "2"; }));
  CHECK(hb.Get("y").body == "1");
  CHECK(hb.Get("c").status == 404);
}

TEST_CASE("PostgreSQL txn: replay --into copies a transaction to a data dir and back as one revision") {
  MigratedDb db;
  uint64_t revision = 0;
  {
    auto a = OpenStore(db.dsn);
    PutOk(*a, "gone", "1");
    core::TxnRequest request;
    request.success = {PutOp("x", "1"), PutOp("y", "2"), KeyOp(TxnOp::Kind::kDelete, "gone")};
    revision = TxnOk(*a, request).revision;
    REQUIRE(a->Close().ok());
  }
  const std::string rows =
      "SELECT string_agg(revision || ':' || kind || ':' || convert_from(key, 'UTF8'), ' ' ORDER BY revision, key) "
      "FROM kv_log";
  const std::string want = "1:1:gone 2:2:gone 2:1:x 2:1:y";
  REQUIRE(db.Sql(rows) == want);

  // replay --dsn marks a transaction's writes as the file replay does.
  CliResult r = RunCli({"replay", "--dsn", db.dsn});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out == "1 PUT \"gone\" \"1\"\n"
                 "2 DELETE \"gone\" txn=3\n"
                 "2 PUT \"x\" \"1\" txn=3\n"
                 "2 PUT \"y\" \"2\" txn=3\n");

  // Into a data dir: one transaction record, which the file store reads
  // back as the three writes of revision 2.
  TempDir tmp;
  const std::string dir = (tmp / "data").string();
  r = RunCli({"replay", "--dsn", db.dsn, "--into", dir});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  r = RunCli({"replay", "--data-dir", dir, "-o", "json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  int at_txn = 0;
  for (const std::string& line : Lines(r.out)) {
    const auto event = nlohmann::json::parse(line);
    if (event["revision"] != revision) continue;
    ++at_txn;
    CHECK(event["txn_writes"] == 3);
  }
  CHECK(at_txn == 3);

  // And back into a new database: the same rows.
  const std::string copy = db.pg.CreateDatabase();
  MigrateUp(db.pg.Dsn(copy));
  r = RunCli({"replay", "--data-dir", dir, "--into", db.pg.Dsn(copy)});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(db.pg.Psql(copy, rows) == want);
  CHECK(db.pg.Psql(copy, "SELECT revision FROM kv_meta") == std::to_string(revision));
}

// ---- Through POST /v1/txn on two kvctl servers (SPEC §6's body: keys and
// values in base64; the answer {"succeeded","revision","results"}).
namespace {

std::string B64(const std::string& s) { return core::Base64Encode(s); }

nlohmann::json HttpPut(const std::string& key, const std::string& value) {
  return {{"put", {{"key", B64(key)}, {"value", B64(value)}}}};
}

nlohmann::json HttpCompare(const std::string& key, const std::string& target, const nlohmann::json& value) {
  return {{"key", B64(key)}, {"target", target}, {"op", "="}, {"value", value}};
}

HttpResponse PostTxn(HttpClient& http, const nlohmann::json& body) {
  return http.Request("POST", "/v1/txn", body.dump(), {{"Content-Type", "application/json"}});
}

// The watch events (JSON lines) of revision `revision` a GET /v1/watch on
// `port` sends from it, once `want` of them came (or 10 s passed).
std::vector<nlohmann::json> WatchedAt(int port, uint64_t revision, size_t want) {
  RawSocket socket(port);
  REQUIRE(socket.Send("GET /v1/watch?prefix=&from=" + std::to_string(revision) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::vector<nlohmann::json> events;
  socket.ReadUntil(std::chrono::seconds(10), [&](const std::string& received) {
    events.clear();
    for (const std::string& line : Lines(received)) {
      if (!line.starts_with("{\"")) continue;
      auto e = nlohmann::json::parse(line, nullptr, false);
      if (e.is_object() && e.contains("revision") && e["revision"] == revision) events.push_back(e);
    }
    return events.size() >= want;
  });
  return events;
}

}  // namespace

TEST_CASE("PostgreSQL txn over HTTP: a transaction through A is one revision on B, judged against B's writes") {
  MigratedDb db;
  PgServer a(db.dsn), b(db.dsn);
  HttpClient ha(a.port()), hb(b.port());
  // Written through B; A's transaction compares against it at once.
  REQUIRE(hb.Put("x", "1").status == 201);
  nlohmann::json txn = {{"compare", {HttpCompare("x", "value", B64("1")), HttpCompare("y", "version", 0)}},
                        {"success", {HttpPut("x", "2"), HttpPut("y", "y1")}},
                        {"failure", {{{"get", {{"key", B64("x")}}}}}}};
  HttpResponse r = PostTxn(ha, txn);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  nlohmann::json answer = r.Json();
  CHECK(answer["succeeded"] == true);
  const uint64_t revision = answer["revision"].get<uint64_t>();
  CHECK(revision == 2);
  CHECK(answer["results"].size() == 2);
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE revision = 2") == "2");

  // B shows both keys at that revision, and its watch both events.
  CHECK(Eventually([&] { return hb.Get("y").status == 200; }));
  CHECK(hb.Get("x").body == "2");
  CHECK(Snapshot(hb) == Snapshot(ha));
  CHECK(Snapshot(hb).at("x").revision == revision);
  CHECK(Snapshot(hb).at("y").revision == revision);
  const auto events = WatchedAt(b.port(), revision, 2);
  REQUIRE(events.size() == 2);
  CHECK(events[0]["key"] == "x");
  CHECK(events[1]["key"] == "y");

  // The same transaction again: x is no longer 1, the failure branch runs
  // (a get: nothing written, no revision).
  r = PostTxn(ha, txn);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  answer = r.Json();
  CHECK(answer["succeeded"] == false);
  CHECK(answer["revision"] == revision);
  CHECK(db.Sql("SELECT revision FROM kv_meta") == std::to_string(revision));
  // A put of the value a key holds changes nothing either.
  r = PostTxn(hb, {{"success", {HttpPut("x", "2")}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.Json()["revision"] == revision);
  CHECK(db.Sql("SELECT count(*) FROM kv_log") == "3");
}

TEST_CASE("PostgreSQL txn over HTTP: threads on two servers racing compare-and-increment lose no increment") {
  MigratedDb db;
  PgServer a(db.dsn), b(db.dsn);
  {
    HttpClient http(a.port());
    REQUIRE(http.Put("counter", "0").status == 201);
  }
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    const int port = t % 2 == 0 ? a.port() : b.port();
    threads.emplace_back([port, &succeeded] {
      HttpClient http(port);
      for (int i = 0; i < 20; ++i) {
        // The current value and version, as the database has them.
        HttpResponse read = PostTxn(http, {{"success", {{{"get", {{"key", B64("counter")}}}}}}});
        if (read.status != 200) continue;
        const nlohmann::json item = read.Json()["results"][0]["get"]["items"][0];
        const auto value = core::Base64Decode(item["value"].get<std::string>());
        if (!value.has_value()) continue;
        HttpResponse cas = PostTxn(
            http, {{"compare", {HttpCompare("counter", "version", item["version"])}},
                   {"success", {HttpPut("counter", std::to_string(std::stoi(*value) + 1))}}});
        if (cas.status == 200 && cas.Json()["succeeded"] == true) ++succeeded;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(succeeded.load() > 0);
  HttpClient ha(a.port()), hb(b.port());
  // Each server's memory follows the database: the last increment may be the other's.
  CHECK(Eventually([&] { return hb.Get("counter").body == std::to_string(succeeded.load()); }));
  CHECK(Eventually([&] { return ha.Get("counter").body == std::to_string(succeeded.load()); }));
  CHECK(db.Sql("SELECT revision FROM kv_meta") == std::to_string(succeeded.load() + 1));
}

TEST_CASE("PostgreSQL txn: a compare over a range is judged by every key in it, and an empty range as a missing key") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  testing::txn_shapes::CheckRangeCompares(*a);
}

TEST_CASE("PostgreSQL txn: any range is read and deleted in a transaction, which sees its own writes") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  testing::txn_shapes::CheckRangeOps(*a);
  // One kv_log row per key the deletes took, at the transaction's revision.
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE kind = 2") == "3");
}

TEST_CASE("PostgreSQL txn: nested transactions run at one revision, every compare judged before any op") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  testing::txn_shapes::CheckNested(*a);
}

TEST_CASE("PostgreSQL txn: a put keeps a key's value or lease, and refuses a key that does not exist") {
  MigratedDb db;
  auto a = OpenStore(db.dsn);
  testing::txn_shapes::CheckKeepValueAndLease(*a);
}

}  // namespace kvctl::e2e
