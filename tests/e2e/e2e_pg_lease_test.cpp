// Leases on the PostgreSQL backend (SPEC §6 "PostgreSQL backend"), with two
// real servers on one real database: a lease granted through one server is
// kept alive, shown, revoked and expired through the other; an end deletes
// its keys at one revision everywhere; exactly one server expires a lease,
// and the duty passes on when that server stops; a lease outlives an outage
// of every server; `kvctl lock` serializes commands run through both; and
// `replay` copies lease records between a data dir and the database.
//
// Timings are generous (a shared, noisy machine) but each bound can fail.
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"
#include "tests/e2e/lease_harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

std::string LeasePath(uint64_t id) { return "/v1/lease/" + std::to_string(id); }

// Whether one, and only one, of the servers holds the expiry duty.
bool OneExpirer(HttpClient& a, HttpClient& b) {
  return Metric(a, "kvctl_pg_lease_expirer") + Metric(b, "kvctl_pg_lease_expirer") == 1;
}

TEST_CASE("PostgreSQL leases: granted through A, kept alive, shown and revoked through B, keys gone at one revision") {
  MigratedDb db;
  PgServer a(db.dsn), b(db.dsn);
  HttpClient ha(a.port()), hb(b.port());
  const uint64_t id = Grant(ha, 2);
  REQUIRE(PutWithLease(hb, "l/a", "1", id).status == 201);
  REQUIRE(PutWithLease(ha, "l/b", "2", id).status == 201);
  REQUIRE(ha.Put("l/other", "3").status == 201);
  CHECK(db.Sql("SELECT lease FROM kv_state WHERE key = 'l/a'") == std::to_string(id));

  // Kept alive through B for twice its TTL: alive on both.
  const auto start = Clock::now();
  while (Clock::now() - start < seconds(4)) {
    const HttpResponse renewed = hb.Request("POST", LeasePath(id) + "/keepalive");
    REQUIRE(renewed.status == 200);
    CHECK(renewed.Json()["ttl"] == 2);
    std::this_thread::sleep_for(milliseconds(400));
  }
  CHECK(ha.Get("l/a").status == 200);
  CHECK(ha.Get("l/b").status == 200);
  const HttpResponse shown = ha.Request("GET", LeasePath(id));
  REQUIRE(shown.status == 200);
  CHECK(shown.Json()["ttl"] == 2);
  CHECK(shown.Json()["remaining"].get<int64_t>() >= 1);
  CHECK(shown.Json()["keys"] == json::array({json{{"key", "l/a"}}, json{{"key", "l/b"}}}));
  const HttpResponse listed = hb.Request("GET", "/v1/lease");
  REQUIRE(listed.status == 200);
  REQUIRE(listed.Json()["leases"].size() == 1);
  CHECK(listed.Json()["leases"][0]["id"] == id);
  CHECK(Metric(hb, "kvctl_lease_keepalives_total") >= 8);
  CHECK(Metric(ha, "kvctl_leases") == 1);

  // Revoked through B: one revision holding the end and both deletes.
  const HttpResponse revoked = hb.Request("DELETE", LeasePath(id));
  REQUIRE_MESSAGE(revoked.status == 200, revoked.body);
  const uint64_t revision = revoked.Json()["revision"].get<uint64_t>();
  CHECK(db.Sql("SELECT string_agg(kind || ':' || convert_from(key, 'UTF8'), ' ' ORDER BY key) FROM kv_log "
               "WHERE revision = " + std::to_string(revision)) == "5: 2:l/a 2:l/b");
  CHECK(db.Sql("SELECT count(*) FROM kv_lease") == "0");
  CHECK(Eventually([&] { return ha.Get("l/a").status == 404 && ha.Get("l/b").status == 404; }));
  CHECK(hb.Get("l/a").status == 404);
  CHECK(ha.Get("l/other").status == 200);
  const std::vector<json> events = WatchEvents(a.port(), "prefix=l%2F&from=" + std::to_string(revision), 2, seconds(5));
  REQUIRE(events.size() == 2);
  for (const json& e : events) {
    CHECK(e["op"] == "delete");
    CHECK(e["revision"] == revision);
  }
  CHECK(Eventually([&] { return Metric(ha, "kvctl_leases") == 0; }));

  // Gone everywhere: 404 no_such_lease for a show, a keepalive, a revoke,
  // a PUT and a transaction's put naming it.
  CHECK(ha.Request("GET", LeasePath(id)).status == 404);
  CHECK(ErrorCode(ha.Request("POST", LeasePath(id) + "/keepalive")) == "no_such_lease");
  CHECK(ErrorCode(hb.Request("DELETE", LeasePath(id))) == "no_such_lease");
  const HttpResponse put = PutWithLease(ha, "l/c", "v", id);
  CHECK(put.status == 404);
  CHECK(ErrorCode(put) == "no_such_lease");
  const json txn = {{"success", json::array({json{{"put", {{"key", "bC9j"}, {"value", "dg=="}, {"lease", id}}}}})}};
  const HttpResponse refused = ha.Request("POST", "/v1/txn", txn.dump());
  CHECK(refused.status == 404);
  CHECK(ha.Get("l/c").status == 404);
  CHECK(ErrorCode(ha.Request("POST", "/v1/lease", "{\"ttl\":0}")) == "bad_ttl");
}

TEST_CASE("PostgreSQL leases: an id chosen through etcd's API is granted once across servers, and again after its revoke") {
  MigratedDb db;
  const int etcd_a = FreePort(), etcd_b = FreePort();
  PgServer a(db.dsn, {"--etcd-listen", Addr(etcd_a)}), b(db.dsn, {"--etcd-listen", Addr(etcd_b)});
  HttpClient ea(etcd_a), eb(etcd_b), hb(b.port());
  const std::string grant = R"({"TTL":60,"ID":"4611686018427387911"})";  // 2^62 + 7
  const HttpResponse granted = ea.Request("POST", "/v3/lease/grant", grant);
  REQUIRE(granted.status == 200);
  CHECK(granted.Json()["ID"] == "4611686018427387911");
  const HttpResponse twice = eb.Request("POST", "/v3/lease/grant", grant);
  CHECK(twice.status == 412);
  CHECK(twice.Json()["code"] == 9);
  CHECK(twice.Json()["error"] == "etcdserver: lease already exists");
  CHECK(db.Sql("SELECT count(*) FROM kv_lease") == "1");
  // Seen by the other server's own API, and usable there.
  CHECK(hb.Request("GET", LeasePath(4611686018427387911ull)).Json()["ttl"] == 60);
  REQUIRE(PutWithLease(hb, "chosen", "1", 4611686018427387911ull).status == 201);
  REQUIRE(eb.Request("POST", "/v3/lease/revoke", R"({"ID":"4611686018427387911"})").status == 200);
  CHECK(hb.Get("chosen").status == 404);
  CHECK(ea.Request("POST", "/v3/lease/grant", grant).status == 200);
}

TEST_CASE("PostgreSQL leases: exactly one server expires a lease, and the duty passes on when it stops") {
  MigratedDb db;
  std::optional<PgServer> a(std::in_place, db.dsn), b(std::in_place, db.dsn);
  std::optional<HttpClient> ha(std::in_place, a->port()), hb(std::in_place, b->port());
  REQUIRE(Eventually([&] { return OneExpirer(*ha, *hb); }));

  const uint64_t id = Grant(*ha, 1);
  const HttpResponse put = PutWithLease(*hb, "x/k", "v", id);
  REQUIRE(put.status == 201);
  CHECK(UntilStatus(*ha, "x/k", 404, seconds(5)).has_value());
  CHECK(UntilStatus(*hb, "x/k", 404, seconds(5)).has_value());
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE kind = 6 AND lease = " + std::to_string(id)) == "1");
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE kind = 2 AND key = 'x/k'") == "1");
  CHECK(Metric(*ha, "kvctl_lease_expiries_total") + Metric(*hb, "kvctl_lease_expiries_total") == 1);
  CHECK(ha->Request("GET", LeasePath(id)).status == 404);
  // Both servers' watches see the delete, once.
  const std::string from = "key=x%2Fk&from=" + std::to_string(*put.EtagRevision() + 1);
  CHECK(WatchEvents(a->port(), from, 1, seconds(5)).size() == 1);
  CHECK(WatchEvents(b->port(), from, 1, seconds(5)).size() == 1);

  // The server holding the duty stops; the other takes it and expires.
  const bool a_holds = Metric(*ha, "kvctl_pg_lease_expirer") == 1;
  std::optional<PgServer>& holder = a_holds ? a : b;
  std::optional<HttpClient>& other = a_holds ? hb : ha;
  (a_holds ? ha : hb).reset();
  CHECK(holder->process().Terminate() == 0);
  holder.reset();
  CHECK(Eventually([&] { return Metric(*other, "kvctl_pg_lease_expirer") == 1; }));
  const uint64_t next = Grant(*other, 1);
  REQUIRE(PutWithLease(*other, "x/n", "v", next).status == 201);
  CHECK(UntilStatus(*other, "x/n", 404, seconds(5)).has_value());
  CHECK(db.Sql("SELECT count(*) FROM kv_log WHERE kind = 6 AND lease = " + std::to_string(next)) == "1");
}

TEST_CASE("PostgreSQL leases: a lease outlives an outage of every server, with its full TTL again after it") {
  MigratedDb db;
  PgServer server(db.dsn);
  std::optional<HttpClient> http(std::in_place, server.port());
  const uint64_t id = Grant(*http, 3);
  REQUIRE(PutWithLease(*http, "o/k", "v", id).status == 201);
  http.reset();
  CHECK(server.process().Terminate() == 0);
  // Longer than the TTL: no server could have kept it alive meanwhile.
  std::this_thread::sleep_for(seconds(4));
  server.Start();
  const auto restarted = Clock::now();
  http.emplace(server.port());
  CHECK(http->Get("o/k").status == 200);
  REQUIRE(Eventually([&] { return Metric(*http, "kvctl_pg_lease_expirer") == 1; }));
  const HttpResponse shown = http->Request("GET", LeasePath(id));
  REQUIRE(shown.status == 200);
  CHECK(shown.Json()["remaining"].get<int64_t>() >= 2);
  std::this_thread::sleep_for(milliseconds(1500) - (Clock::now() - restarted));
  CHECK(http->Get("o/k").status == 200);
  // Then it ends as any lease does, its TTL after the restart.
  CHECK(UntilStatus(*http, "o/k", 404, seconds(5)).has_value());
}

TEST_CASE("PostgreSQL leases: kvctl lock serializes commands run through two servers") {
  MigratedDb db;
  PgServer a(db.dsn), b(db.dsn);
  TempDir tmp;
  CheckLocksTakeTurns({a.addr(), b.addr(), a.addr()}, (tmp / "log").string());
  HttpClient http(b.port());
  CHECK(Eventually([&] { return http.ListAll("__lock/").empty(); }));
  CHECK(http.Request("GET", "/v1/lease").Json()["leases"].empty());
}

TEST_CASE("PostgreSQL leases: replay prints them as a data dir's, and --into copies them there and back") {
  // A data dir's history with leases: one revoked with its key, one alive.
  KvServer file;
  std::optional<HttpClient> hf(std::in_place, file.port());
  const uint64_t gone = Grant(*hf, 60);
  REQUIRE(PutWithLease(*hf, "r/gone", "1", gone).status == 201);
  const uint64_t alive = Grant(*hf, 60);
  REQUIRE(PutWithLease(*hf, "r/alive", "2", alive).status == 201);
  REQUIRE(hf->Put("r/plain", "3").status == 201);
  REQUIRE(hf->Request("DELETE", LeasePath(gone)).status == 200);
  hf.reset();
  REQUIRE(file.Stop() == 0);
  const CliResult from_file = RunCli({"replay", "--data-dir", file.data_dir().string()});
  REQUIRE(from_file.exit_code == 0);
  CHECK(from_file.out.find("LEASE GRANT " + std::to_string(alive) + " ttl=60") != std::string::npos);
  CHECK(from_file.out.find("LEASE REVOKE " + std::to_string(gone)) != std::string::npos);

  MigratedDb db;
  CliResult r = RunCli({"replay", "--data-dir", file.data_dir().string(), "--into", db.dsn});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(db.Sql("SELECT id FROM kv_lease") == std::to_string(alive));
  // The database's history reads exactly as the data dir's.
  const CliResult from_pg = RunCli({"replay", "--dsn", db.dsn});
  REQUIRE(from_pg.exit_code == 0);
  CHECK(from_pg.out == from_file.out);
  const CliResult json_file = RunCli({"replay", "--data-dir", file.data_dir().string(), "-o", "json"});
  const CliResult json_pg = RunCli({"replay", "--dsn", db.dsn, "-o", "json"});
  CHECK(json_pg.out == json_file.out);

  // A server on the database serves the copied lease: its key is on it,
  // and a revoke ends both.
  {
    PgServer pg(db.dsn);
    HttpClient hp(pg.port());
    const HttpResponse shown = hp.Request("GET", LeasePath(alive));
    REQUIRE(shown.status == 200);
    CHECK(shown.Json()["keys"] == json::array({json{{"key", "r/alive"}}}));
    CHECK(hp.Request("GET", LeasePath(gone)).status == 404);
  }

  // And back into a new data dir: the same history again, and a file
  // server on it has the lease.
  TempDir back;
  const std::string back_dir = (back / "data").string();
  r = RunCli({"replay", "--dsn", db.dsn, "--into", back_dir});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(RunCli({"replay", "--data-dir", back_dir}).out == from_file.out);
  const int port = FreePort();
  ServerProcess served(back.path(), ServerOptions{back_dir, port, {}, {}});
  served.WaitReady();
  {
    HttpClient hb(port);
    CHECK(hb.Request("GET", LeasePath(alive)).status == 200);
    CHECK(hb.Get("r/alive").status == 200);
  }
  CHECK(served.Terminate() == 0);
}

TEST_CASE("PostgreSQL leases: compaction keeps the grants of leases alive and drops those that ended") {
  MigratedDb db;
  PgServer a(db.dsn, {"--storage-history-retention", "0"}), b(db.dsn);
  HttpClient ha(a.port()), hb(b.port());
  const uint64_t kept = Grant(ha, 60);
  const uint64_t ended = Grant(hb, 60);
  REQUIRE(PutWithLease(ha, "c/kept", "1", kept).status == 201);
  REQUIRE(PutWithLease(hb, "c/ended", "2", ended).status == 201);
  REQUIRE(hb.Request("DELETE", LeasePath(ended)).status == 200);
  REQUIRE(ha.Put("c/plain", "3").status == 201);
  const HttpResponse compacted = ha.Request("POST", "/v1/admin/compact");
  REQUIRE_MESSAGE(compacted.status == 200, compacted.body);
  CHECK(db.Sql("SELECT string_agg(kind || ':' || lease, ' ' ORDER BY revision) FROM kv_log WHERE kind IN (4, 5, 6)") ==
        "4:" + std::to_string(kept));
  // A server started on the compacted history has the lease and its key;
  // B, which applied the history as it came, agrees.
  PgServer c(db.dsn);
  HttpClient hc(c.port());
  const HttpResponse shown = hc.Request("GET", LeasePath(kept));
  REQUIRE(shown.status == 200);
  CHECK(shown.Json()["keys"] == json::array({json{{"key", "c/kept"}}}));
  CHECK(Metric(hc, "kvctl_leases") == 1);
  CHECK(Metric(hb, "kvctl_leases") == 1);
  CHECK(SameState({a.port(), b.port(), c.port()}));
  const CliResult replayed = RunCli({"replay", "--dsn", db.dsn});
  REQUIRE(replayed.exit_code == 0);
  CHECK(replayed.out.find("LEASE GRANT " + std::to_string(kept)) != std::string::npos);
  CHECK(replayed.out.find(std::to_string(ended)) == std::string::npos);
}

}  // namespace
}  // namespace kvctl::e2e
