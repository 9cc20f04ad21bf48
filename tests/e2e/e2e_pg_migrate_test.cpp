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
  CHECK(Has(r.out, "3/u key metadata"));
  CHECK(Has(r.out, "4/u transactions: several changes at one revision"));
  CHECK(Has(r.out, "5/u leases"));
  CHECK(Has(r.out, "6/u one writer: one-statement batches and the writer's address"));
  CHECK(m.Run({"version"}).out == "6\n");
  r = m.Run({"up"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "no change\n");

  r = m.Run({"down", "5"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "6/d one writer"));
  CHECK(Has(r.out, "5/d leases"));
  CHECK(Has(r.out, "4/d transactions"));
  CHECK(Has(r.out, "3/d key metadata"));
  CHECK(Has(r.out, "2/d compaction watermark"));
  CHECK(m.Run({"version"}).out == "1\n");

  r = m.Run({"goto", "2"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "2/u"));
  r = m.Run({"goto", "1"});
  REQUIRE(r.exit_code == 0);
  CHECK(Has(r.out, "2/d"));
  r = m.Run({"goto", "8"});
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "no migration 8"));

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

TEST_CASE("migration 3 backfills key metadata from kv_log and its compaction, and goes down and up again") {
  MigrateDb m;
  REQUIRE(m.Run({"up", "2"}).exit_code == 0);
  // A history compacted at 4 (what stays up to 4 is a snapshot: a@2 and
  // b@4, each key's last put), then complete from 5 to 11. d's row in
  // kv_state has no kv_log row (none to derive from).
  m.pg.Psql(m.db, R"sql(
UPDATE kv_meta SET revision = 11, compacted_revision = 4;
INSERT INTO kv_log (revision, kind, key, value) VALUES
  (2, 1, 'a', 'a2'), (4, 1, 'b', 'b4'), (5, 1, 'a', 'a5'), (6, 1, 'c', 'c6'), (7, 2, 'c', NULL),
  (8, 1, 'c', 'c8'), (9, 1, 'c', 'c9'), (10, 1, 'b', 'b10'), (11, 2, 'a', NULL);
INSERT INTO kv_state (key, value, revision) VALUES ('b', 'b10', 10), ('c', 'c9', 9), ('d', 'd3', 3);
)sql");
  const std::string log_meta =
      "SELECT string_agg(revision || ':' || create_revision || ',' || version || ',' || lease, ' ' "
      "ORDER BY revision) FROM kv_log";
  const std::string state_meta =
      "SELECT string_agg(convert_from(key, 'UTF8') || '@' || revision || ':' || create_revision || ',' "
      "|| version || ',' || lease, ' ' ORDER BY key) FROM kv_state";
  const std::string want_log = "2:2,1,0 4:4,1,0 5:2,2,0 6:6,1,0 7:0,0,0 8:8,1,0 9:8,2,0 10:4,2,0 11:0,0,0";
  const std::string want_state = "b@10:4,2,0 c@9:8,2,0 d@3:3,1,0";

  CliResult r = m.Run({"up", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.starts_with("3/u key metadata"));
  CHECK(m.pg.Psql(m.db, log_meta) == want_log);
  CHECK(m.pg.Psql(m.db, state_meta) == want_state);
  // Filled, so NOT NULL from now on.
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM information_schema.columns WHERE table_name IN "
                        "('kv_state', 'kv_log') AND column_name IN ('create_revision', 'version', "
                        "'lease') AND is_nullable = 'NO'") == "6");

  r = m.Run({"down", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.starts_with("3/d key metadata"));
  CHECK(m.Run({"version"}).out == "2\n");
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM information_schema.columns WHERE table_name IN "
                        "('kv_state', 'kv_log') AND column_name IN ('create_revision', 'version', "
                        "'lease')") == "0");
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM kv_log") == "9");
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM kv_state") == "3");

  REQUIRE(m.Run({"up", "1"}).exit_code == 0);
  CHECK(m.pg.Psql(m.db, log_meta) == want_log);
  CHECK(m.pg.Psql(m.db, state_meta) == want_state);
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
  CHECK(m.Table() == "6|f");
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
  CHECK(m.Table() == "6|f");
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
  CHECK(m.Table() == "6|f");
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
  CHECK(Has(err, "at version 1 but this kvctl needs version 6"));

  REQUIRE(m.Run({"force", "7"}).exit_code == 0);
  std::tie(code, err) = serve();
  CHECK(code == 2);
  CHECK(Has(err, "newer"));
  CHECK(Has(err, "kvctl migrate goto 6"));
  CliResult r = m.Run({"up"});
  CHECK(r.exit_code == 2);
  CHECK(Has(r.err, "version 7, which this kvctl does not know"));
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

TEST_CASE("migration 4 keeps several changes at one revision and refuses to go down while any revision has them") {
  MigrateDb m;
  REQUIRE(m.Run({"up", "3"}).exit_code == 0);
  // Version 3: one change per revision.
  m.pg.Psql(m.db, R"sql(
UPDATE kv_meta SET revision = 1;
INSERT INTO kv_log (revision, kind, key, value, create_revision, version, lease) VALUES (1, 1, 'a', 'x', 1, 1, 0);
)sql");
  CHECK(m.pg.Psql(m.db, "WITH i AS (INSERT INTO kv_log (revision, kind, key, value, create_revision, "
                        "version, lease) VALUES (1, 1, 'b', 'y', 1, 1, 0) ON CONFLICT DO NOTHING RETURNING 1) "
                        "SELECT count(*) FROM i") == "0");

  CliResult r = m.Run({"up", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.starts_with("4/u transactions: several changes at one revision"));
  // A transaction's two writes at revision 2; one key twice at a revision
  // is still refused.
  m.pg.Psql(m.db, R"sql(
UPDATE kv_meta SET revision = 2;
INSERT INTO kv_log (revision, kind, key, value, create_revision, version, lease) VALUES
  (2, 1, 'a', 'x2', 1, 2, 0), (2, 1, 'b', 'y', 2, 1, 0);
)sql");
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM kv_log WHERE revision = 2") == "2");
  CHECK(m.pg.Psql(m.db, "WITH i AS (INSERT INTO kv_log (revision, kind, key, value, create_revision, "
                        "version, lease) VALUES (2, 1, 'a', 'z', 1, 3, 0) ON CONFLICT DO NOTHING RETURNING 1) "
                        "SELECT count(*) FROM i") == "0");

  // Down would lose one of revision 2's changes: refused, nothing changed.
  r = m.Run({"down", "1"});
  CHECK(r.exit_code != 0);
  CHECK(Has(r.err, "2 changes at revision 2"));
  CHECK(Has(r.err, "refused"));
  CHECK(IsOneErrorLine(r.err));
  CHECK(m.Table() == "4|f");
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM kv_log") == "3");

  // With one change per revision again, down restores revision as the key.
  m.pg.Psql(m.db, "DELETE FROM kv_log WHERE revision = 2 AND key = 'b'");
  r = m.Run({"down", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.starts_with("4/d transactions"));
  CHECK(m.Table() == "3|f");
  CHECK(m.pg.Psql(m.db, "WITH i AS (INSERT INTO kv_log (revision, kind, key, value, create_revision, "
                        "version, lease) VALUES (2, 1, 'b', 'y', 2, 1, 0) ON CONFLICT DO NOTHING RETURNING 1) "
                        "SELECT count(*) FROM i") == "0");
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM kv_log") == "2");
}

TEST_CASE("migration 5 adds the lease table and refuses to go down while leases are alive or in kv_log") {
  MigrateDb m;
  REQUIRE(m.Run({"up"}).exit_code == 0);
  CHECK(m.Table() == "6|f");
  // Migration 6 only adds the batch write function and kv_writer; down drops them.
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM pg_proc WHERE proname = 'kv_write_batch'") == "1");
  CHECK(m.TableExists("kv_writer"));
  REQUIRE(m.Run({"down", "1"}).exit_code == 0);
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM pg_proc WHERE proname = 'kv_write_batch'") == "0");
  CHECK_FALSE(m.TableExists("kv_writer"));
  CHECK(m.Table() == "5|f");
  // A lease granted at revision 1 with a key on it, as a server writes them.
  m.pg.Psql(m.db, R"sql(
UPDATE kv_meta SET revision = 2;
INSERT INTO kv_lease (id, ttl, granted_revision, deadline) VALUES (42, 30, 1, now() + interval '30 seconds');
INSERT INTO kv_log (revision, kind, key, create_revision, version, lease, ttl) VALUES (1, 4, '', 0, 0, 42, 30);
INSERT INTO kv_log (revision, kind, key, value, create_revision, version, lease) VALUES (2, 1, 'a', 'x', 2, 1, 42);
)sql");
  // Kinds other than a put, a delete and a lease's grant or end are refused.
  CHECK(m.pg.Psql(m.db, "SELECT count(*) FROM pg_constraint WHERE conname = 'kv_log_kind_check' AND "
                        "pg_get_constraintdef(oid) LIKE '%1, 2, 4, 5, 6%'") == "1");

  CliResult r = m.Run({"down", "1"});
  CHECK(r.exit_code != 0);
  CHECK(Has(r.err, "1 leases are alive and kv_log holds 1 lease records"));
  CHECK(Has(r.err, "refused"));
  CHECK(IsOneErrorLine(r.err));
  CHECK(m.Table() == "5|f");
  CHECK(m.TableExists("kv_lease"));

  // Once the lease and its records are gone, down drops the table, and up
  // brings it back.
  m.pg.Psql(m.db, "DELETE FROM kv_lease; DELETE FROM kv_log WHERE kind IN (4, 5, 6)");
  r = m.Run({"down", "1"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out.starts_with("5/d leases"));
  CHECK(m.Table() == "4|f");
  CHECK_FALSE(m.TableExists("kv_lease"));
  r = m.Run({"up"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(m.TableExists("kv_lease"));
}

}  // namespace kvctl::e2e
