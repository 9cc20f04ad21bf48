#include "tests/e2e/lease_harness.h"

#include <sstream>
#include <thread>

#include <doctest/doctest.h>

namespace kvctl::e2e {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

uint64_t Grant(HttpClient& http, int ttl) {
  const HttpResponse r = http.Request("POST", "/v1/lease", json{{"ttl", ttl}}.dump());
  REQUIRE(r.status == 200);
  const json j = r.Json();
  REQUIRE(j["id"].is_number_unsigned());
  CHECK(j["ttl"] == ttl);
  return j["id"].get<uint64_t>();
}

std::string LeaseQuery(uint64_t id) { return "?lease=" + std::to_string(id); }

HttpResponse PutWithLease(HttpClient& http, const std::string& key, const std::string& value, uint64_t lease) {
  return http.Request("PUT", KeyPath(key) + LeaseQuery(lease), value);
}

uint64_t RevisionOf(const HttpResponse& r) { return std::stoull(r.Header("X-Kvctl-Revision")); }

// The events of GET /v1/watch?<query> (HTTP/1.0: the body is plain lines up
// to the close) until `count` events came or `limit` passed.
std::vector<json> WatchEvents(int port, const std::string& query, size_t count, milliseconds limit) {
  RawSocket socket(port);
  REQUIRE(socket.Send("GET /v1/watch?" + query + " HTTP/1.0\r\nHost: x\r\n\r\n"));
  std::vector<json> events;
  auto parse = [&events](const std::string& raw) {
    events.clear();
    const size_t body = raw.find("\r\n\r\n");
    if (body == std::string::npos) return;
    std::istringstream lines(raw.substr(body + 4));
    for (std::string line; std::getline(lines, line);) {
      if (lines.eof()) break;  // not whole yet
      const json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("op")) events.push_back(j);
    }
  };
  const std::string raw = socket.ReadUntil(limit, [&](const std::string& r) {
    parse(r);
    return events.size() >= count;
  });
  parse(raw);
  return events;
}

// Polls GET key until it answers `status`; how long that took, or nullopt
// after `limit`.
std::optional<milliseconds> UntilStatus(HttpClient& http, const std::string& key, int status, milliseconds limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    if (http.Get(key).status == status) {
      return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return std::nullopt;
}

void CheckLocksTakeTurns(const std::vector<std::string>& addrs, const std::string& log) {
  std::vector<std::thread> runs;
  std::vector<int> codes(addrs.size(), -1);
  for (size_t n = 0; n < addrs.size(); ++n) {
    runs.emplace_back([&, n] {
      const std::string script =
          "echo start " + std::to_string(n) + " >> " + log + "; sleep 0.4; echo end " + std::to_string(n) + " >> " + log;
      codes[n] = RunCli({"lock", "job", "--addr", addrs[n], "--", "sh", "-c", script}).exit_code;
    });
  }
  for (std::thread& t : runs) t.join();
  CHECK(codes == std::vector<int>(addrs.size(), 0));
  std::istringstream lines(ReadFile(log));
  std::vector<std::string> all;
  for (std::string line; std::getline(lines, line);) all.push_back(line);
  REQUIRE(all.size() == 2 * addrs.size());
  for (size_t i = 0; i < all.size(); i += 2) {
    REQUIRE(all[i].starts_with("start "));
    CHECK(all[i + 1] == "end " + all[i].substr(6));
  }
}

}  // namespace kvctl::e2e
