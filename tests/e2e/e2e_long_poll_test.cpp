// Long poll (SPEC §6): GET /v1/kv/{key}?wait=DURATION&after=REV answers as
// a GET once the key's revision is past REV (404 if deleted), or 304 when
// the wait ends first; it holds no thread while it waits.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

std::string Poll(const std::string& key, const std::string& wait, uint64_t after) {
  return KeyPath(key) + "?wait=" + wait + "&after=" + std::to_string(after);
}

}  // namespace

TEST_CASE("a long poll answers once the key changes after REV, at once if it already has, 404 once deleted, 304 when the wait ends") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("k", "1").status == 201);  // 1
  REQUIRE(http.Put("k", "2").status == 200);  // 2

  // Already past REV: at once, as a GET.
  HttpResponse r = http.Request("GET", Poll("k", "30s", 1));
  CHECK(r.status == 200);
  CHECK(r.body == "2");
  CHECK(r.Header("ETag") == "\"2\"");
  CHECK(r.Header("X-Kvctl-Version") == "2");

  // Not yet: it waits for the change.
  auto waiting = std::async(std::launch::async, [&] {
    HttpClient other(server.port());
    return other.Request("GET", Poll("k", "30s", 2));
  });
  CHECK(waiting.wait_for(milliseconds(500)) == std::future_status::timeout);
  REQUIRE(http.Put("other", "x").status == 201);  // 3: another key does not answer it
  CHECK(waiting.wait_for(milliseconds(300)) == std::future_status::timeout);
  REQUIRE(http.Put("k", "4").status == 200);  // 4
  REQUIRE(waiting.wait_for(seconds(10)) == std::future_status::ready);
  r = waiting.get();
  CHECK(r.status == 200);
  CHECK(r.body == "4");
  CHECK(r.Header("ETag") == "\"4\"");
  CHECK(r.Header("X-Kvctl-Revision") == "4");

  // Deleted after REV: 404 with the revision the answer reflects.
  auto deleted = std::async(std::launch::async, [&] {
    HttpClient other(server.port());
    return other.Request("GET", Poll("k", "30s", 4));
  });
  std::this_thread::sleep_for(milliseconds(300));
  REQUIRE(http.Delete("k").status == 204);  // 5
  REQUIRE(deleted.wait_for(seconds(10)) == std::future_status::ready);
  r = deleted.get();
  CHECK(r.status == 404);
  CHECK(ErrorCode(r) == "no_such_key");
  CHECK(r.Header("X-Kvctl-Revision") == "5");
  // A key deleted since REV answers at once too (the history says so).
  CHECK(http.Request("GET", Poll("k", "30s", 4)).status == 404);

  // Nothing changes: 304 once the wait is over.
  const auto started = Clock::now();
  r = http.Request("GET", Poll("other", "700ms", 3));
  CHECK(r.status == 304);
  CHECK(Clock::now() - started >= milliseconds(600));
  CHECK(r.Header("X-Kvctl-Revision") == "5");
  // HEAD waits the same way.
  CHECK(http.Request("HEAD", Poll("other", "200ms", 3)).status == 304);
  CHECK(http.Request("HEAD", Poll("other", "200ms", 2)).status == 200);
}

TEST_CASE("long poll parameters: wait and after together, wait at most 5m, nothing else") {
  KvServer server;
  HttpClient http(server.port());
  for (const std::string query : {"?wait=30s", "?after=1", "?wait=6m&after=1", "?wait=30&after=1",
                                  "?wait=1s&after=x", "?wait=1s&after=1&x=2", "?x=1"}) {
    CAPTURE(query);
    const HttpResponse r = http.Request("GET", KeyPath("k") + query);
    CHECK(r.status == 400);
    CHECK(ErrorCode(r) == "bad_parameter");
  }
  CHECK(http.Request("PUT", KeyPath("k") + "?wait=1s&after=1", "v").status == 400);
  // A key that does not exist yet is waited for: it answers once created.
  CHECK(http.Request("GET", KeyPath("k") + "?wait=300ms&after=0").status == 304);
}

TEST_CASE("a long poll from before the retained history answers at once") {
  KvServer server({"--storage-segment-bytes", "4KiB", "--storage-history-retention", "0",
                   "--storage-compact-dead-percent", "0"});
  HttpClient http(server.port());
  const std::string value(300, 'v');
  for (int i = 1; i <= 200; ++i) REQUIRE(http.Put("k", std::to_string(i) + value).status / 100 == 2);
  REQUIRE(http.Delete("k").status == 204);
  REQUIRE(http.Put("j", "1").status == 201);
  REQUIRE(http.Request("POST", "/v1/admin/compact").Json()["compacted"] == true);
  REQUIRE(http.Request("GET", "/v1/watch?key=k&from=1").status == 410);
  // Whether k changed since revision 1 can no longer be told from the
  // history: the answer is what k is now, at once, not a 304 after 30 s.
  const auto started = Clock::now();
  const HttpResponse r = http.Request("GET", Poll("k", "30s", 1));
  CHECK(r.status == 404);
  CHECK(Clock::now() - started < seconds(20));
}

TEST_CASE("many long polls wait without a thread each, and SIGTERM answers them") {
  // More waiting polls than worker threads (--server-threads 2).
  KvServer server({"--server-threads", "2"});
  HttpClient http(server.port());
  REQUIRE(http.Put("k", "1").status == 201);
  constexpr int kPolls = 40;
  std::vector<std::unique_ptr<RawSocket>> polls;
  for (int i = 0; i < kPolls; ++i) {
    polls.push_back(std::make_unique<RawSocket>(server.port()));
    REQUIRE(polls.back()->Send("GET " + Poll("k", "60s", 1) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  std::this_thread::sleep_for(milliseconds(300));
  CHECK(Metric(http, "kvctl_watches_open") == kPolls);
  // Other requests are answered meanwhile.
  CHECK(http.Get("k").status == 200);
  REQUIRE(http.Put("k", "2").status == 200);
  for (int i = 0; i < kPolls / 2; ++i) {
    const std::string answer = polls[i]->ReadUntil(seconds(10), [](const std::string& got) {
      return got.find("\r\n\r\n2") != std::string::npos;
    });
    CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
  // The rest wait again (after 2); SIGTERM answers them, and the server exits 0.
  for (int i = kPolls / 2; i < kPolls; ++i) {
    (void)polls[i]->ReadUntil(seconds(10), [](const std::string& got) { return got.find("\r\n\r\n2") != std::string::npos; });
    REQUIRE(polls[i]->Send("GET " + Poll("k", "60s", 2) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  }
  std::this_thread::sleep_for(milliseconds(300));
  http.Close();
  const auto started = Clock::now();
  CHECK(server.Stop() == 0);
  CHECK(Clock::now() - started < seconds(8));
  for (int i = kPolls / 2; i < kPolls; ++i) {
    const std::string answer = polls[i]->ReadUntil(seconds(5), [](const std::string& got) {
      return got.find("\r\n\r\n") != std::string::npos;
    });
    CHECK(answer.rfind("HTTP/1.1 304 Not Modified\r\n", 0) == 0);
  }
}

}  // namespace kvctl::e2e
