// kvctl migrate against a real PostgreSQL: golang-migrate's commands and
// schema_migrations semantics, transactional steps, the advisory lock, and
// serve refusing a schema it does not expect.
#include <doctest/doctest.h>

#include <thread>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct MigrateDb {
  PgCluster& pg = PgCluster::Shared();
  std::string db = pg.CreateDatabase();
  std::string dsn = pg.Dsn(db);

  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "migrate");
    args.push_back("--dsn");
    args.push_back(dsn);
    return RunCli(args);
  }
  // schema_migrations as "version|dirty" lines ("" when empty).
  std::string Table() {
    if (!TableExists("schema_migrations")) return "";
    return pg.Psql(db, "SELECT version, dirty FROM schema_migrations");
  }
  bool TableExists(const std::string& name) {
    return pg.Psql(db, "SELECT to_regclass('" + name + "') IS NOT NULL") == "t";
  }
};

}  // namespace

TEST_CASE("migrate up, down, goto, force and version follow golang-migrate") {
  MigrateDb m;
  CliResult r = m.Run({"version"});
  CHECK(r.exit_code == 1);
  CHECK(Has(r.err, "no migration"));

  r = m.Run({"up", "1"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.starts_with("1/u create state and change log ("));
  CHECK(r.out.find('\n') == r.out.size() - 1);
  CHECK(m.Run({"version"}).out == "1\n");
  CHECK(m.Table() == "1|f");
  CHECK(m.TableExists("kv_state"));

  r = m.Run({"up"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "2/u compaction watermark and per-key log index"));
  CHECK(m.Run({"version"}).out == "2\n");
  r = m.Run({"up"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "no change\n");

  r = m.Run({"down", "1"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "2/d compaction watermark"));
  CHECK(m.Run({"version"}).out == "1\n");

  r = m.Run({"goto", "2"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "2/u"));
  r = m.Run({"goto", "1"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "2/d"));
  r = m.Run({"goto", "7"});
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "no migration 7"));

  SUBCASE("down without N or --all is refused when no one can confirm, and changes nothing") {
    r = m.Run({"down"});
    CHECK(r.exit_code == 2);
    CHECK(Has(r.err, "down --all"));
    CHECK(IsOneErrorLine(r.err));
    CHECK(m.Run({"version"}).out == "1\n");
  }
  SUBCASE("down --all removes every table; version then reports none") {
    r = m.Run({"down", "--all"});
    REQUIRE(r.exit_code == 0);
    CHECK(Has(r.out, "1/d create state and change log"));
    CHECK_FALSE(m.TableExists("kv_state"));
    CHECK_FALSE(m.TableExists("kv_log"));
    CHECK(m.Table() == "");
    CHECK(m.Run({"version"}).exit_code == 1);
  }
  SUBCASE("force records a version without running anything") {
    r = m.Run({"force", "2"});
    REQUIRE(r.exit_code == 0);
    CHECK(m.Table() == "2|f");
    CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                          "'compacted_revision'") == "0");
    r = m.Run({"force", "-1"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(m.Table() == "");
  }
}

TEST_CASE("a failed migration step rolls back whole and leaves nothing dirty") {
  MigrateDb m;
  // Step 1 creates kv_log; a table of that name already there makes it fail
  // after it created kv_meta and kv_state.
  m.pg.Psql(m.db, "CREATE TABLE kv_log (x int)");
  CliResult r = m.Run({"up"});
  CHECK(r.exit_code != 0);
  CHECK(Has(r.err, "kv_log"));
  CHECK(IsOneErrorLine(r.err));
  CHECK_FALSE(m.TableExists("kv_meta"));
  CHECK_FALSE(m.TableExists("kv_state"));
  CHECK(m.Table() == "");
  m.pg.Psql(m.db, "DROP TABLE kv_log");
  CHECK(m.Run({"up"}).exit_code == 0);
  CHECK(m.Table() == "2|f");
}

TEST_CASE("a dirty version stops migrate until force, as golang-migrate does") {
  MigrateDb m;
  REQUIRE(m.Run({"up", "1"}).exit_code == 0);
  m.pg.Psql(m.db, "UPDATE schema_migrations SET dirty = true");
  CliResult r = m.Run({"up"});
  CHECK(r.exit_code == 4);
  CHECK(Has(r.err, "dirty database version 1"));
  CHECK(Has(r.err, "force"));
  CHECK(m.Run({"version"}).out == "1 (dirty)\n");
  REQUIRE(m.Run({"force", "1"}).exit_code == 0);
  CHECK(m.Run({"up"}).exit_code == 0);
  CHECK(m.Table() == "2|f");
}

TEST_CASE("migrate waits for another run's advisory lock and gives up with a clear message") {
  MigrateDb m;
  // Hold kvctl migrate's advisory lock (per database) from another session.
  std::thread holder([&] {
    m.pg.Psql(m.db, "SELECT pg_advisory_lock(7743485960996612455); SELECT pg_sleep(4)");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  CliResult r = m.Run({"up", "--postgres-migrate-lock-timeout", "1s"});
  holder.join();
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "another kvctl migrate is running"));
  CHECK(m.Table() == "");

  // Two runs at once: each step is applied exactly once, both succeed.
  CliResult a, b;
  std::thread ta([&] { a = m.Run({"up"}); });
  std::thread tb([&] { b = m.Run({"up"}); });
  ta.join();
  tb.join();
  CHECK_MESSAGE(a.exit_code == 0, a.err);
  CHECK_MESSAGE(b.exit_code == 0, b.err);
  const std::string out = a.out + b.out;
  CHECK(out.find("1/u") != std::string::npos);
  CHECK(out.find("1/u") == out.rfind("1/u"));
  CHECK(out.find("2/u") == out.rfind("2/u"));
  CHECK(m.Table() == "2|f");
}

TEST_CASE("serve refuses a schema older or newer than it needs and names the migrate command") {
  MigrateDb m;
  const int port = FreePort();
  auto serve = [&] {
    TempDir scratch;
    ServerProcess p(scratch.path(),
                    ServerOptions{"", port, {"--backend", "postgres", "--dsn", m.dsn}, {}});
    auto code = p.WaitExit();
    REQUIRE(code.has_value());
    return std::pair(*code, p.Stderr());
  };
  auto [code, err] = serve();
  CHECK(code == 2);
  CHECK(Has(err, "kvctl migrate up"));
  CHECK(Has(err, "version none"));

  REQUIRE(m.Run({"up", "1"}).exit_code == 0);
  std::tie(code, err) = serve();
  CHECK(code == 2);
  CHECK(Has(err, "at version 1 but this kvctl needs version 2"));

  REQUIRE(m.Run({"force", "3"}).exit_code == 0);
  std::tie(code, err) = serve();
  CHECK(code == 2);
  CHECK(Has(err, "newer"));
  CHECK(Has(err, "kvctl migrate goto 2"));
  CliResult r = m.Run({"up"});
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "version 3, which this kvctl does not know"));
}

TEST_CASE("serve and migrate say what is wrong with the DSN or the database") {
  CliResult r = RunCli({"migrate", "version", "--dsn", "host=127.0.0.1 port=notaport =x"});
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "postgres.dsn is not a valid PostgreSQL connection string"));
  r = RunCli({"migrate", "version"});
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "--dsn"));
  r = RunCli({"migrate", "up", "--dsn",
              "host=127.0.0.1 port=" + std::to_string(FreePort()) + " user=postgres"});
  CHECK(r.exit_code == 3);
  CHECK(Has(r.err, "cannot connect to PostgreSQL"));
}

}  // namespace kvctl::e2e
