// kvctl bench --embedded on the PostgreSQL backend: the in-process server
// uses the database given, which must be migrated first.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {

TEST_CASE("kvctl bench --embedded --backend postgres loads the migrated database it is given") {
  PgCluster& pg = PgCluster::Shared();
  const std::string db = pg.CreateDatabase();
  const std::string dsn = pg.Dsn(db);
  const std::vector<std::string> bench = {"bench", "--embedded", "--backend", "postgres", "--dsn", dsn};
  auto with = [&bench](std::vector<std::string> more) {
    more.insert(more.begin(), bench.begin(), bench.end());
    return more;
  };

  // Not migrated: refused before any load, naming the command to run.
  const CliResult bare = RunCli(with({"--requests", "10"}));
  INFO("stderr: " << bare.err);
  CHECK(bare.exit_code == 2);
  CHECK(IsOneErrorLine(bare.err));
  CHECK(bare.err.find("--embedded") != std::string::npos);
  CHECK(bare.err.find("kvctl migrate up") != std::string::npos);
  CHECK(bare.out.empty());
  CHECK(pg.Psql(db, "SELECT to_regclass('kv_state') IS NULL") == "t");

  MigrateUp(dsn);
  const CliResult r = RunCli(with({"--requests", "400", "--clients", "8", "--keys", "50", "--read-ratio", "0.5",
                                   "-o", "json"}));
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << r.out.substr(0, 300));
  CHECK(j["ok"] == 400);
  CHECK(j["errors"]["total"] == 0);
  const std::string target = j["target"];
  CHECK(target.find("PostgreSQL") != std::string::npos);
  CHECK(target.find("dbname=" + db) != std::string::npos);
  // Every PUT (the fill's 50, then the run's) was committed in the database.
  const uint64_t writes = j["writes"]["count"];
  CHECK(writes > 100);
  CHECK(pg.Psql(db, "SELECT count(*) FROM kv_state") == "50");
  CHECK(pg.Psql(db, "SELECT revision FROM kv_meta WHERE id = 1") == std::to_string(50 + writes));
}

}  // namespace kvctl::e2e
