// Benchmark, not a test (not run by ctest): write throughput of 1, 2 and 3
// kvctl servers sharing one PostgreSQL database, and how long a write taken
// by one server takes to become visible on another (convergence lag).
//
//   build/pg_bench                 # every measurement
//   build/pg_bench -tc='*throughput*'  # the servers' and pgbench's table
//   build/pg_bench -tc='*lag*'     # one of them
//
// PostgreSQL runs with fsync on here (unlike the tests), so commits cost
// what they cost on a real disk. The load comes from this process, on the
// same machine, so the numbers are a floor for the servers, not a ceiling.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kClients = 16;                 // HTTP clients in all, spread over the servers
constexpr auto kDuration = 5s;               // per throughput run
constexpr int kKeys = 10000;                 // key space of the load
constexpr size_t kValueBytes = 100;
constexpr int kLagSamples = 400;

PgCluster& BenchCluster() {
  static PgCluster cluster(PgClusterOptions{.settings = {"fsync=on"}});
  return cluster;
}

std::string FreshDsn() {
  PgCluster& pg = BenchCluster();
  std::string dsn = pg.Dsn(pg.CreateDatabase());
  MigrateUp(dsn);
  return dsn;
}

// Writes per second of kClients clients spread evenly over `ports`.
double WritesPerSecond(const std::vector<int>& ports) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0}, failed{0};
  std::vector<std::thread> clients;
  const std::string value(kValueBytes, 'v');
  for (int c = 0; c < kClients; ++c) {
    const int port = ports[static_cast<size_t>(c) % ports.size()];
    clients.emplace_back([&, port, c] {
      HttpClient http(port);
      uint64_t x = static_cast<uint64_t>(c) * 7919 + 1;
      while (!stop) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        auto r = http.TryRequest("PUT", KeyPath("bench/" + std::to_string((x >> 33) % kKeys)), value);
        if (r && (r->status == 200 || r->status == 201)) {
          ++acked;
        } else {
          ++failed;
        }
      }
    });
  }
  const auto started = Clock::now();
  std::this_thread::sleep_for(kDuration);
  stop = true;
  for (auto& t : clients) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  CHECK(failed == 0);
  return static_cast<double>(acked.load()) / seconds;
}

std::vector<int> PortsOf(const std::vector<std::unique_ptr<PgServer>>& servers) {
  std::vector<int> ports;
  for (const auto& server : servers) ports.push_back(server->port());
  return ports;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// PostgreSQL's own commit rate at the same concurrency: pgbench, kClients
// connections, each committing a one-row upsert of a kValueBytes value to
// one of kKeys keys (PostgreSQL gathers concurrent commits into one WAL
// flush by itself). Writes per second.
double PgbenchUpsertsPerSecond() {
  PgCluster& pg = BenchCluster();
  const std::string db = pg.CreateDatabase();
  pg.Psql(db, "CREATE TABLE bench_upsert (k text PRIMARY KEY, v bytea NOT NULL)");
  TempDir dir;
  const auto script = dir.path() / "upsert.sql";
  {
    std::ofstream out(script);
    out << "\\set k random(0, " << kKeys - 1 << ")\n"
        << "INSERT INTO bench_upsert (k, v) VALUES ('bench/' || :k, convert_to(repeat('v', " << kValueBytes
        << "), 'UTF8')) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;\n";
  }
  // pgbench runs as postgres: it must be able to read the script.
  fs::permissions(dir.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                  fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(script, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::others_read);
  const CliResult r = RunPgTool({"pgbench", "-n", "-M", "prepared", "-c", std::to_string(kClients), "-j", "2",
                                 "-T", std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kDuration).count()),
                                 "-f", script.string(), "-h", "127.0.0.1", "-p", std::to_string(pg.port()), "-U",
                                 "postgres", db});
  const size_t at = r.out.find("tps = ");
  REQUIRE_MESSAGE(at != std::string::npos, "pgbench printed no tps:\n" << r.out << r.err);
  return std::stod(r.out.substr(at + 6));
}

}  // namespace

// The table of docs/benchmarks.md's PostgreSQL results: 1, 2 and 3 servers on one
// database with the same kClients clients split evenly over them, 2 and 3
// with every client on the writer (what following alone costs), and
// pgbench's one-row upsert on the same cluster, from one run.
TEST_CASE("bench: write throughput of 1, 2 and 3 servers on one database, and pgbench") {
  double one = 0;
  std::printf("clients=%d value=%zuB keys=%d, %lld s per row, PostgreSQL fsync on\n", kClients, kValueBytes, kKeys,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(kDuration).count()));
  std::printf("| | writes/s | ratio |\n| --- | --- | --- |\n");
  for (int n = 1; n <= 3; ++n) {
    const std::string dsn = FreshDsn();
    std::vector<std::unique_ptr<PgServer>> servers;
    for (int i = 0; i < n; ++i) servers.push_back(std::make_unique<PgServer>(dsn));
    const double rate = WritesPerSecond(PortsOf(servers));
    if (n == 1) one = rate;
    std::printf("| %d kvctl server%s | %.0f | %.2f x one server |\n", n, n == 1 ? "" : "s", rate, rate / one);
    std::fflush(stdout);
    CHECK(rate > 0);
  }
  // What following alone costs: every client on the writer, the other
  // servers taking no request and only applying its commits (a
  // notification and a catch-up query each, as every server does to keep
  // every key in memory). With followers catching up as they do, no way
  // of routing the writes does better than this on a machine whose cores
  // those followers share.
  for (int n = 2; n <= 3; ++n) {
    const std::string dsn = FreshDsn();
    std::vector<std::unique_ptr<PgServer>> servers;
    for (int i = 0; i < n; ++i) servers.push_back(std::make_unique<PgServer>(dsn));
    std::vector<PgServer*> all;
    for (const auto& server : servers) all.push_back(server.get());
    const int writer = WriterOf(all);
    REQUIRE(writer >= 0);
    const double rate = WritesPerSecond({servers[static_cast<size_t>(writer)]->port()});
    std::printf("| %d kvctl servers, every client on the writer | %.0f | %.2f x one server |\n", n, rate,
                rate / one);
    std::fflush(stdout);
    CHECK(rate > 0);
  }
  const double pgbench = PgbenchUpsertsPerSecond();
  std::printf("| pgbench, one-row upsert, %d clients | %.0f | one server = %.2f x pgbench |\n", kClients, pgbench,
              one / pgbench);
  std::fflush(stdout);
  CHECK(pgbench > 0);
}

TEST_CASE("bench: convergence lag from one server to another") {
  const std::string dsn = FreshDsn();
  PgServer writer(dsn), reader(dsn);
  HttpClient w(writer.port()), r(reader.port());
  std::vector<double> lag_ms;
  for (int i = 0; i < kLagSamples; ++i) {
    const std::string key = "lag/" + std::to_string(i);
    REQUIRE(w.Put(key, "x").status == 201);
    const auto acked = Clock::now();
    while (r.Get(key).status != 200) {
      REQUIRE(Clock::now() - acked < 10s);
    }
    lag_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - acked).count());
    std::this_thread::sleep_for(2ms);
  }
  std::printf("convergence lag over %d writes: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              kLagSamples, Percentile(lag_ms, 0.50), Percentile(lag_ms, 0.99),
              Percentile(lag_ms, 1.0));
  std::fflush(stdout);
}

}  // namespace kvctl::e2e
