// kvctl bench against the real binary: short runs whose reports must add
// up. Speed is not asserted here (that is the bench/ suite's job).
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

nlohmann::json ParseReport(const CliResult& r) {
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << r.out.substr(0, 300));
  return j;
}

void CheckConsistent(const nlohmann::json& j) {
  const uint64_t ok = j["ok"];
  CHECK(j["reads"]["count"].get<uint64_t>() + j["writes"]["count"].get<uint64_t>() +
            j["txns"]["count"].get<uint64_t>() ==
        ok);
  CHECK(j["requests"].get<uint64_t>() == ok + j["errors"]["total"].get<uint64_t>());
  const auto& l = j["latency_ms"];
  CHECK(l["min"].get<double>() > 0);
  CHECK(l["p50"].get<double>() <= l["p90"].get<double>());
  CHECK(l["p90"].get<double>() <= l["p99"].get<double>());
  CHECK(l["p99"].get<double>() <= l["p99_9"].get<double>());
  CHECK(l["p99_9"].get<double>() <= l["max"].get<double>());
  uint64_t in_bars = 0;
  for (const auto& bar : j["histogram"]) in_bars += bar["count"].get<uint64_t>();
  CHECK(in_bars == ok);
  CHECK(j["throughput_rps"].get<double>() > 0);
}

TEST_CASE("kvctl bench --requests against a running server reports exactly that many answers") {
  KvServer server;
  const CliResult r = RunCli({"bench", "--addr", server.addr(), "--requests", "2000", "--clients", "8", "--keys",
                              "100", "--read-ratio", "0.5", "-o", "json"});
  const nlohmann::json j = ParseReport(r);
  CHECK(j["ok"] == 2000);
  CHECK(j["errors"]["total"] == 0);
  CHECK(j["reads"]["count"].get<uint64_t>() > 700);
  CHECK(j["writes"]["count"].get<uint64_t>() > 700);
  CHECK(j["clients"] == 8);
  CheckConsistent(j);
  // The fill wrote every key before the run: all 100 are there, 16 bytes each.
  HttpClient http(server.port());
  const auto items = http.ListAll("k");
  CHECK(items.size() == 100);
  for (const auto& item : items) CHECK(ItemKey(item).size() == 16);
  // Every PUT carried a new value, so each one was a real, logged change
  // (a PUT of the value a key already holds would change nothing).
  const uint64_t revision = http.Request("GET", "/readyz").Json()["revision"];
  CHECK(revision == 100 + j["writes"]["count"].get<uint64_t>());
}

TEST_CASE("kvctl bench --txn-ratio 1 sends only 3-key transactions, all succeed, and their keys are written") {
  KvServer server;
  const CliResult r = RunCli({"bench", "--addr", server.addr(), "--txn-ratio", "1", "--read-ratio", "0",
                              "--duration", "1s", "--clients", "4", "--keys", "30", "-o", "json"});
  const nlohmann::json j = ParseReport(r);
  CHECK(j["txn_ratio"] == 1);
  CHECK(j["errors"]["total"] == 0);
  const uint64_t txns = j["txns"]["count"];
  CHECK(txns > 10);
  CHECK(j["txns"]["keys_each"] == 3);
  CHECK(j["writes"]["count"] == 0);
  CHECK(j["reads"]["count"] == 0);
  CheckConsistent(j);
  // 30 keys, each transaction writes 3 neighbours: every key got a value of
  // --value-size bytes.
  HttpClient http(server.port());
  const auto items = http.ListAll("k");
  CHECK(items.size() == 30);
  for (const auto& item : items) CHECK(ItemKey(item).size() == 16);
  const HttpResponse last = http.Get("k000000000000029");
  CHECK(last.status == 200);
  CHECK(last.body.size() == 100);
  // One revision per transaction (not per key): those counted, and at most
  // one in flight per client when the time was up.
  const uint64_t revision = http.Request("GET", "/readyz").Json()["revision"];
  CHECK(revision >= txns);
  CHECK(revision <= txns + 4);
}

TEST_CASE("kvctl bench --embedded needs no server and prints a text summary") {
  const CliResult r = RunCli({"bench", "--embedded", "--requests", "500", "--clients", "4", "--keys", "50"});
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("500 ok") != std::string::npos);
  CHECK(r.out.find("throughput") != std::string::npos);
  CHECK(r.out.find("p99") != std::string::npos);
  CHECK(r.out.find("latency histogram") != std::string::npos);
  CHECK(r.err.empty());  // no progress line when stderr is not a terminal
}

TEST_CASE("kvctl bench --rate paces an open loop and measures from the due time") {
  const CliResult r = RunCli({"bench", "--embedded", "--requests", "300", "--clients", "4", "--rate", "1000",
                              "--read-ratio", "1", "--keys", "10", "-o", "json"});
  const nlohmann::json j = ParseReport(r);
  CHECK(j["ok"] == 300);
  CHECK(j["rate"] == 1000);
  // 300 requests due 1 ms apart cannot all be answered in much under 0.3 s.
  CHECK(j["duration_s"].get<double>() > 0.25);
  CheckConsistent(j);
}

TEST_CASE("kvctl bench --duration with --warmup and --zipf runs for the time asked") {
  const CliResult r = RunCli({"bench", "--embedded", "--duration", "1s", "--warmup", "200ms", "--clients", "4",
                              "--zipf", "0.99", "--fsync", "never", "-o", "json"});
  const nlohmann::json j = ParseReport(r);
  CHECK(j["duration_s"].get<double>() == doctest::Approx(1.0));
  CHECK(j["ok"].get<uint64_t>() > 100);
  CHECK(j["errors"]["total"] == 0);
  CheckConsistent(j);
}

TEST_CASE("kvctl bench refuses bad flags with exit 2 and an unreachable server with exit 3") {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"bench", "--read-ratio", "1.5"}, {"bench", "--clients", "0"},
        {"bench", "--duration", "soon"}, {"bench", "--keys", "100000", "--key-size", "3"},
        {"bench", "--zipf", "-1"}, {"bench", "--bogus"}, {"bench", "--addr", "http://127.0.0.1:1", "--cacert", "ca.pem"},
        {"bench", "--clients", "many"}, {"bench", "--txn-ratio", "1.5"}, {"bench", "--txn-ratio=-0.1"},
        {"bench", "--txn-ratio", "0.5", "--keys", "2"}}) {
    CAPTURE(args[1]);
    const CliResult r = RunCli(args);
    CHECK(r.exit_code == 2);
    CHECK(IsOneErrorLine(r.err));
    CHECK(r.out.empty());
  }
  for (const std::string& addr : {Addr(FreePort()), "https://" + Addr(FreePort())}) {
    const CliResult down = RunCli({"bench", "--addr", addr, "--requests", "10"});
    CHECK(down.exit_code == 3);
    CHECK(IsOneErrorLine(down.err));
  }
}

TEST_CASE("kvctl bench --watchers holds the streams and times every probe write's event on each") {
  KvServer server;
  const CliResult r = RunCli({"bench", "--addr", server.addr(), "--watchers", "20", "--threads", "2",
                              "--watch-prefix", "w/", "--probe-rate", "20", "--duration", "2s", "-o", "json"});
  const nlohmann::json j = ParseReport(r);
  CHECK(j["watchers"] == 20);
  CHECK(j["streaming"] == 20);
  CHECK(j["cut_off"] == 0);
  CHECK(j["errors"].empty());
  const uint64_t probes = j["probes"];
  CHECK(probes >= 20);  // 40 due in 2 s; a loaded machine may answer fewer
  // Every probe's event reached every watcher, each once.
  CHECK(j["probe_events"].get<uint64_t>() == probes * 20);
  CHECK(j["probe_missing"] == 0);
  CHECK(j["events"].get<uint64_t>() <= probes * 20);
  const auto& d = j["delay_ms"];
  CHECK(d["p50"].get<double>() <= d["p99"].get<double>());
  CHECK(d["p99"].get<double>() <= d["max"].get<double>());
  // Per write, its first watcher is no later than any, its last no earlier.
  CHECK(j["delay_first_ms"]["max"].get<double>() <= d["max"].get<double>());
  CHECK(j["delay_last_ms"]["max"].get<double>() == doctest::Approx(d["max"].get<double>()));
  CHECK(j["delay_first_ms"]["min"].get<double>() <= j["delay_last_ms"]["min"].get<double>());
  // The probes wrote w/probe and nothing else.
  HttpClient http(server.port());
  const auto items = http.ListAll("w/");
  REQUIRE(items.size() == 1);
  CHECK(ItemKey(items[0]) == "w/probe");
  CHECK(http.Request("GET", "/readyz").Json()["revision"].get<uint64_t>() >= probes);
}

TEST_CASE("kvctl bench --watchers refuses --embedded and --requests with exit 2") {
  const CliResult embedded = RunCli({"bench", "--embedded", "--watchers", "10"});
  CHECK(embedded.exit_code == 2);
  CHECK(embedded.err.find("--watchers") != std::string::npos);
  KvServer server;
  const CliResult count = RunCli({"bench", "--addr", server.addr(), "--watchers", "10", "--requests", "5"});
  CHECK(count.exit_code == 2);
  CHECK(count.err.find("--requests") != std::string::npos);
  const CliResult rate = RunCli({"bench", "--addr", server.addr(), "--watchers", "10", "--probe-rate", "0"});
  CHECK(rate.exit_code == 2);
  CHECK(rate.err.find("--probe-rate") != std::string::npos);
}

TEST_CASE("kvctl bench --lease-expiry sees every lease it granted end on the watch, beside a PUT load") {
  KvServer server;
  const CliResult r = RunCli({"bench", "--addr", server.addr(), "--lease-expiry", "60", "--lease-ttl", "1s",
                              "--lease-prefix", "lb/", "--duration", "3s", "--clients", "4", "--keys", "50", "-o",
                              "json"});
  const nlohmann::json j = ParseReport(r);
  CHECK(j["leases"] == 60);
  CHECK(j["ttl_s"] == 1);
  CHECK(j["prefix"] == "lb/");
  CHECK(j["errors"].empty());
  // Every lease granted, its key attached, and its key's delete seen once.
  CHECK(j["attached"] == 60);
  CHECK(j["seen"] == 60);
  CHECK(j["missing"] == 0);
  CHECK(j["seen_under_load"].get<uint64_t>() <= 60);
  CHECK(j["before_deadline"].get<uint64_t>() <= 60);
  // The grants' timetable spreads the deadlines over at most about a second.
  CHECK(j["deadline_spread_s"].get<double>() > 0);
  const auto& d = j["delay_ms"];
  CHECK(d["p50"].get<double>() <= d["p99"].get<double>());
  CHECK(d["p99"].get<double>() <= d["max"].get<double>());
  CHECK(j["delay_from_sent_ms"]["max"].get<double>() >= d["max"].get<double>());
  // The load beside it: PUTs only, by default.
  const nlohmann::json& load = j["load"];
  CHECK(load["read_ratio"] == 0);
  CHECK(load["clients"] == 4);
  CHECK(load["errors"]["total"] == 0);
  CHECK(load["writes"]["count"].get<uint64_t>() == load["ok"].get<uint64_t>());
  CHECK(load["ok"].get<uint64_t>() > 0);
  // The leases are gone, with their keys; the load's keys stay.
  HttpClient http(server.port());
  CHECK(http.ListAll("lb/").empty());
  CHECK(http.Request("GET", "/v1/lease").Json()["leases"].empty());
  CHECK(!http.ListAll("k").empty());
}

TEST_CASE("kvctl bench --lease-expiry prints a text report that counts the leases seen to end") {
  KvServer server;
  const CliResult r = RunCli({"bench", "--addr", server.addr(), "--lease-expiry", "20", "--lease-ttl", "1s",
                              "--duration", "3s", "--clients", "2"});
  INFO("stderr: " << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("20 of 20 granted and attached") != std::string::npos);
  CHECK(r.out.find("20 seen on the watch") != std::string::npos);
  CHECK(r.out.find("0 missing") != std::string::npos);
  CHECK(r.out.find("delay") != std::string::npos);
}

TEST_CASE("kvctl bench --lease-expiry refuses what cannot work with exit 2") {
  KvServer server;
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--lease-expiry", "10", "--lease-ttl", "1500ms"},
        {"--lease-expiry", "10", "--lease-ttl", "0s"}, {"--lease-expiry", "10", "--duration", "2s"},
        {"--lease-expiry", "10", "--requests", "10"}, {"--lease-expiry", "10", "--watchers", "3"},
        {"--lease-expiry", "10", "--lease-prefix", "a\"b"}, {"--lease-expiry=-1"}}) {
    std::vector<std::string> args = {"bench", "--addr", server.addr()};
    args.insert(args.end(), extra.begin(), extra.end());
    CAPTURE(extra.back());
    const CliResult r = RunCli(args);
    CHECK(r.exit_code == 2);
    CHECK(IsOneErrorLine(r.err));
    CHECK(r.out.empty());
  }
  // Nothing was granted by the refused runs.
  HttpClient http(server.port());
  CHECK(http.Request("GET", "/v1/lease").Json()["leases"].empty());
}

}  // namespace
}  // namespace kvctl::e2e
