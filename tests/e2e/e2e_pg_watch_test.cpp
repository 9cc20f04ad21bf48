// Key metadata and watches on the PostgreSQL backend, at the store level:
// PgStore instances in this process stand for servers sharing one real,
// throwaway database (the HTTP routes are tested on the file backend; these
// test what only PostgreSQL does: metadata decided by the database, kv_log
// as the watchers' history, retention in compaction, other servers'
// changes).
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/watch.h"
#include "lib/pg/pg_store.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using namespace std::chrono_literals;
using core::KeyMeta;

struct Db {
  PgCluster& pg = PgCluster::Shared();
  std::string name = pg.CreateDatabase();
  std::string dsn = pg.Dsn(name);
  Db() { MigrateUp(dsn); }
  std::string Sql(const std::string& sql) { return pg.Psql(name, sql); }
};

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

}  // namespace

TEST_CASE("PostgreSQL: the database decides each put's metadata, and other servers and a reload apply it as written") {
  Db db;
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
    a->PutAsync("batch", "v" + std::to_string(i), {},
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
}

}  // namespace kvctl::e2e
