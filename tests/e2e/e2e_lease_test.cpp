// Leases (SPEC §6) on the real server over real HTTP: a revoke deletes all
// of a lease's keys in one revision, an unkept lease expires, keepalives
// hold it, a restart never expires one early, PUT ?lease= refusals, the
// `kvctl lease` and `put --lease/--ttl` commands, and `kvctl lock`
// serializing commands and surviving a holder killed with SIGKILL.
//
// Timings are generous (a shared, noisy machine) but each bound can fail.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"
#include "tests/e2e/lease_harness.h"

namespace kvctl::e2e {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

TEST_CASE("a revoked lease deletes all its keys in one revision, and is 404 after") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t id = Grant(http, 60);
  const uint64_t before = RevisionOf(http.Request("GET", "/v1/lease/" + std::to_string(id)));
  REQUIRE(PutWithLease(http, "r/a", "1", id).status == 201);
  REQUIRE(PutWithLease(http, "r/b", "2", id).status == 201);
  REQUIRE(http.Put("r/other", "3").status == 201);
  const HttpResponse got = http.Get("r/a");
  CHECK(got.Header("X-Kvctl-Lease") == std::to_string(id));

  const HttpResponse shown = http.Request("GET", "/v1/lease/" + std::to_string(id));
  REQUIRE(shown.status == 200);
  CHECK(shown.Json()["keys"] == json::array({json{{"key", "r/a"}}, json{{"key", "r/b"}}}));
  CHECK(shown.Json()["remaining"].get<int64_t>() > 50);
  bool listed = false;
  const json leases = http.Request("GET", "/v1/lease").Json();  // held: the loop reads into it
  for (const json& l : leases["leases"]) listed |= l["id"] == id;
  CHECK(listed);

  const HttpResponse revoked = http.Request("DELETE", "/v1/lease/" + std::to_string(id));
  REQUIRE(revoked.status == 200);
  const uint64_t revision = revoked.Json()["revision"].get<uint64_t>();
  CHECK(revoked.Json()["id"] == id);
  CHECK(RevisionOf(revoked) == revision);
  CHECK(http.Get("r/a").status == 404);
  CHECK(http.Get("r/b").status == 404);
  CHECK(http.Get("r/other").status == 200);

  const std::vector<json> events = WatchEvents(server.port(), "prefix=r%2F&from=" + std::to_string(before + 1), 5,
                                               seconds(3));
  std::vector<json> deletes;
  for (const json& e : events) {
    if (e["op"] == "delete") deletes.push_back(e);
  }
  REQUIRE(deletes.size() == 2);
  CHECK(deletes[0]["revision"] == revision);
  CHECK(deletes[1]["revision"] == revision);
  CHECK(deletes[0]["key"] == "r/a");
  CHECK(deletes[1]["key"] == "r/b");

  CHECK(http.Request("GET", "/v1/lease/" + std::to_string(id)).status == 404);
  CHECK(ErrorCode(http.Request("DELETE", "/v1/lease/" + std::to_string(id))) == "no_such_lease");
  CHECK(ErrorCode(http.Request("POST", "/v1/lease/" + std::to_string(id) + "/keepalive")) == "no_such_lease");
  CHECK(Metric(http, "kvctl_lease_revokes_total") == 1);
  CHECK(Metric(http, "kvctl_lease_grants_total") == 1);
}

TEST_CASE("a lease not kept alive expires: its key is deleted within the TTL and a watch sees it") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t id = Grant(http, 1);
  const HttpResponse put = PutWithLease(http, "e/k", "v", id);
  REQUIRE(put.status == 201);
  const auto gone = UntilStatus(http, "e/k", 404, milliseconds(2500));
  REQUIRE(gone.has_value());
  const std::vector<json> events = WatchEvents(
      server.port(), "key=e%2Fk&from=" + std::to_string(*put.EtagRevision() + 1), 1, seconds(3));
  REQUIRE(events.size() == 1);
  CHECK(events[0]["op"] == "delete");
  CHECK(http.Request("GET", "/v1/lease/" + std::to_string(id)).status == 404);
  CHECK(Metric(http, "kvctl_lease_expiries_total") == 1);
}

TEST_CASE("keepalives hold a lease past its TTL, and it expires once they stop") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t id = Grant(http, 2);
  REQUIRE(PutWithLease(http, "k/a", "v", id).status == 201);
  const auto start = Clock::now();
  while (Clock::now() - start < seconds(4)) {
    const HttpResponse renewed = http.Request("POST", "/v1/lease/" + std::to_string(id) + "/keepalive");
    REQUIRE(renewed.status == 200);
    CHECK(renewed.Json()["ttl"] == 2);
    std::this_thread::sleep_for(milliseconds(500));
  }
  CHECK(http.Get("k/a").status == 200);
  CHECK(Metric(http, "kvctl_lease_keepalives_total") >= 6);
  CHECK(Metric(http, "kvctl_leases") == 1);
  const auto gone = UntilStatus(http, "k/a", 404, milliseconds(3500));
  CHECK(gone.has_value());
}

TEST_CASE("a restart never expires a lease early: it gets its full TTL again") {
  KvServer server;
  std::optional<HttpClient> http(std::in_place, server.port());
  const uint64_t id = Grant(*http, 3);
  REQUIRE(PutWithLease(*http, "s/a", "v", id).status == 201);
  http->Close();
  std::this_thread::sleep_for(milliseconds(1500));
  server.Restart();
  const auto restarted = Clock::now();
  http.emplace(server.port());
  CHECK(http->Get("s/a").status == 200);
  const HttpResponse shown = http->Request("GET", "/v1/lease/" + std::to_string(id));
  REQUIRE(shown.status == 200);
  CHECK(shown.Json()["remaining"].get<int64_t>() >= 2);
  // Granted 1.5 s + a restart ago with TTL 3: were the clock not started
  // again, it would be gone 1.5 s from now.
  std::this_thread::sleep_for(milliseconds(2000) - (Clock::now() - restarted));
  CHECK(http->Get("s/a").status == 200);
  const auto gone = UntilStatus(*http, "s/a", 404, milliseconds(3000));
  CHECK(gone.has_value());
}

TEST_CASE("PUT with a lease that does not exist is 404 no_such_lease, with one that is not a number 400") {
  KvServer server;
  HttpClient http(server.port());
  const HttpResponse missing = http.Request("PUT", KeyPath("p/a") + "?lease=12345", "v");
  CHECK(missing.status == 404);
  CHECK(ErrorCode(missing) == "no_such_lease");
  CHECK(missing.HasHeader("X-Kvctl-Revision"));
  CHECK(http.Get("p/a").status == 404);
  const HttpResponse bad = http.Request("PUT", KeyPath("p/a") + "?lease=abc", "v");
  CHECK(bad.status == 400);
  CHECK(ErrorCode(bad) == "bad_parameter");
  CHECK(ErrorCode(http.Request("PUT", KeyPath("p/a") + "?other=1", "v")) == "bad_parameter");
  CHECK(ErrorCode(http.Request("POST", "/v1/lease", "{\"ttl\":0}")) == "bad_ttl");
  CHECK(ErrorCode(http.Request("POST", "/v1/lease", "{\"ttl\":31536001}")) == "bad_ttl");
  CHECK(ErrorCode(http.Request("GET", "/v1/lease/xyz")) == "bad_parameter");
  CHECK(http.Request("GET", "/v1/lease/99999").status == 404);
  CHECK(http.Request("PUT", "/v1/lease").status == 405);
}

TEST_CASE("kvctl lease grant, show, list, keepalive --once, revoke, and put --lease and --ttl") {
  KvServer server;
  const std::string addr = server.addr();
  const CliResult granted = RunCli({"lease", "grant", "1m", "--addr", addr});
  REQUIRE(granted.exit_code == 0);
  const std::string id = granted.out.substr(0, granted.out.find('\n'));
  REQUIRE(!id.empty());
  REQUIRE(RunCli({"put", "c/a", "1", "--lease", id, "--addr", addr}).exit_code == 0);
  const CliResult shown = RunCli({"lease", "show", id, "--addr", addr});
  CHECK(shown.exit_code == 0);
  CHECK(shown.out.find("ttl 60\n") != std::string::npos);
  CHECK(shown.out.find("key c/a\n") != std::string::npos);
  const CliResult shown_json = RunCli({"lease", "show", id, "-o", "json", "--addr", addr});
  CHECK(json::parse(shown_json.out)["keys"][0]["key"] == "c/a");
  const CliResult listed = RunCli({"lease", "list", "--addr", addr});
  CHECK(listed.out.starts_with(id + " ttl 60 remaining "));
  const CliResult renewed = RunCli({"lease", "keepalive", id, "--once", "-o", "json", "--addr", addr});
  CHECK(renewed.exit_code == 0);
  CHECK(json::parse(renewed.out)["ttl"] == 60);
  CHECK(RunCli({"lease", "revoke", id, "--addr", addr}).exit_code == 0);
  CHECK(RunCli({"get", "c/a", "--addr", addr}).exit_code == 1);
  const CliResult gone = RunCli({"lease", "show", id, "--addr", addr});
  CHECK(gone.exit_code == 1);
  CHECK(RunCli({"lease", "keepalive", id, "--addr", addr}).exit_code == 1);
  CHECK(RunCli({"put", "c/b", "1", "--lease", id, "--addr", addr}).exit_code == 1);
  CHECK(RunCli({"lease", "grant", "0", "--addr", addr}).exit_code == 2);

  const CliResult own = RunCli({"put", "c/t", "v", "--ttl", "1", "-o", "json", "--addr", addr});
  REQUIRE(own.exit_code == 0);
  const uint64_t own_lease = json::parse(own.out)["lease"].get<uint64_t>();
  CHECK(own_lease != 0);
  const CliResult got = RunCli({"get", "c/t", "-o", "json", "--addr", addr});
  CHECK(json::parse(got.out)["lease"] == own_lease);
  const CliResult own_text = RunCli({"put", "c/u", "v", "--ttl", "30s", "--addr", addr});
  CHECK(own_text.err.starts_with("lease "));
  HttpClient http(server.port());
  CHECK(UntilStatus(http, "c/t", 404, milliseconds(3000)).has_value());
}

TEST_CASE("kvctl lock runs commands started at once one at a time, and exits with the command's status") {
  KvServer server;
  TempDir tmp;
  CheckLocksTakeTurns({server.addr(), server.addr(), server.addr()}, (tmp / "log").string());
  CHECK(RunCli({"lock", "job", "--addr", server.addr(), "--", "sh", "-c", "exit 7"}).exit_code == 7);
  HttpClient http(server.port());
  CHECK(http.ListAll("__lock/").empty());  // every lease revoked, every key gone
  CHECK(http.Request("GET", "/v1/lease").Json()["leases"].empty());
}

TEST_CASE("a kvctl lock killed with SIGKILL while holding the lock lets the next waiter in after the TTL") {
  KvServer server;
  TempDir tmp;
  const std::string holder_pid = (tmp / "holder").string();
  const std::string got = (tmp / "got").string();
  const std::string sleep_pid = (tmp / "sleep").string();
  std::thread holder([&] {
    RunCli({"lock", "crash", "--ttl", "2", "--addr", server.addr(), "--", "sh", "-c",
            "echo $$ > " + sleep_pid + "; echo $PPID > " + holder_pid + "; exec sleep 30 > /dev/null 2>&1"},
           {.limit = seconds(60)});
  });
  const auto start = Clock::now();
  while (!std::filesystem::exists(holder_pid) || ReadFile(holder_pid).empty()) {
    REQUIRE(Clock::now() - start < seconds(10));
    std::this_thread::sleep_for(milliseconds(50));
  }
  const pid_t kvctl_pid = std::stoi(ReadFile(holder_pid));
  CliResult waiter;
  std::thread second([&] {
    waiter = RunCli({"lock", "crash", "--ttl", "2", "--addr", server.addr(), "--", "sh", "-c", "echo ok > " + got});
  });
  std::this_thread::sleep_for(milliseconds(1500));
  CHECK(!std::filesystem::exists(got));  // held: the waiter waits
  REQUIRE(::kill(kvctl_pid, SIGKILL) == 0);
  const auto killed = Clock::now();
  second.join();
  const auto took = Clock::now() - killed;
  CHECK(waiter.exit_code == 0);
  CHECK(ReadFile(got) == "ok\n");
  CHECK(took < seconds(2 + 2 + 1));
  // The holder's command outlives it (kvctl died without passing anything on).
  ::kill(std::stoi(ReadFile(sleep_pid)), SIGKILL);
  holder.join();
}

}  // namespace
}  // namespace kvctl::e2e
