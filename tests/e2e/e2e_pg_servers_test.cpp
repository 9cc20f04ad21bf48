// Several kvctl servers on one PostgreSQL database: convergence, conditional
// writes judged by the database, and no acknowledged write lost when a
// server is killed, when PostgreSQL restarts, or when it fails over to a
// promoted replica.
#include <doctest/doctest.h>

#include <csignal>

#include <atomic>
#include <mutex>
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"
#include "tests/e2e/pki.h"

namespace kvctl::e2e {
namespace {

using namespace std::chrono_literals;

// A fresh migrated database in the shared cluster.
std::string FreshDsn() {
  PgCluster& pg = PgCluster::Shared();
  std::string dsn = pg.Dsn(pg.CreateDatabase());
  MigrateUp(dsn);
  return dsn;
}

// Threads writing distinct keys to one server until stopped, remembering
// every write that was acknowledged (2xx) and counting the answers.
class LoadWriter {
 public:
  LoadWriter(int port, std::string prefix, int threads = 4) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, port, prefix, t] {
        HttpClient http(port);
        for (int i = 0; i < 200000 && !stop_; ++i) {
          const std::string key = prefix + "/" + std::to_string(t) + "/" + std::to_string(i);
          const std::string value = "value-" + std::to_string(i);
          auto r = http.TryRequest("PUT", KeyPath(key), value);
          std::lock_guard lock(mu_);
          if (!r) {
            ++no_answer_;
            std::this_thread::sleep_for(5ms);
            continue;
          }
          ++statuses_[r->status];
          if (r->status == 200 || r->status == 201) acked_[key] = value;
          if (r->status == 503) std::this_thread::sleep_for(5ms);
        }
      });
    }
  }
  ~LoadWriter() { Stop(); }
  void Stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::map<std::string, std::string> acked() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  int count(int status) {
    std::lock_guard lock(mu_);
    return statuses_[status];
  }
  size_t acked_count() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  std::string Summary() {
    std::lock_guard lock(mu_);
    std::string s = "no answer: " + std::to_string(no_answer_);
    for (const auto& [status, n] : statuses_) s += ", " + std::to_string(status) + ": " + std::to_string(n);
    return s;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<std::string, std::string> acked_;
  std::map<int, int> statuses_;
  int no_answer_ = 0;
};

// Every acknowledged write is in `port`'s store (waits for it to converge).
void CheckAllPresent(int port, const std::map<std::string, std::string>& acked) {
  HttpClient http(port);
  std::map<std::string, Stored> snap;
  size_t missing = 0;
  Eventually([&] {
    snap = Snapshot(http);
    missing = 0;
    for (const auto& [k, v] : acked) {
      auto it = snap.find(k);
      if (it == snap.end() || it->second.value != v) ++missing;
    }
    return missing == 0;
  });
  CHECK_MESSAGE(missing == 0, missing << " of " << acked.size()
                                      << " acknowledged writes are missing on " << Addr(port));
}

}  // namespace

TEST_CASE("two and three servers on one database converge, each reading its own writes at once") {
  const std::string dsn = FreshDsn();
  PgServer a(dsn), b(dsn);
  HttpClient ha(a.port()), hb(b.port());
  for (int i = 0; i < 50; ++i) {
    HttpResponse put = (i % 2 == 0 ? ha : hb).Put("k" + std::to_string(i), "v" + std::to_string(i));
    REQUIRE(put.status == 201);
    // Read-your-writes on the server that took the write.
    HttpResponse got = (i % 2 == 0 ? ha : hb).Get("k" + std::to_string(i));
    CHECK(got.status == 200);
    CHECK(got.body == "v" + std::to_string(i));
  }
  REQUIRE(hb.Delete("k0").status == 204);
  CHECK(Eventually([&] { return SameState({a.port(), b.port()}); }));
  CHECK(ha.Get("k0").status == 404);

  // A third server loads the state table and follows from there.
  PgServer c(dsn);
  HttpClient hc(c.port());
  REQUIRE(hc.Put("from-c", "c").status == 201);
  REQUIRE(ha.Put("k1", "changed").status == 200);
  CHECK(Eventually([&] { return SameState({a.port(), b.port(), c.port()}); }));
  auto state = Snapshot(hc);
  CHECK(state.size() == 50);
  CHECK(state["k1"].value == "changed");
  // Revisions are store-wide and gapless: 50 creates, 1 delete, 2 more.
  CHECK(hc.Get("k1").EtagRevision() == 53);
  CHECK(PgCluster::Shared().Psql(dsn.substr(dsn.rfind('=') + 1),
                                 "SELECT count(*), min(revision), max(revision) FROM kv_log") ==
        "53|1|53");
}

TEST_CASE("writes on PostgreSQL wait for their commit without holding a transport thread") {
  const std::string dsn = FreshDsn();
  // One event loop and one worker: a write that held either while its
  // transaction ran would make every write its own transaction.
  PgServer a(dsn, {"--server-io-threads", "1", "--threads", "1"});
  constexpr int kWriters = 32;
  constexpr int kPutsEach = 20;
  std::atomic<int> created{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient http(a.port());
      for (int i = 0; i < kPutsEach; ++i) {
        if (http.Put("w" + std::to_string(w) + "/" + std::to_string(i), "v").status == 201) ++created;
      }
    });
  }
  // Reads are answered meanwhile.
  HttpClient reader(a.port());
  CHECK(reader.Request("GET", "/readyz").status == 200);
  for (auto& t : writers) t.join();
  CHECK(created == kWriters * kPutsEach);
  const double changes = Metric(reader, "kvctl_committed_changes_total");
  const double batches = Metric(reader, "kvctl_commit_batches_total");
  CHECK(changes == kWriters * kPutsEach);
  // Concurrent writers share transactions (group commit).
  CHECK(batches > 0);
  CHECK(batches < changes / 2);
}

TEST_CASE("concurrent create-only and If-Match writes across servers: exactly one wins") {
  const std::string dsn = FreshDsn();
  PgServer a(dsn), b(dsn), c(dsn);
  const std::vector<int> ports = {a.port(), b.port(), c.port()};
  constexpr int kRounds = 10;
  constexpr int kPerServer = 3;
  for (int round = 0; round < kRounds; ++round) {
    const std::string key = "lock/" + std::to_string(round);
    std::atomic<int> created{0}, refused{0}, other{0};
    std::vector<std::thread> racers;
    for (int s = 0; s < 3; ++s) {
      for (int t = 0; t < kPerServer; ++t) {
        racers.emplace_back([&, s, t] {
          HttpClient http(ports[static_cast<size_t>(s)]);
          auto r = http.TryRequest("PUT", KeyPath(key), std::to_string(s * 10 + t),
                                   {{"If-None-Match", "*"}});
          if (r && r->status == 201) {
            ++created;
          } else if (r && r->status == 412) {
            ++refused;
          } else {
            ++other;
          }
        });
      }
    }
    for (auto& t : racers) t.join();
    CHECK(created == 1);
    CHECK(refused == 3 * kPerServer - 1);
    CHECK(other == 0);
  }

  // Compare-and-swap: everyone read revision R, everyone tries If-Match R.
  HttpClient ha(a.port());
  const uint64_t rev = *ha.Get("lock/0").EtagRevision();
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> racers;
  for (int s = 0; s < 3; ++s) {
    for (int t = 0; t < kPerServer; ++t) {
      racers.emplace_back([&, s, t] {
        HttpClient http(ports[static_cast<size_t>(s)]);
        auto r = http.TryRequest("PUT", KeyPath("lock/0"), "cas-" + std::to_string(s * 10 + t),
                                 {{"If-Match", "\"" + std::to_string(rev) + "\""}});
        if (r && r->status == 200) ++won;
        if (r && r->status == 412) ++lost;
      });
    }
  }
  for (auto& t : racers) t.join();
  CHECK(won == 1);
  CHECK(lost == 3 * kPerServer - 1);
  CHECK(Eventually([&] { return SameState({a.port(), b.port(), c.port()}); }));
}

TEST_CASE("kill -9 of a server under load loses no acknowledged write") {
  const std::string dsn = FreshDsn();
  PgServer a(dsn), b(dsn);
  LoadWriter load(a.port(), "load");
  REQUIRE(Eventually([&] { return load.acked_count() >= 200; }));
  a.process().Kill9();
  std::this_thread::sleep_for(200ms);
  load.Stop();
  const auto acked = load.acked();
  INFO(load.Summary());
  CHECK(load.count(503) == 0);
  CheckAllPresent(b.port(), acked);
  // The killed server comes back with everything too.
  a.Start();
  CheckAllPresent(a.port(), acked);
}

TEST_CASE("a PostgreSQL restart under load: writes get 503, then recover, nothing acknowledged lost") {
  PgCluster pg;
  const std::string db = pg.CreateDatabase();
  const std::string dsn = pg.Dsn(db);
  MigrateUp(dsn);
  PgServer a(dsn, {"--postgres-reconnect-max-backoff", "200ms"}), b(dsn);
  LoadWriter load(a.port(), "load");
  REQUIRE(Eventually([&] { return load.acked_count() >= 100; }));
  pg.Stop("fast");
  HttpClient ha(a.port());
  CHECK(Eventually([&] { return ha.Request("GET", "/readyz").status == 503; }));
  HttpResponse ready = ha.Request("GET", "/readyz");
  CHECK(ready.body.find("PostgreSQL is unreachable") != std::string::npos);
  CHECK(Eventually([&] { return load.count(503) > 0; }));
  // Reads keep working while the database is away.
  auto before = load.acked();
  REQUIRE_FALSE(before.empty());
  HttpResponse read = ha.Get(before.begin()->first);
  CHECK(read.status == 200);
  CHECK(read.body == before.begin()->second);

  pg.Start();
  CHECK(Eventually([&] { return ha.Request("GET", "/readyz").status == 200; }, 20s));
  const size_t after_restart = load.acked_count();
  CHECK(Eventually([&] { return load.acked_count() >= after_restart + 100; }, 20s));
  load.Stop();
  INFO(load.Summary());
  const auto acked = load.acked();
  CheckAllPresent(a.port(), acked);
  CheckAllPresent(b.port(), acked);
}

TEST_CASE("failover: servers with a multi-host DSN carry on when a streaming replica is promoted") {
  PgCluster primary;
  const std::string db = primary.CreateDatabase();
  MigrateUp(primary.Dsn(db));
  auto replica = PgCluster::ReplicaOf(primary);
  // Synchronous replication, so a commit acknowledged by the primary is on
  // the replica too: a promotion then loses nothing acknowledged.
  primary.Psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'");
  primary.Psql("postgres", "SELECT pg_reload_conf()");
  const std::string dsn = "host=127.0.0.1,127.0.0.1 port=" + std::to_string(primary.port()) + "," +
                          std::to_string(replica->port()) +
                          " user=postgres dbname=" + db + " target_session_attrs=read-write";
  PgServer a(dsn, {"--postgres-reconnect-max-backoff", "200ms"});
  PgServer b(dsn, {"--postgres-reconnect-max-backoff", "200ms"});
  LoadWriter load_a(a.port(), "a"), load_b(b.port(), "b", 2);
  REQUIRE(Eventually([&] { return load_a.acked_count() >= 100 && load_b.acked_count() >= 50; }));

  primary.Stop("immediate");  // the primary dies
  HttpClient ha(a.port());
  CHECK(Eventually([&] { return ha.Request("GET", "/readyz").status == 503; }));
  replica->Promote();
  CHECK(Eventually([&] { return ha.Request("GET", "/readyz").status == 200; }, 30s));
  const size_t after = load_a.acked_count();
  CHECK(Eventually([&] { return load_a.acked_count() >= after + 100; }, 20s));
  load_a.Stop();
  load_b.Stop();
  INFO(load_a.Summary() << " / " << load_b.Summary());
  auto acked = load_a.acked();
  for (const auto& kv : load_b.acked()) acked.insert(kv);
  CheckAllPresent(a.port(), acked);
  CheckAllPresent(b.port(), acked);
  CHECK(std::stoul(replica->Psql(db, "SELECT count(*) FROM kv_state")) >= acked.size());
}

// ---------------------------------------------------------------- one writer
// (lib/pg/pg_store.h, "One writer")

namespace {

// Writes to `http` until its server forwards one to the writer (it reads
// who that is at start and then every second).
bool ForwardsToWriter(HttpClient& http) {
  return Eventually([&] {
    return http.Put("warm", "up").status / 100 == 2 && Metric(http, "kvctl_pg_forwarded_writes_total") >= 1;
  });
}

// A server that is its database's writer, started first, and a second one.
struct WriterAndFollower {
  explicit WriterAndFollower(std::vector<std::string> writer_args = {})
      : writer(dsn, std::move(writer_args)), elected(WriterOf({&writer}) == 0) {}
  std::string dsn = FreshDsn();
  PgServer writer;
  bool elected;
  PgServer follower{dsn};
  HttpClient http{follower.port()};
};

}  // namespace

TEST_CASE("one writer: the servers elect one and it commits the others' writes, conditions and all") {
  const std::string dsn = FreshDsn();
  PgServer a(dsn), b(dsn), c(dsn);
  std::vector<PgServer*> servers = {&a, &b, &c};
  const int w = WriterOf(servers);
  REQUIRE(w >= 0);
  CHECK(PgCluster::Shared().Psql(dsn.substr(dsn.rfind('=') + 1), "SELECT url FROM kv_writer") ==
        "http://" + servers[static_cast<size_t>(w)]->addr());
  for (size_t s = 0; s < servers.size(); ++s) {
    if (static_cast<int>(s) == w) continue;
    HttpClient http(servers[s]->port());
    REQUIRE(ForwardsToWriter(http));
    const double forwarded = Metric(http, "kvctl_pg_forwarded_writes_total");
    const std::string p = "s" + std::to_string(s) + "/";
    for (int i = 0; i < 20; ++i) {
      REQUIRE(http.Put(p + std::to_string(i), "v" + std::to_string(i)).status == 201);
      // Read-your-writes on the server that took the write, though another committed it.
      CHECK(http.Get(p + std::to_string(i)).body == "v" + std::to_string(i));
    }
    // Conditions are judged where the write commits, and their answers come back.
    const uint64_t rev = *http.Get(p + "0").EtagRevision();
    CHECK(http.Put(p + "0", "x", {{"If-None-Match", "*"}}).status == 412);
    HttpResponse stale = http.Put(p + "0", "x", {{"If-Match", "\"" + std::to_string(rev - 1) + "\""}});
    CHECK(stale.status == 412);
    CHECK(stale.body.find("key is at revision " + std::to_string(rev)) != std::string::npos);
    CHECK(http.Put(p + "0", "cas", {{"If-Match", "\"" + std::to_string(rev) + "\""}}).status == 200);
    CHECK(http.Get(p + "0").body == "cas");
    CHECK(http.Put(p + "1", "v1").status == 200);  // the same value: no new revision
    CHECK(http.Get(p + "1").EtagRevision() < http.Get(p + "0").EtagRevision());
    CHECK(http.Delete(p + "2").status == 204);
    CHECK(http.Get(p + "2").status == 404);
    CHECK(http.Delete(p + "2").status == 204);  // a missing key: no revision
    CHECK(Metric(http, "kvctl_pg_forwarded_writes_total") == forwarded + 26);
    CHECK(Metric(http, "kvctl_pg_forwards_not_sent_total") == 0);
  }
  CHECK(Eventually([&] { return SameState({a.port(), b.port(), c.port()}); }));
  // Revisions stay store-wide and gapless: "warm" once, 40 creates, 2
  // swaps, 2 deletes.
  CHECK(PgCluster::Shared().Psql(dsn.substr(dsn.rfind('=') + 1),
                                 "SELECT count(DISTINCT revision), min(revision), max(revision) FROM kv_log") ==
        "45|1|45");
}

TEST_CASE("one writer killed -9 under load: nothing acknowledged lost, another takes over within seconds") {
  const std::string dsn = FreshDsn();
  PgServer a(dsn), b(dsn), c(dsn);
  std::vector<PgServer*> servers = {&a, &b, &c};
  const int w = WriterOf(servers);
  REQUIRE(w >= 0);
  std::vector<PgServer*> rest;
  for (size_t i = 0; i < servers.size(); ++i) {
    if (static_cast<int>(i) != w) rest.push_back(servers[i]);
  }
  for (PgServer* s : rest) {
    HttpClient http(s->port());
    REQUIRE(ForwardsToWriter(http));
  }
  LoadWriter one(rest[0]->port(), "one"), two(rest[1]->port(), "two");
  REQUIRE(Eventually([&] { return one.acked_count() >= 200 && two.acked_count() >= 200; }));
  {
    HttpClient http(rest[0]->port());
    CHECK(Metric(http, "kvctl_pg_forwarded_writes_total") > 100);
  }
  servers[static_cast<size_t>(w)]->process().Kill9();
  const auto killed = std::chrono::steady_clock::now();
  const size_t before = one.acked_count() + two.acked_count();
  // Writes go on (committed where they were taken until a new writer is
  // elected), and one of the survivors becomes the writer.
  CHECK(Eventually([&] { return one.acked_count() + two.acked_count() >= before + 500; }, 5s));
  const int next = WriterOf(rest, 5s);
  CHECK(next >= 0);
  MESSAGE("new writer after " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - killed)
                                     .count()
                              << " ms");
  std::this_thread::sleep_for(500ms);  // some writes through the new writer
  one.Stop();
  two.Stop();
  INFO(one.Summary() << "; " << two.Summary());
  // A write whose forward was in flight when the writer died may be
  // answered 503 (its outcome unknown); nothing else fails.
  CHECK(one.count(503) + two.count(503) <= 16);
  auto acked = one.acked();
  for (const auto& [k, v] : two.acked()) acked[k] = v;
  for (PgServer* s : rest) CheckAllPresent(s->port(), acked);
  CHECK(Eventually([&] { return SameState({rest[0]->port(), rest[1]->port()}); }));
}

TEST_CASE("one writer its peers cannot reach: each commits its own writes, none is refused") {
  // The writer advertises a URL nobody answers on.
  WriterAndFollower s({"--postgres-peer-url", "http://127.0.0.1:" + std::to_string(FreePort())});
  REQUIRE(s.elected);
  PgServer& a = s.writer;
  PgServer& b = s.follower;
  HttpClient& hb = s.http;
  // b learns who the writer is, and cannot reach it.
  REQUIRE(Eventually([&] {
    return hb.Put("warm", "up").status / 100 == 2 && Metric(hb, "kvctl_pg_forwards_not_sent_total") >= 1;
  }));
  LoadWriter load(b.port(), "cut");
  REQUIRE(Eventually([&] { return load.acked_count() >= 300; }));
  load.Stop();
  INFO(load.Summary());
  CHECK(load.count(503) == 0);
  // It tries the writer again every couple of seconds, and commits here.
  CHECK(Metric(hb, "kvctl_pg_forwarded_writes_total") == 0);
  CHECK(Metric(hb, "kvctl_pg_writer") == 0);
  CheckAllPresent(a.port(), load.acked());
  CHECK(Eventually([&] { return SameState({a.port(), b.port()}); }));
}

TEST_CASE("a forwarded write whose answer is lost gets 503, and every server shows what the database holds of it") {
  WriterAndFollower s;
  REQUIRE(s.elected);
  PgServer& a = s.writer;
  PgServer& b = s.follower;
  HttpClient& hb = s.http;
  REQUIRE(ForwardsToWriter(hb));
  // The writer stops answering: it takes the request (the kernel does), and
  // holds it until it runs again.
  REQUIRE(::kill(a.process().pid(), SIGSTOP) == 0);
  HttpResponse lost = hb.Put("lost", "maybe");
  REQUIRE(::kill(a.process().pid(), SIGCONT) == 0);
  CHECK(lost.status == 503);
  CHECK(lost.body.find("its answer was lost") != std::string::npos);
  CHECK(Metric(hb, "kvctl_pg_forwards_lost_total") == 1);
  // Once the writer runs again it commits the write or drops it with the
  // connection b closed (whichever it reads first): either way every
  // server shows what the database holds, and b's writes meanwhile are
  // committed by b.
  REQUIRE(hb.Put("after", "x").status == 201);
  REQUIRE(Eventually([&] { return SameState({a.port(), b.port()}); }));
  std::this_thread::sleep_for(1s);  // a commit of "lost" after "after" would show by now
  CHECK(Eventually([&] { return SameState({a.port(), b.port()}); }));
  const std::string db = s.dsn.substr(s.dsn.rfind('=') + 1);
  const bool committed = PgCluster::Shared().Psql(db, "SELECT count(*) FROM kv_state WHERE key = 'lost'") == "1";
  MESSAGE("the write whose answer was lost was " << std::string(committed ? "committed" : "not committed"));
  CHECK(hb.Get("lost").status == (committed ? 200 : 404));
}

TEST_CASE("one writer: a write too big for one forwarded part is committed by the server that took it") {
  WriterAndFollower s;
  REQUIRE(s.elected);
  PgServer& a = s.writer;
  HttpClient& hb = s.http;
  REQUIRE(ForwardsToWriter(hb));
  const double forwarded = Metric(hb, "kvctl_pg_forwarded_writes_total");
  // limits.max_value_bytes (1 MiB) bounds a part too: this value fits a
  // request, not a part with its key and framing.
  const std::string big((1 << 20) - 8, 'b');
  REQUIRE(hb.Put("big", big).status == 201);
  CHECK(hb.Get("big").body == big);
  CHECK(Metric(hb, "kvctl_pg_forwarded_writes_total") == forwarded);
  REQUIRE(hb.Put("small", "s").status == 201);  // the next one is forwarded again
  CHECK(Metric(hb, "kvctl_pg_forwarded_writes_total") == forwarded + 1);
  HttpClient ha(a.port());
  CHECK(Eventually([&] { return ha.Get("big").body == big; }));
}

TEST_CASE("serve refuses postgres.peer_url with TLS on: its peers could not forward to a TLS-only listener") {
  const std::string dsn = FreshDsn();
  Pki pki;
  TempDir scratch;
  ServerProcess p(scratch.path(), ServerOptions{"", FreePort(),
                                                {"--backend", "postgres", "--dsn", dsn, "--postgres-peer-url",
                                                 "http://127.0.0.1:7000", "--tls-cert", pki("server.pem"),
                                                 "--tls-key", pki("server.key")},
                                                {}});
  const auto code = p.WaitExit();
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK(p.Stderr().find("postgres.peer_url is plain HTTP, but tls.cert is set") != std::string::npos);
}

}  // namespace kvctl::e2e
