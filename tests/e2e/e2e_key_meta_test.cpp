// Key metadata in answers (SPEC §6): GET/HEAD headers, listing fields, and
// X-Kvctl-Revision as the revision a read reflects.
#include <atomic>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {

TEST_CASE("GET and HEAD carry the key's create revision, version and lease, and listing items carry them as fields") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("m/a", "1").status == 201);  // 1
  REQUIRE(http.Put("m/a", "2").status == 200);  // 2
  REQUIRE(http.Put("m/b", "x").status == 201);  // 3
  for (const std::string method : {"GET", "HEAD"}) {
    CAPTURE(method);
    const HttpResponse r = http.Request(method, KeyPath("m/a"));
    REQUIRE(r.status == 200);
    CHECK(r.Header("ETag") == "\"2\"");
    CHECK(r.Header("X-Kvctl-Create-Revision") == "1");
    CHECK(r.Header("X-Kvctl-Version") == "2");
    CHECK(r.Header("X-Kvctl-Lease") == "0");
    CHECK(r.Header("X-Kvctl-Revision") == "3");
  }
  // Deleted and created again: a new life.
  REQUIRE(http.Delete("m/a").status == 204);   // 4
  REQUIRE(http.Put("m/a", "3").status == 201);  // 5
  HttpResponse r = http.Get("m/a");
  CHECK(r.Header("X-Kvctl-Create-Revision") == "5");
  CHECK(r.Header("X-Kvctl-Version") == "1");
  // A missing key: 404, with the revision the answer reflects.
  r = http.Get("m/none");
  CHECK(r.status == 404);
  CHECK(r.Header("X-Kvctl-Revision") == "5");
  CHECK(!r.HasHeader("X-Kvctl-Version"));

  const HttpResponse list = http.Request("GET", "/v1/kv?prefix=m%2F");
  REQUIRE(list.status == 200);
  CHECK(list.Header("X-Kvctl-Revision") == "5");
  const nlohmann::json items = list.Json()["items"];
  REQUIRE(items.size() == 2);
  CHECK(items[0]["key"] == "m/a");
  CHECK(items[0]["revision"] == 5);
  CHECK(items[0]["create_revision"] == 5);
  CHECK(items[0]["version"] == 1);
  CHECK(items[0]["lease"] == 0);
  CHECK(items[1]["key"] == "m/b");
  CHECK(items[1]["create_revision"] == 3);
  CHECK(items[1]["version"] == 1);
  const nlohmann::json keys_only = http.Request("GET", "/v1/kv?prefix=m%2F&keys_only=1").Json()["items"];
  CHECK(keys_only[1]["version"] == 1);
  CHECK(!keys_only[1].contains("value"));
}

// While one writer changes only key k, every revision is a change of k: the
// revision a read of k reflects is exactly k's revision. Taken after the
// read (as before), X-Kvctl-Revision could name a change the value does
// not show, and a watch from the revision after it would miss that change.
TEST_CASE("X-Kvctl-Revision is the revision a read reflects, not a later one, under a concurrent writer") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("hot", "0").status == 201);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    HttpClient w(server.port());
    for (int i = 1; !stop; ++i) (void)w.TryRequest("PUT", KeyPath("hot"), std::to_string(i));
  });
  int mismatches = 0;
  for (int i = 0; i < 400; ++i) {
    const HttpResponse r = http.Get("hot");
    REQUIRE(r.status == 200);
    if (r.Header("X-Kvctl-Revision") != std::to_string(*r.EtagRevision())) ++mismatches;
    const HttpResponse list = http.Request("GET", "/v1/kv?prefix=hot");
    REQUIRE(list.status == 200);
    if (list.Header("X-Kvctl-Revision") != std::to_string(list.Json()["items"][0]["revision"].get<uint64_t>())) {
      ++mismatches;
    }
  }
  stop = true;
  writer.join();
  CHECK(mismatches == 0);
}

}  // namespace kvctl::e2e
