// Benchmark, not a test (not run by ctest): write throughput of 1, 2 and 3
// kvctl servers sharing one PostgreSQL database, and how long a write taken
// by one server takes to become visible on another (convergence lag).
//
//   build/pg_bench                 # every measurement
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
#include <thread>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

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

double WritesPerSecond(const std::vector<std::unique_ptr<PgServer>>& servers) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked{0}, failed{0};
  std::vector<std::thread> clients;
  const std::string value(kValueBytes, 'v');
  for (int c = 0; c < kClients; ++c) {
    const int port = servers[static_cast<size_t>(c) % servers.size()]->port();
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

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

TEST_CASE("bench: write throughput of 1, 2 and 3 servers on one database") {
  for (int n = 1; n <= 3; ++n) {
    const std::string dsn = FreshDsn();
    std::vector<std::unique_ptr<PgServer>> servers;
    for (int i = 0; i < n; ++i) servers.push_back(std::make_unique<PgServer>(dsn));
    const double rate = WritesPerSecond(servers);
    std::printf("servers=%d clients=%d value=%zuB: %.0f acknowledged writes/s\n", n, kClients,
                kValueBytes, rate);
    std::fflush(stdout);
    CHECK(rate > 0);
  }
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
