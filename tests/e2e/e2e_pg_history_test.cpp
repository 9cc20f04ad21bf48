// Compaction and replay on the PostgreSQL backend: compact prunes kv_log
// safely (a server that falls behind reloads), replay --dsn reads the
// history, and replay --into copies a data dir into a database and back.
#include <doctest/doctest.h>

#include <signal.h>

#include <thread>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using namespace std::chrono_literals;

}  // namespace

TEST_CASE("compact on PostgreSQL keeps the live keys, and a server that fell behind reloads") {
  MigratedDb db;
  PgServer a(db.dsn, {"--storage-history-retention", "0"}), b(db.dsn);
  HttpClient ha(a.port()), hb(b.port());
  for (int i = 1; i <= 10; ++i) REQUIRE(ha.Put("k" + std::to_string(i), "v1").status == 201);
  for (int i = 1; i <= 5; ++i) REQUIRE(ha.Put("k" + std::to_string(i), "v2").status == 200);
  REQUIRE(ha.Delete("k6").status == 204);  // revision 16
  CHECK(Eventually([&] { return SameState({a.port(), b.port()}); }));

  CliResult events = RunCli({"replay", "--dsn", db.dsn});
  REQUIRE_MESSAGE(events.exit_code == 0, events.err);
  CHECK(Lines(events.out).size() == 16);
  CHECK(Lines(events.out).back() == "16 DELETE \"k6\"");

  // B stops following (SIGSTOP) while A writes past it and compacts away
  // what B has not applied yet.
  ::kill(b.process().pid(), SIGSTOP);
  REQUIRE(ha.Put("late", "1").status == 201);    // 17
  REQUIRE(ha.Put("late", "2").status == 200);    // 18: supersedes 17
  CliResult compacted = RunCli({"compact", "--addr", a.addr(), "-o", "json"});
  REQUIRE_MESSAGE(compacted.exit_code == 0, compacted.err);
  auto stats = nlohmann::json::parse(compacted.out);
  CHECK(stats["compacted"] == true);
  CHECK(stats["covered_revision"] == 18);
  // Superseded: k1..k5's first puts, k6's put and its delete, late's first put.
  CHECK(db.Sql("SELECT count(*) FROM kv_log") == "10");
  CHECK(db.Sql("SELECT compacted_revision FROM kv_meta") == "18");
  ::kill(b.process().pid(), SIGCONT);
  CHECK(Eventually([&] { return SameState({a.port(), b.port()}); }));
  CHECK(hb.Get("late").body == "2");
  CHECK(hb.Get("k6").status == 404);
  CHECK(hb.Request("GET", "/metrics").body.find("kvctl_pg_reloads_total 2") != std::string::npos);

  // Writes go on after the compaction and everyone follows.
  REQUIRE(hb.Put("after", "x").status == 201);  // 19
  PgServer c(db.dsn);
  HttpClient hc(c.port());
  CHECK(Eventually([&] { return SameState({a.port(), c.port()}); }));

  // replay reads the compacted history as a snapshot plus the log.
  events = RunCli({"replay", "--dsn", db.dsn, "-o", "json"});
  REQUIRE_MESSAGE(events.exit_code == 0, events.err);
  auto lines = Lines(events.out);
  REQUIRE(lines.size() == 11);
  CHECK(nlohmann::json::parse(lines.front())["snapshot"] == true);
  CHECK(nlohmann::json::parse(lines.back())["snapshot"] == false);
  CHECK(nlohmann::json::parse(lines.back())["revision"] == 19);
  CliResult state = RunCli({"replay", "--dsn", db.dsn, "--state"});
  REQUIRE(state.exit_code == 0);
  CHECK(Lines(state.out).size() == Snapshot(ha).size());
  state = RunCli({"replay", "--dsn", db.dsn, "--state", "--to", "5"});
  CHECK(state.exit_code == 2);
  CHECK(state.err.find("compacted") != std::string::npos);
  CliResult check = RunCli({"replay", "--dsn", db.dsn, "--check"});
  CHECK(check.exit_code == 0);
  CHECK(check.out.find("last revision 19") != std::string::npos);
}

TEST_CASE("replay --into copies a data dir into PostgreSQL and back, keeping every revision") {
  // A history in a data dir: puts, an overwrite, a delete, binary bytes.
  KvServer file;
  HttpClient hf(file.port());
  const std::string binary("b\0\xff\n", 4);
  REQUIRE(hf.Put("a", "1").status == 201);
  REQUIRE(hf.Put(binary, binary).status == 201);
  REQUIRE(hf.Put("a", "2").status == 200);
  REQUIRE(hf.Put("gone", "x").status == 201);
  REQUIRE(hf.Delete("gone").status == 204);
  const auto file_state = Snapshot(hf);
  hf.Close();
  REQUIRE(file.Stop() == 0);

  MigratedDb db;
  CliResult r = RunCli({"replay", "--data-dir", file.data_dir().string(), "--into", db.dsn});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.find("copied 5 records (up to revision 5)") != std::string::npos);
  CHECK(r.out.find("password") == std::string::npos);
  CHECK(db.Sql("SELECT revision FROM kv_meta") == "5");

  PgServer pg(db.dsn);
  HttpClient hp(pg.port());
  CHECK(Snapshot(hp) == file_state);
  REQUIRE(hp.Put("a", "3").status == 200);
  CHECK(hp.Get("a").EtagRevision() == 6);

  // A database that already has history is refused, and left alone.
  r = RunCli({"replay", "--data-dir", file.data_dir().string(), "--into", db.dsn});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("already holds a history") != std::string::npos);
  CHECK(db.Sql("SELECT revision FROM kv_meta") == "6");

  // And back: from the database into a new data dir a file server runs on.
  TempDir back;
  const std::string back_dir = (back / "data").string();
  r = RunCli({"replay", "--dsn", db.dsn, "--into", back_dir});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const auto pg_state = Snapshot(hp);
  const int port = FreePort();
  ServerProcess served(back.path(), ServerOptions{back_dir, port, {}, {}});
  served.WaitReady();
  HttpClient hb(port);
  CHECK(Snapshot(hb) == pg_state);
  CliResult events = RunCli({"replay", "--data-dir", back_dir});
  REQUIRE(events.exit_code == 0);
  CHECK(Lines(events.out).size() == 6);
  hb.Close();
  CHECK(served.Terminate() == 0);
}

}  // namespace kvctl::e2e
