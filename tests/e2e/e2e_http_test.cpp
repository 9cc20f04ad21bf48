// End-to-end tests of the HTTP API (SPEC §1, §2) against a real `kvctl serve`.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <sstream>
#include <map>
#include <set>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMiB = 1024 * 1024;

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

std::string AllBytes() {
  std::string out;
  for (int i = 0; i < 256; ++i) out.push_back(static_cast<char>(i));
  return out;
}

uint64_t LogBytes(const fs::path& data_dir) {
  uint64_t total = 0;
  for (const auto& seg : Segments(data_dir)) total += fs::file_size(seg);
  return total;
}

// PUTs and checks the answer's shape; returns the new revision.
uint64_t PutOk(HttpClient& http, const std::string& key, const std::string& value) {
  HttpResponse r = http.Put(key, value);
  REQUIRE_MESSAGE((r.status == 200 || r.status == 201),
                  "PUT " << PercentEncode(key) << " -> " << r.status << " " << r.body);
  nlohmann::json j = r.Json();
  REQUIRE(j.contains("revision"));
  REQUIRE(j["revision"].is_number_unsigned());
  uint64_t rev = j["revision"].get<uint64_t>();
  CHECK(r.EtagRevision() == rev);
  return rev;
}

// A PUT of a brand-new key takes exactly the next revision: proof that nothing
// in between took one.
void CheckNextRevisionIs(HttpClient& http, uint64_t expected) {
  HttpResponse r = http.Put("probe/next-revision", "p");
  REQUIRE(r.status == 201);
  CHECK_MESSAGE(r.Json()["revision"].get<uint64_t>() == expected,
                "a refused request took a revision");
}

// Sends raw bytes on a fresh connection and reads until the response headers
// (and a Content-Length body) arrived, the peer closed, or `limit_ms` passed.
std::string RawExchange(int port, const std::string& request, int limit_ms) {
  RawSocket socket(port);
  socket.Send(request);  // the server may refuse before taking it all
  return socket.ReadUntil(std::chrono::milliseconds(limit_ms), [](const std::string& got) {
    const size_t end = got.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = got.substr(0, end);
    std::transform(head.begin(), head.end(), head.begin(), ::tolower);
    const size_t cl = head.find("content-length:");
    const size_t want = cl == std::string::npos ? 0 : std::stoul(head.substr(cl + 15));
    return got.size() >= end + 4 + want;
  });
}

int RawStatus(const std::string& response) {
  // "HTTP/1.1 413 Payload Too Large"
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

}  // namespace

TEST_CASE("values round-trip byte for byte over HTTP: NUL, newlines, invalid UTF-8, empty, 1 MiB") {
  KvServer server;
  HttpClient http(server.port());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"nul", S("a\0b\0\0c", 6)},
      {"only-nul", S("\0", 1)},
      {"newlines", "line1\nline2\r\n\n"},
      {"tab", "a\tb\t"},
      {"invalid-utf8", "\xff\xfe\x80 \xc3"},
      {"every-byte", AllBytes()},
      {"one-mib-at-limit", RandomBytes(kMiB, 7)},
  };
  for (const auto& [name, value] : cases) {
    CAPTURE(name);
    const std::string key = "val/" + name;
    HttpResponse put = http.Put(key, value);
    CHECK(put.status == 201);
    nlohmann::json j = put.Json();
    CHECK(j["key"] == key);
    CHECK(j["created"] == true);
    REQUIRE(j["revision"].is_number_unsigned());
    const uint64_t rev = j["revision"].get<uint64_t>();
    CHECK(put.EtagRevision() == rev);

    HttpResponse get = http.Get(key);
    CHECK(get.status == 200);
    CHECK(get.body.size() == value.size());
    CHECK_MESSAGE(get.body == value, "GET returned different bytes");
    CHECK(get.Header("Content-Type").rfind("application/octet-stream", 0) == 0);
    CHECK(get.EtagRevision() == rev);

    HttpResponse head = http.Head(key);
    CHECK(head.status == 200);
    CHECK(head.Header("Content-Length") == std::to_string(value.size()));
    CHECK(head.EtagRevision() == rev);
    CHECK(head.body.empty());
  }
  // The same bytes come back through the listing (base64).
  auto items = http.ListAll("val/");
  CHECK(items.size() == cases.size());
  std::map<std::string, std::string> listed;
  for (const auto& item : items) listed[ItemKey(item)] = Base64Decode(item["value"].get<std::string>());
  for (const auto& [name, value] : cases) {
    CAPTURE(name);
    CHECK(listed["val/" + name] == value);
  }
}

TEST_CASE("keys with slash, percent, space, unicode, ?, # and invalid UTF-8 round-trip over HTTP") {
  KvServer server;
  HttpClient http(server.port());
  const std::vector<std::string> keys = {
      "app/db/url", "100%",       "a b",           "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87/\xc3\xbc",
      "what?x=1&y", "frag#ment",  "a%2Fb",         "+plus+",
      "..",         "/leading",   "trailing/",     "\xff\xfe",
      "tab\there",  "nl\nkey",    std::string(1024, 'k'),
  };
  std::map<std::string, uint64_t> revs;
  for (const auto& key : keys) {
    CAPTURE(PercentEncode(key).substr(0, 80));
    HttpResponse put = http.Put(key, "v:" + key);
    REQUIRE(put.status == 201);
    revs[key] = put.Json()["revision"].get<uint64_t>();
    HttpResponse get = http.Get(key);
    CHECK(get.status == 200);
    CHECK(get.body == "v:" + key);
  }
  // Every key is listed once, under its exact bytes; a key that is not UTF-8
  // carries them in key_base64.
  auto items = http.ListAll("");
  std::multiset<std::string> listed;
  for (const auto& item : items) {
    listed.insert(ItemKey(item));
    CHECK(item["revision"].get<uint64_t>() == revs[ItemKey(item)]);
    if (ItemKey(item) == "\xff\xfe") {
      CHECK(item.contains("key_base64"));
      CHECK(item["key"].is_string());
    }
  }
  CHECK(listed.size() == keys.size());
  for (const auto& key : keys) {
    CAPTURE(PercentEncode(key).substr(0, 80));
    CHECK(listed.count(key) == 1);
  }
  // "/" is an ordinary byte: an unencoded path names the same key as %2F.
  HttpResponse raw = http.Request("PUT", "/v1/kv/raw/slash/key", "raw");
  CHECK(raw.status == 201);
  CHECK(http.Get("raw/slash/key").body == "raw");
  CHECK(http.Request("GET", "/v1/kv/app/db/url").body == "v:app/db/url");
  // Percent-encoding is decoded exactly once, hex in either case; "+" in a
  // path is a plus, not a space.
  CHECK(http.Request("PUT", "/v1/kv/lower%2fhex", "l").status == 201);
  CHECK(http.Get("lower/hex").body == "l");
  CHECK(http.Request("PUT", "/v1/kv/%41%42", "ab").status == 201);
  CHECK(http.Get("AB").body == "ab");
  CHECK(http.Request("PUT", "/v1/kv/one+two", "p").status == 201);
  CHECK(http.Get("one+two").body == "p");
  CHECK(http.Get("one two").status == 404);
  CHECK(http.Request("PUT", "/v1/kv/double%2541", "d").status == 201);
  CHECK(http.Get("double%41").body == "d");
  CHECK(http.Get("doubleA").status == 404);
}

TEST_CASE("PUT of the value a key already holds keeps its revision and writes no log record") {
  KvServer server;
  HttpClient http(server.port());
  HttpResponse first = http.Put("idem", "same");
  REQUIRE(first.status == 201);
  const uint64_t rev = first.Json()["revision"].get<uint64_t>();
  const uint64_t log_before = LogBytes(server.data_dir());
  CHECK(log_before > 0);

  for (int i = 0; i < 3; ++i) {
    HttpResponse again = http.Put("idem", "same");
    CHECK(again.status == 200);
    nlohmann::json j = again.Json();
    CHECK(j["revision"].get<uint64_t>() == rev);
    CHECK(j["created"] == false);
    CHECK(again.EtagRevision() == rev);
  }
  CHECK(http.Get("idem").EtagRevision() == rev);
  CHECK_MESSAGE(LogBytes(server.data_dir()) == log_before, "an unchanged PUT grew the log");

  // A changed value is a change: 200, next revision.
  HttpResponse changed = http.Put("idem", "different");
  CHECK(changed.status == 200);
  CHECK(changed.Json()["revision"].get<uint64_t>() == rev + 1);
  CHECK(changed.Json()["created"] == false);
  CheckNextRevisionIs(http, rev + 2);
}

TEST_CASE("DELETE of a missing key answers 204 and takes no revision") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "present", "v");
  const uint64_t log_before = LogBytes(server.data_dir());

  for (int i = 0; i < 3; ++i) CHECK(http.Delete("never-existed").status == 204);
  CHECK_MESSAGE(LogBytes(server.data_dir()) == log_before, "deleting a missing key grew the log");
  const uint64_t r2 = PutOk(http, "second", "v");
  CHECK(r2 == r1 + 1);

  // Deleting an existing key is a change (next revision); repeating it is not.
  CHECK(http.Delete("present").status == 204);
  HttpResponse gone = http.Get("present");
  CHECK(gone.status == 404);
  CHECK(ErrorCode(gone) == "no_such_key");
  CHECK(http.Head("present").status == 404);
  CHECK(http.Delete("present").status == 204);
  CheckNextRevisionIs(http, r2 + 2);
}

TEST_CASE("If-Match and If-None-Match make conditional writes over HTTP") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "cas", "v1");
  const std::string stale = "\"" + std::to_string(r1) + "\"";

  SUBCASE("If-Match with the wrong revision changes nothing") {
    HttpResponse bad = http.Put("cas", "v2", {{"If-Match", "\"" + std::to_string(r1 + 100) + "\""}});
    CHECK(bad.status == 412);
    CHECK(ErrorCode(bad) == "precondition_failed");
    HttpResponse get = http.Get("cas");
    CHECK(get.body == "v1");
    CHECK(get.EtagRevision() == r1);
    CheckNextRevisionIs(http, r1 + 1);
  }
  SUBCASE("If-Match with the current revision applies; then that revision is stale") {
    HttpResponse ok = http.Put("cas", "v2", {{"If-Match", stale}});
    CHECK(ok.status == 200);
    const uint64_t r2 = ok.Json()["revision"].get<uint64_t>();
    CHECK(r2 == r1 + 1);
    HttpResponse late = http.Put("cas", "v3", {{"If-Match", stale}});
    CHECK(late.status == 412);
    CHECK(ErrorCode(late) == "precondition_failed");
    CHECK(http.Get("cas").body == "v2");
    CheckNextRevisionIs(http, r2 + 1);
  }
  SUBCASE("If-Match on a missing key fails and creates nothing") {
    HttpResponse bad = http.Put("absent", "x", {{"If-Match", stale}});
    CHECK(bad.status == 412);
    CHECK(http.Get("absent").status == 404);
  }
  SUBCASE("DELETE with If-Match deletes only at the given revision") {
    HttpResponse bad = http.Delete("cas", {{"If-Match", "\"" + std::to_string(r1 + 7) + "\""}});
    CHECK(bad.status == 412);
    CHECK(ErrorCode(bad) == "precondition_failed");
    CHECK(http.Get("cas").body == "v1");
    CHECK(http.Delete("cas", {{"If-Match", stale}}).status == 204);
    CHECK(http.Get("cas").status == 404);
    CheckNextRevisionIs(http, r1 + 2);
  }
  SUBCASE("If-None-Match: * creates only") {
    HttpResponse created = http.Put("fresh", "first", {{"If-None-Match", "*"}});
    CHECK(created.status == 201);
    const uint64_t rf = created.Json()["revision"].get<uint64_t>();
    HttpResponse again = http.Put("fresh", "second", {{"If-None-Match", "*"}});
    CHECK(again.status == 412);
    CHECK(ErrorCode(again) == "precondition_failed");
    HttpResponse existing = http.Put("cas", "other", {{"If-None-Match", "*"}});
    CHECK(existing.status == 412);
    CHECK(http.Get("fresh").body == "first");
    CHECK(http.Get("cas").body == "v1");
    CheckNextRevisionIs(http, rf + 1);
  }
}

TEST_CASE("If-Match compares the ETag exactly, and on two lines is judged as one list") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "etag", "v1");
  const std::string rev = std::to_string(r1);
  // Zero-padded: a well-formed tag that is not this key's ETag.
  HttpResponse padded = http.Put("etag", "padded", {{"If-Match", "\"0" + rev + "\""}});
  CHECK(padded.status == 412);
  CHECK(ErrorCode(padded) == "precondition_failed");
  // Unquoted: not an entity tag at all.
  HttpResponse bare = http.Put("etag", "bare", {{"If-Match", rev}});
  CHECK(bare.status == 400);
  CHECK(ErrorCode(bare) == "bad_precondition");
  // Two fields are one list of two tags: refused as the one-line list is,
  // even though the first matches.
  HttpResponse two = http.Put("etag", "two", {{"If-Match", "\"" + rev + "\""}, {"If-Match", "\"999\""}});
  CHECK(two.status == 400);
  CHECK(http.Put("etag", "one-line", {{"If-Match", "\"" + rev + "\", \"999\""}}).status == 400);
  CHECK(http.Get("etag").body == "v1");
  CheckNextRevisionIs(http, r1 + 1);
  CHECK(http.Put("etag", "v2", {{"If-Match", "\"" + rev + "\""}}).status == 200);
}

TEST_CASE("concurrent If-Match read-modify-write loops never lose an update") {
  KvServer server;
  {
    HttpClient http(server.port());
    REQUIRE(http.Put("counter", "0").status == 201);
  }
  constexpr int kThreads = 4;
  constexpr int kIncrements = 40;      // successful increments per thread
  constexpr int kMaxAttempts = 4000;   // bound on tries per thread
  std::vector<int> done(kThreads, 0);
  std::vector<std::string> trouble(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient http(server.port());
      for (int attempt = 0; attempt < kMaxAttempts && done[t] < kIncrements; ++attempt) {
        auto get = http.TryRequest("GET", KeyPath("counter"));
        if (!get || get->status != 200 || !get->EtagRevision()) {
          trouble[t] = "GET failed";
          return;
        }
        const std::string next = std::to_string(std::stoll(get->body) + 1);
        auto put = http.TryRequest("PUT", KeyPath("counter"), next,
                                   {{"If-Match", get->Header("ETag")}});
        if (!put) {
          trouble[t] = "PUT got no answer";
          return;
        }
        if (put->status == 200) {
          ++done[t];
        } else if (put->status != 412) {
          trouble[t] = "PUT answered " + std::to_string(put->status) + " " + put->body;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  int total = 0;
  for (int t = 0; t < kThreads; ++t) {
    CHECK_MESSAGE(trouble[t].empty(), trouble[t]);
    total += done[t];
  }
  CHECK(total == kThreads * kIncrements);
  HttpClient http(server.port());
  HttpResponse final_value = http.Get("counter");
  CHECK_MESSAGE(final_value.body == std::to_string(total),
                "counter is " << final_value.body << " after " << total
                              << " successful conditional increments");
  CHECK(final_value.EtagRevision() == uint64_t(total + 1));
}

TEST_CASE("of concurrent create-only PUTs of one key exactly one succeeds") {
  KvServer server;
  constexpr int kThreads = 8;
  for (int round = 0; round < 10; ++round) {
    CAPTURE(round);
    const std::string key = "race/" + std::to_string(round);
    std::vector<int> status(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        HttpClient http(server.port());
        auto r = http.TryRequest("PUT", KeyPath(key), "writer " + std::to_string(t),
                                 {{"If-None-Match", "*"}});
        status[t] = r ? r->status : -1;
      });
    }
    for (auto& th : threads) th.join();
    int winners = 0, winner = -1;
    for (int t = 0; t < kThreads; ++t) {
      CHECK((status[t] == 201 || status[t] == 412));
      if (status[t] == 201) {
        ++winners;
        winner = t;
      }
    }
    CHECK(winners == 1);
    HttpClient http(server.port());
    CHECK(http.Get(key).body == "writer " + std::to_string(winner));
  }
}

TEST_CASE("listing pages through every key once in byte order and filters by prefix") {
  KvServer server;
  HttpClient http(server.port());
  // 250 numbered keys written in a scrambled order, plus keys whose byte order
  // differs from naive collation, plus neighbours just outside the prefix.
  std::vector<std::string> inside;
  for (int i = 0; i < 250; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "page/%03d", (i * 97) % 250);
    inside.push_back(buf);
  }
  for (std::string k :
       {"page/A", "page/a", "page/\x7f", "page/\xc3\xa9", "page/\xff\x01", "page/\xff\x02", "page/"}) {
    inside.push_back(k);
  }
  const std::vector<std::string> outside = {"page", "pagd/x", "pagf", "page0", "pagE/x", "Page/x"};
  for (const auto& k : inside) PutOk(http, k, "value of " + k);
  for (const auto& k : outside) PutOk(http, k, "outside");
  std::vector<std::string> expected = inside;
  // std::string orders as unsigned bytes (char_traits<char>::lt), like memcmp.
  std::sort(expected.begin(), expected.end());
  REQUIRE(std::string("\xff") > std::string("a"));

  SUBCASE("limit=100 with after= walks 257 keys in three pages") {
    std::vector<std::string> seen;
    std::optional<std::string> after;
    int pages = 0;
    while (pages < 10) {
      std::string path = "/v1/kv?prefix=" + PercentEncode("page/") + "&limit=100";
      if (after) path += "&after=" + PercentEncode(*after);
      HttpResponse r = http.Request("GET", path);
      REQUIRE(r.status == 200);
      CHECK(r.Header("Content-Type").find("application/json") != std::string::npos);
      nlohmann::json j = r.Json();
      ++pages;
      REQUIRE(j["items"].is_array());
      CHECK(j["items"].size() <= 100);
      for (const auto& item : j["items"]) {
        const std::string key = ItemKey(item);
        seen.push_back(key);
        CHECK(Base64Decode(item["value"].get<std::string>()) == "value of " + key);
        CHECK(item["revision"].is_number_unsigned());
      }
      REQUIRE(j.contains("next"));
      if (j["next"].is_null()) break;
      const std::string next = j.contains("next_base64")
                                   ? Base64Decode(j["next_base64"].get<std::string>())
                                   : j["next"].get<std::string>();
      CHECK(j["items"].size() == 100);
      CHECK(next == seen.back());  // next is the last key returned
      after = next;
    }
    CHECK(pages == 3);
    CHECK(seen.size() == expected.size());
    CHECK_MESSAGE(seen == expected, "keys not listed exactly once each in byte order");
  }
  SUBCASE("the default limit is 100 and keys_only=1 drops values") {
    HttpResponse r = http.Request("GET", "/v1/kv?prefix=page%2F&keys_only=1");
    REQUIRE(r.status == 200);
    nlohmann::json j = r.Json();
    REQUIRE(j["items"].is_array());
    CHECK(j["items"].size() == 100);
    CHECK(!j["next"].is_null());
    for (const auto& item : j["items"]) {
      CHECK_FALSE(item.contains("value"));
      CHECK(item.contains("revision"));
    }
    CHECK(ItemKey(j["items"][0]) == expected[0]);
  }
  SUBCASE("a page ending on a key that is not UTF-8 gives its exact bytes in next_base64") {
    HttpResponse r = http.Request(
        "GET", "/v1/kv?prefix=page%2F&limit=1&after=" + PercentEncode("page/\xc3\xa9"));
    REQUIRE(r.status == 200);
    nlohmann::json j = r.Json();
    REQUIRE(j["items"].size() == 1);
    CHECK(ItemKey(j["items"][0]) == "page/\xff\x01");
    CHECK(j["items"][0].contains("key_base64"));
    REQUIRE(!j["next"].is_null());
    REQUIRE(j.contains("next_base64"));
    CHECK(Base64Decode(j["next_base64"].get<std::string>()) == "page/\xff\x01");
    // Continuing from those bytes gives the one key after it, and the end.
    HttpResponse rest = http.Request(
        "GET", "/v1/kv?prefix=page%2F&after=" +
                   PercentEncode(Base64Decode(j["next_base64"].get<std::string>())));
    REQUIRE(rest.status == 200);
    nlohmann::json k = rest.Json();
    REQUIRE(k["items"].size() == 1);
    CHECK(ItemKey(k["items"][0]) == "page/\xff\x02");
    CHECK(k["next"].is_null());
  }
  SUBCASE("limit=10000 returns everything in one page") {
    HttpResponse r = http.Request("GET", "/v1/kv?prefix=page%2F&limit=10000");
    REQUIRE(r.status == 200);
    nlohmann::json j = r.Json();
    CHECK(j["items"].size() == expected.size());
    CHECK(j["next"].is_null());
  }
  SUBCASE("no prefix lists every key") {
    auto all = http.ListAll("", 100);
    CHECK(all.size() == inside.size() + outside.size());
  }
  SUBCASE("a prefix that matches nothing lists nothing") {
    HttpResponse r = http.Request("GET", "/v1/kv?prefix=nothing-here");
    REQUIRE(r.status == 200);
    nlohmann::json j = r.Json();
    CHECK(j["items"].empty());
    CHECK(j["next"].is_null());
  }
}

TEST_CASE("empty, too long and badly percent-encoded keys are refused and change nothing") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "keep", "original");

  HttpResponse empty = http.Request("PUT", "/v1/kv/", "x");
  CHECK(empty.status == 400);
  ErrorCode(empty);

  HttpResponse longest = http.Put(std::string(1024, 'k'), "fits");  // at the limit
  CHECK(longest.status == 201);
  const uint64_t r2 = longest.Json()["revision"].get<uint64_t>();
  HttpResponse too_long = http.Put(std::string(1025, 'k'), "x");
  CHECK(too_long.status == 414);
  ErrorCode(too_long);
  HttpResponse too_long_utf8 = http.Put(std::string(1023, 'k') + "\xc3\xa9", "x");  // 1025 bytes
  CHECK(too_long_utf8.status == 414);

  for (const std::string path : {"/v1/kv/a%zz", "/v1/kv/a%2", "/v1/kv/%", "/v1/kv/a%G0b"}) {
    CAPTURE(path);
    HttpResponse put = http.Request("PUT", path, "x");
    CHECK(put.status == 400);
    ErrorCode(put);
    CHECK(http.Request("GET", path).status == 400);
    CHECK(http.Request("DELETE", path).status == 400);
  }
  CHECK(http.Request("DELETE", "/v1/kv/").status == 400);

  auto snap = Snapshot(http);
  CHECK(snap.size() == 2);
  CHECK(snap["keep"].value == "original");
  CHECK(snap["keep"].revision == r1);
  CheckNextRevisionIs(http, r2 + 1);
}

TEST_CASE("a body over 1 MiB is refused with 413 and stored nowhere") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "big", "small");
  HttpResponse over = http.Put("big", std::string(kMiB + 1, 'x'));
  CHECK(over.status == 413);
  ErrorCode(over);
  HttpResponse over_new = http.Put("big-new", RandomBytes(2 * kMiB, 3));
  CHECK(over_new.status == 413);
  CHECK(http.Get("big").body == "small");
  CHECK(http.Get("big-new").status == 404);
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("a chunked body over 1 MiB is refused and stored nowhere") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "chunked", "small");
  // 2 MiB + a bit in 64 KiB chunks; no Content-Length, so the size is known
  // only while reading. Refused with 413 (too large) or 411 (length required).
  std::string request =
      "PUT /v1/kv/chunked HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
      "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string chunk(65536, 'c');
  for (int i = 0; i < 33; ++i) request += "10000\r\n" + chunk + "\r\n";
  request += "0\r\n\r\n";
  const std::string response = RawExchange(server.port(), request, 10000);
  const int status = RawStatus(response);
  CHECK_MESSAGE((status == 413 || status == 411), "got: " << response.substr(0, 300));
  CHECK(http.Get("chunked").body == "small");
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("a 2 GiB Content-Length is refused with 413 without the body being read") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "huge", "small");
  // Only the headers and a few body bytes are sent; the connection stays open.
  // A server that waits for the body (or reads it until its read timeout) does
  // not answer within the bound; one that refuses on the header answers at once.
  const std::string request =
      "PUT /v1/kv/huge HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/octet-stream\r\nContent-Length: 2147483648\r\n\r\nabc";
  const std::string response = RawExchange(server.port(), request, 4000);
  CHECK_MESSAGE(RawStatus(response) == 413,
                "no 413 within 4 s; got: " << response.substr(0, 300));
  const size_t body_at = response.find("\r\n\r\n");
  if (body_at != std::string::npos) {
    HttpResponse parsed;
    parsed.status = RawStatus(response);
    parsed.body = response.substr(body_at + 4);
    ErrorCode(parsed);
  }
  CHECK(http.Get("huge").body == "small");
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("the longest key the settings allow fits the request line even with every byte escaped") {
  KvServer server({"--limits-max-key-bytes", "2048"});
  HttpClient http(server.port());
  const std::string key(2048, '\xff');  // 6 KiB once percent-encoded
  HttpResponse put = http.Put(key, "v");
  CHECK(put.status == 201);
  CHECK(http.Get(key).body == "v");
  CHECK(http.Put(key + "x", "v").status == 414);
}

TEST_CASE("a client that expects 100-continue for a too-large body is refused before sending it") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "expect", "small");
  const std::string request =
      "PUT /v1/kv/expect HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
      "Content-Length: 2097152\r\n\r\n";
  const std::string response = RawExchange(server.port(), request, 4000);
  // The first answer must be the refusal, not "100 Continue".
  CHECK_MESSAGE(RawStatus(response) == 413, "got: " << response.substr(0, 300));
  CHECK(http.Get("expect").body == "small");
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("unknown routes get 404 and wrong methods 405 with an Allow header") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "x", "v");
  for (const std::string path : {"/", "/v1", "/v2/kv/x", "/v1/kvx", "/v1/nope/x", "/readyz/x"}) {
    CAPTURE(path);
    HttpResponse r = http.Request("GET", path);
    CHECK(r.status == 404);
    ErrorCode(r);
  }
  for (const std::string method : {"POST", "PATCH"}) {
    CAPTURE(method);
    HttpResponse r = http.Request(method, "/v1/kv/x", "changed");
    CHECK(r.status == 405);
    ErrorCode(r);
    const std::string allow = r.Header("Allow");
    CHECK_MESSAGE(allow.find("GET") != std::string::npos, "Allow: " << allow);
    CHECK_MESSAGE(allow.find("PUT") != std::string::npos, "Allow: " << allow);
    CHECK_MESSAGE(allow.find("DELETE") != std::string::npos, "Allow: " << allow);
  }
  HttpResponse list_put = http.Request("PUT", "/v1/kv", "x");
  CHECK(list_put.status == 405);
  CHECK(list_put.Header("Allow").find("GET") != std::string::npos);
  HttpResponse health_post = http.Request("POST", "/healthz", "x");
  CHECK(health_post.status == 405);
  CHECK(health_post.HasHeader("Allow"));

  HttpResponse get = http.Get("x");
  CHECK(get.body == "v");
  CHECK(get.EtagRevision() == r1);
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("bad listing query parameters get 400") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "q", "v");
  for (const std::string query : {"limit=0", "limit=abc", "limit=10001", "limit=-1", "limit=",
                                   "keys_only=maybe", "bogus=1", "prefix=a%zz", "after=%2"}) {
    CAPTURE(query);
    HttpResponse r = http.Request("GET", "/v1/kv?" + query);
    CHECK(r.status == 400);
    ErrorCode(r);
  }
  for (const std::string query : {"limit=1", "limit=10000", "keys_only=1", "keys_only=0", ""}) {
    CAPTURE(query);
    CHECK(http.Request("GET", "/v1/kv?" + query).status == 200);
  }
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("a query parameter a route does not know is 400 on every route, and writes nothing") {
  KvServer server;
  HttpClient http(server.port());
  const uint64_t r1 = PutOk(http, "q", "v");
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "/v1/kv/q?x=1"}, {"PUT", "/v1/kv/new?x=7"}, {"DELETE", "/v1/kv/q?x=1"},
           {"GET", "/v1/kv/q?x=1"}, {"GET", "/healthz?x=1"}, {"POST", "/v1/admin/compact?x=1"}}) {
    CAPTURE(method);
    CAPTURE(target);
    HttpResponse r = http.Request(method, target, "changed");
    CHECK(r.status == 400);
    CHECK(ErrorCode(r) == "bad_parameter");
    const std::string message = r.Json()["error"].get<std::string>();
    CHECK_MESSAGE(message.find("\"x\"") != std::string::npos, message);
  }
  CHECK(http.Get("q").body == "v");
  CHECK(http.Get("new").status == 404);
  CheckNextRevisionIs(http, r1 + 1);
}

TEST_CASE("healthz, readyz and metrics answer") {
  KvServer server;
  HttpClient http(server.port());
  PutOk(http, "m", "v");
  http.Get("m");
  CHECK(http.Request("GET", "/healthz").status == 200);
  CHECK(http.Request("GET", "/readyz").status == 200);
  HttpResponse metrics = http.Request("GET", "/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.Header("Content-Type").rfind("text/plain", 0) == 0);
  bool has_sample = false;
  std::istringstream lines(metrics.body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("kvctl_", 0) == 0 && line.find(' ') != std::string::npos) has_sample = true;
  }
  CHECK_MESSAGE(has_sample, "no kvctl_ sample line in /metrics:\n" << metrics.body.substr(0, 500));
}

}  // namespace kvctl::e2e

namespace kvctl::e2e {

TEST_CASE("256 concurrent keep-alive clients are all served, none refused or starved") {
  // With the HTTP library's defaults (a listen backlog of 5, a worker per
  // connection from a small pool) a burst of connects is dropped and clients
  // beyond the pool wait on others' idle time-outs; kvctl's server settings
  // must serve all of them while every connection stays open.
  constexpr int kClients = 256;
  constexpr int kRequestsEach = 10;
  KvServer server;
  const int port = server.port();
  std::atomic<int> connected{0};
  std::atomic<int> answered{0};
  std::vector<std::string> failures(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      HttpClient http(port);
      const std::string key = "conn/" + std::to_string(c);
      auto first = http.TryRequest("PUT", KeyPath(key), "0");
      if (!first || first->status != 201) {
        failures[c] = first ? "first PUT got " + std::to_string(first->status) : "first PUT: no answer";
        ++connected;
        return;
      }
      // Hold this connection open until every client has one open.
      ++connected;
      for (int wait = 0; connected.load() < kClients && wait < 3000; ++wait) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      for (int i = 1; i < kRequestsEach; ++i) {
        auto r = i % 2 == 0 ? http.TryRequest("GET", KeyPath(key))
                            : http.TryRequest("PUT", KeyPath(key), std::to_string(i));
        if (!r || (r->status != 200 && r->status != 201)) {
          failures[c] = "request " + std::to_string(i) + (r ? " got " + std::to_string(r->status) : ": no answer");
          return;
        }
      }
      ++answered;
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c) CHECK_MESSAGE(failures[c].empty(), "client " << c << ": " << failures[c]);
  CHECK(answered == kClients);
}

}  // namespace kvctl::e2e
