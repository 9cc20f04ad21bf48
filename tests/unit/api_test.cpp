// Tests for lib/server/api.h: KvApi::Handle over a real Store whose log is a
// real FileLog in a temporary directory. Requests are built by hand, with
// the path still percent-encoded, as the transport hands them over.
#include "lib/server/api.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <future>
#include <cctype>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/core/base64.h"
#include "lib/core/file_log.h"
#include "lib/core/log_format.h"
#include "lib/core/percent_encoding.h"
#include "lib/core/store.h"
#include "tests/support/fault_fs.h"

namespace kvctl::server {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

TEST_SUITE_BEGIN("api");

// Opens a FileLog in `dir` and starts `store` on it, replaying what is there.
void OpenStore(const std::string& dir, core::Store& store) {
  auto log = core::FileLog::Open(
      {dir, core::FsyncPolicy::kAlways, 1 << 20, nullptr, nullptr},
      [&](const core::LogRecord& r) {
        store.ApplyRecovered(r);
        return core::Status::Ok();
      },
      nullptr);
  REQUIRE_MESSAGE(log.has_value(), log.error().message());
  store.Start(std::move(*log));
}

// Members are destroyed in reverse order: the API, then the store (which
// closes the log), then the directory.
struct Fixture {
  explicit Fixture(ApiOptions options = {}, AdmissionOptions admission_options = {})
      : admission(store, std::move(admission_options)), api(store, std::move(options), admission) {
    OpenStore(dir.path(), store);
  }

  testing::TempDir dir;
  core::Store store;
  AdmissionPipeline admission;
  KvApi api;
};

// "target" is the raw path with an optional "?query".
HttpRequest Req(std::string method, std::string_view target, std::string body = {},
                Headers headers = {}) {
  HttpRequest r;
  r.method = std::move(method);
  const size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
  r.headers = std::move(headers);
  r.body = std::move(body);
  r.remote_addr = "127.0.0.1";
  return r;
}

std::string KeyPath(std::string_view key) { return "/v1/kv/" + core::PercentEncode(key); }

std::optional<std::string> HeaderOf(const HttpResponse& res, std::string_view name) {
  for (const auto& [k, v] : res.headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(),
                   [](char a, char b) {
                     return std::tolower(static_cast<unsigned char>(a)) ==
                            std::tolower(static_cast<unsigned char>(b));
                   })) {
      return v;
    }
  }
  return std::nullopt;
}

json Body(const HttpResponse& res) {
  CHECK(res.content_type == "application/json");
  return json::parse(res.body);
}

// Checks a JSON error response: status, code word, and a message.
void CheckError(const HttpResponse& res, int status, std::string_view code) {
  CHECK(res.status == status);
  REQUIRE(res.content_type == "application/json");
  const json j = json::parse(res.body);
  CHECK(j.at("code") == code);
  CHECK(j.at("error").is_string());
  CHECK_FALSE(j.at("error").get<std::string>().empty());
}

HttpResponse Put(Fixture& f, std::string_view key, std::string value, Headers headers = {}) {
  return f.api.Handle(Req("PUT", KeyPath(key), std::move(value), std::move(headers)));
}

HttpResponse Get(Fixture& f, std::string_view key, Headers headers = {}) {
  return f.api.Handle(Req("GET", KeyPath(key), {}, std::move(headers)));
}

// ---- single keys ------------------------------------------------------------

TEST_CASE("PUT of a new key answers 201 with the revision as ETag and created true") {
  Fixture f;
  const HttpResponse res = Put(f, "greeting", "hello");
  CHECK(res.status == 201);
  CHECK(HeaderOf(res, "ETag") == "\"1\"");
  const json j = Body(res);
  CHECK(j.at("key") == "greeting");
  CHECK(j.at("revision") == 1);
  CHECK(j.at("created") == true);
  CHECK_FALSE(j.contains("key_base64"));
}

TEST_CASE("PUT of another value to an existing key answers 200 with a new revision") {
  Fixture f;
  REQUIRE(Put(f, "k", "one").status == 201);
  const HttpResponse res = Put(f, "k", "two");
  CHECK(res.status == 200);
  CHECK(HeaderOf(res, "ETag") == "\"2\"");
  const json j = Body(res);
  CHECK(j.at("key") == "k");
  CHECK(j.at("revision") == 2);
  CHECK(j.at("created") == false);
  CHECK(Get(f, "k").body == "two");
}

TEST_CASE("PUT of the value a key already holds answers 200 and keeps its revision") {
  Fixture f;
  REQUIRE(Put(f, "k", "same").status == 201);
  REQUIRE(Put(f, "other", "x").status == 201);  // store revision is now 2
  const HttpResponse res = Put(f, "k", "same");
  CHECK(res.status == 200);
  CHECK(HeaderOf(res, "ETag") == "\"1\"");
  const json j = Body(res);
  CHECK(j.at("revision") == 1);
  CHECK(j.at("created") == false);
  CHECK(f.store.revision() == 2);  // no new revision was taken
}

TEST_CASE("GET answers the raw value bytes as octet-stream with the ETag") {
  Fixture f;
  const std::string value("bin\0ary\xff\n", 9);
  REQUIRE(Put(f, "a", "first").status == 201);
  REQUIRE(Put(f, "b", value).status == 201);
  const HttpResponse res = Get(f, "b");
  CHECK(res.status == 200);
  CHECK(res.content_type == "application/octet-stream");
  CHECK(res.body == value);
  CHECK(HeaderOf(res, "ETag") == "\"2\"");
}

TEST_CASE("GET of a key put with an empty value answers 200 and an empty body") {
  Fixture f;
  REQUIRE(Put(f, "empty", "").status == 201);
  const HttpResponse res = Get(f, "empty");
  CHECK(res.status == 200);
  CHECK(res.body.empty());
  CHECK(HeaderOf(res, "ETag") == "\"1\"");
}

TEST_CASE("HEAD of an existing key answers 200 with the ETag") {
  Fixture f;
  REQUIRE(Put(f, "k", "v").status == 201);
  REQUIRE(Put(f, "k", "w").status == 200);
  const HttpResponse res = f.api.Handle(Req("HEAD", KeyPath("k")));
  CHECK(res.status == 200);
  CHECK(HeaderOf(res, "ETag") == "\"2\"");
}

TEST_CASE("GET and HEAD of a missing key answer 404 no_such_key") {
  Fixture f;
  CheckError(Get(f, "nope"), 404, "no_such_key");
  const HttpResponse head = f.api.Handle(Req("HEAD", KeyPath("nope")));
  CHECK(head.status == 404);
  CHECK_FALSE(HeaderOf(head, "ETag").has_value());
}

TEST_CASE("DELETE answers 204 for an existing key, which is then gone") {
  Fixture f;
  REQUIRE(Put(f, "k", "v").status == 201);
  const HttpResponse res = f.api.Handle(Req("DELETE", KeyPath("k")));
  CHECK(res.status == 204);
  CheckError(Get(f, "k"), 404, "no_such_key");
  CHECK(f.store.revision() == 2);  // the delete took a revision
}

TEST_CASE("DELETE of a missing key answers 204 and takes no revision") {
  Fixture f;
  const HttpResponse res = f.api.Handle(Req("DELETE", KeyPath("never")));
  CHECK(res.status == 204);
  CHECK(f.store.revision() == 0);
}

TEST_CASE("a key with '/', '+', spaces and binary bytes round-trips through its encoded path") {
  Fixture f;
  const std::string key("dir/sub dir/a+b\x01\xff", 17);
  REQUIRE(Put(f, key, "v").status == 201);
  const HttpResponse res = Get(f, key);
  CHECK(res.status == 200);
  CHECK(res.body == "v");
  auto entry = f.store.Get(key);
  REQUIRE(entry.has_value());
  CHECK(entry->value == "v");
}

TEST_CASE("'+' in the key path is a plus, not a space") {
  Fixture f;
  REQUIRE(f.api.Handle(Req("PUT", "/v1/kv/a+b", "v")).status == 201);
  CHECK(f.store.Get("a+b").has_value());
  CHECK_FALSE(f.store.Get("a b").has_value());
}

TEST_CASE("an acknowledged PUT is in the log: a new store on the same dir recovers it") {
  Fixture f;
  REQUIRE(Put(f, "kept", "value").status == 201);
  REQUIRE(Put(f, "dropped", "x").status == 201);
  REQUIRE(f.api.Handle(Req("DELETE", KeyPath("dropped"))).status == 204);
  REQUIRE(f.store.Close().ok());
  {
    core::Store reopened;
    OpenStore(f.dir.path(), reopened);
    AdmissionPipeline admission2(reopened, {});
    KvApi api2(reopened, {}, admission2);
    const HttpResponse res = api2.Handle(Req("GET", KeyPath("kept")));
    CHECK(res.status == 200);
    CHECK(res.body == "value");
    CHECK(HeaderOf(res, "ETag") == "\"1\"");
    CHECK(api2.Handle(Req("GET", KeyPath("dropped"))).status == 404);
    CHECK(reopened.revision() == 3);
  }
}

// ---- conditional writes -----------------------------------------------------

TEST_CASE("If-Match with another revision answers 412 and leaves the value unchanged") {
  Fixture f;
  REQUIRE(Put(f, "k", "orig").status == 201);
  SUBCASE("PUT") {
    CheckError(Put(f, "k", "new", {{"If-Match", "\"7\""}}), 412, "precondition_failed");
  }
  SUBCASE("DELETE") {
    CheckError(f.api.Handle(Req("DELETE", KeyPath("k"), {}, {{"If-Match", "\"7\""}})), 412,
               "precondition_failed");
  }
  const HttpResponse get = Get(f, "k");
  CHECK(get.status == 200);
  CHECK(get.body == "orig");
  CHECK(HeaderOf(get, "ETag") == "\"1\"");
  CHECK(f.store.revision() == 1);
}

TEST_CASE("If-Match with the current revision lets the write through") {
  Fixture f;
  REQUIRE(Put(f, "k", "orig").status == 201);
  const HttpResponse quoted = Put(f, "k", "second", {{"If-Match", "\"1\""}});
  CHECK(quoted.status == 200);
  CHECK(HeaderOf(quoted, "ETag") == "\"2\"");
  // Header names ignore case; an unquoted revision is not an ETag (400).
  CheckError(Put(f, "k", "third", {{"if-match", "2"}}), 400, "bad_precondition");
  CHECK(Put(f, "k", "third", {{"if-match", "\"2\""}}).status == 200);
  CHECK(Get(f, "k").body == "third");
  CHECK(f.api.Handle(Req("DELETE", KeyPath("k"), {}, {{"If-Match", "\"3\""}})).status == 204);
  CHECK(Get(f, "k").status == 404);
}

TEST_CASE("If-Match * on a missing key answers 412 and creates nothing") {
  Fixture f;
  CheckError(Put(f, "k", "v", {{"If-Match", "*"}}), 412, "precondition_failed");
  CHECK(Get(f, "k").status == 404);
  CheckError(f.api.Handle(Req("DELETE", KeyPath("k"), {}, {{"If-Match", "*"}})), 412,
             "precondition_failed");
  // On an existing key it passes.
  REQUIRE(Put(f, "k", "v").status == 201);
  CHECK(Put(f, "k", "w", {{"If-Match", "*"}}).status == 200);
}

TEST_CASE("If-None-Match * on an existing key answers 412 and on a missing key it creates") {
  Fixture f;
  const HttpResponse created = Put(f, "k", "first", {{"If-None-Match", "*"}});
  CHECK(created.status == 201);
  CheckError(Put(f, "k", "second", {{"If-None-Match", "*"}}), 412, "precondition_failed");
  CHECK(Get(f, "k").body == "first");
}

TEST_CASE("a malformed If-Match answers 400 and changes nothing") {
  Fixture f;
  REQUIRE(Put(f, "k", "orig").status == 201);
  for (const char* tag : {"abc", "", "\"1\", \"2\"", "-1", "1.0", "\"1", "1", "W/1", "*, \"1\"", "\"1\" x"}) {
    CAPTURE(tag);
    const HttpResponse res = Put(f, "k", "new", {{"If-Match", tag}});
    CHECK(res.status == 400);
    CHECK(Body(res).at("code") == "bad_precondition");
  }
  CHECK(Get(f, "k").body == "orig");
}

TEST_CASE("If-Match compares the ETag exactly: a zero-padded, weak or foreign tag never matches (412)") {
  Fixture f;
  REQUIRE(Put(f, "k", "orig").status == 201);  // revision 1
  for (const char* tag : {"\"01\"", "\"001\"", "W/\"1\"", "\"\"", "\"x\"", "\" 1\"", "\"+1\""}) {
    CAPTURE(tag);
    CheckError(Put(f, "k", "new", {{"If-Match", tag}}), 412, "precondition_failed");
    CheckError(f.api.Handle(Req("DELETE", KeyPath("k"), {}, {{"If-Match", tag}})), 412, "precondition_failed");
  }
  CHECK(Get(f, "k").body == "orig");
  CHECK(f.store.revision() == 1);
  CHECK(Put(f, "k", "new", {{"If-Match", "\"1\""}}).status == 200);
}

TEST_CASE("If-Match on two lines is judged as the same list on one line") {
  Fixture f;
  REQUIRE(Put(f, "k", "orig").status == 201);  // revision 1
  // Two tags, whichever way they are sent: 400, even when the first matches.
  CheckError(Put(f, "k", "a", {{"If-Match", "\"1\""}, {"If-Match", "\"2\""}}), 400, "bad_precondition");
  CheckError(Put(f, "k", "a", {{"If-Match", "\"1\", \"2\""}}), 400, "bad_precondition");
  CheckError(Put(f, "k", "a", {{"If-Match", "\"2\""}, {"if-match", "\"1\""}}), 400, "bad_precondition");
  CHECK(Get(f, "k").body == "orig");
  // An empty line adds nothing to the list.
  CHECK(Put(f, "k", "b", {{"If-Match", "\"1\""}, {"If-Match", ""}}).status == 200);
}

// ---- key and value limits -----------------------------------------------------

TEST_CASE("an empty key answers 400 empty_key") {
  Fixture f;
  CheckError(f.api.Handle(Req("PUT", "/v1/kv/", "v")), 400, "empty_key");
  CheckError(f.api.Handle(Req("GET", "/v1/kv/")), 400, "empty_key");
  CheckError(f.api.Handle(Req("DELETE", "/v1/kv/")), 400, "empty_key");
}

TEST_CASE("a key over max_key_bytes answers 414 key_too_long and exactly the limit is accepted") {
  Fixture f;
  const std::string at_limit(1024, 'k');
  const std::string over(1025, 'k');
  CheckError(Put(f, over, "v"), 414, "key_too_long");
  CheckError(Get(f, over), 414, "key_too_long");
  CHECK(f.store.revision() == 0);
  CHECK(Put(f, at_limit, "v").status == 201);
  CHECK(Get(f, at_limit).body == "v");
  // The limit counts the key's bytes, not its encoded length in the path.
  const std::string encoded_long(1024, '/');
  CHECK(KeyPath(encoded_long).size() > 3000);
  CHECK(Put(f, encoded_long, "w").status == 201);
}

TEST_CASE("bad percent-encoding in the key answers 400 bad_encoding") {
  Fixture f;
  for (const char* path : {"/v1/kv/%", "/v1/kv/a%2", "/v1/kv/%zz", "/v1/kv/a%g0"}) {
    CAPTURE(path);
    CheckError(f.api.Handle(Req("PUT", path, "v")), 400, "bad_encoding");
    CheckError(f.api.Handle(Req("GET", path)), 400, "bad_encoding");
  }
  CHECK(f.store.revision() == 0);
}

TEST_CASE("a value over max_value_bytes answers 413 value_too_large and stores nothing") {
  ApiOptions options;
  options.max_value_bytes = 10;
  Fixture f(options);
  CheckError(Put(f, "big", std::string(11, 'v')), 413, "value_too_large");
  CHECK(Get(f, "big").status == 404);
  CHECK(f.store.revision() == 0);
  // Exactly the limit is fine; a too large replacement keeps the old value.
  CHECK(Put(f, "big", std::string(10, 'v')).status == 201);
  CheckError(Put(f, "big", std::string(100, 'w')), 413, "value_too_large");
  CHECK(Get(f, "big").body == std::string(10, 'v'));
}

// ---- routes and methods -------------------------------------------------------

TEST_CASE("an unknown route answers 404 not_found") {
  Fixture f;
  for (const char* path : {"/", "/v1", "/v1/kvx", "/v2/kv/a", "/v1/KV/a", "/healthz/x", ""}) {
    CAPTURE(path);
    CheckError(f.api.Handle(Req("GET", path)), 404, "not_found");
  }
}

TEST_CASE("POST and PATCH on a key answer 405 with an Allow header listing GET, HEAD, PUT, DELETE") {
  Fixture f;
  for (const char* method : {"POST", "PATCH"}) {
    CAPTURE(method);
    const HttpResponse res = f.api.Handle(Req(method, "/v1/kv/x", "v"));
    CheckError(res, 405, "method_not_allowed");
    const auto allow = HeaderOf(res, "Allow");
    REQUIRE(allow.has_value());
    for (const char* m : {"GET", "HEAD", "PUT", "DELETE"}) CHECK(allow->find(m) != std::string::npos);
    CHECK(allow->find("POST") == std::string::npos);
  }
  CHECK(Get(f, "x").status == 404);
}

TEST_CASE("writing methods on read-only routes answer 405") {
  Fixture f;
  for (const char* path : {"/v1/kv", "/healthz", "/readyz", "/metrics"}) {
    CAPTURE(path);
    const HttpResponse res = f.api.Handle(Req("PUT", path, "v"));
    CheckError(res, 405, "method_not_allowed");
    const auto allow = HeaderOf(res, "Allow");
    REQUIRE(allow.has_value());
    CHECK(allow->find("GET") != std::string::npos);
    CHECK(allow->find("PUT") == std::string::npos);
  }
}

TEST_CASE("OPTIONS answers 204 with the route's Allow header") {
  Fixture f;
  const HttpResponse key = f.api.Handle(Req("OPTIONS", "/v1/kv/x"));
  CHECK(key.status == 204);
  CHECK(HeaderOf(key, "Allow") == "GET, HEAD, PUT, DELETE");
  const HttpResponse list = f.api.Handle(Req("OPTIONS", "/v1/kv"));
  CHECK(list.status == 204);
  const auto allow = HeaderOf(list, "Allow");
  REQUIRE(allow.has_value());
  CHECK(allow->find("GET") != std::string::npos);
  CHECK(allow->find("PUT") == std::string::npos);
}

// ---- listing ------------------------------------------------------------------

json List(Fixture& f, std::string_view query) {
  const HttpResponse res = f.api.Handle(Req("GET", "/v1/kv?" + std::string(query)));
  REQUIRE_MESSAGE(res.status == 200, res.body);
  return Body(res);
}

std::vector<std::string> Keys(const json& page) {
  std::vector<std::string> keys;
  for (const json& item : page.at("items")) keys.push_back(item.at("key").get<std::string>());
  return keys;
}

TEST_CASE("listing page by page with after=next visits every key once in byte order") {
  Fixture f;
  std::vector<std::string> keys = {"A", "Z", "a", "~", "\xc3\xa9", "0", "9", "a/b", "a b", "a-b"};
  for (int i = 0; keys.size() < 25; ++i) keys.push_back("k" + std::to_string(i));
  REQUIRE(keys.size() == 25);
  for (const std::string& k : keys) REQUIRE(Put(f, k, "v:" + k).status == 201);
  std::sort(keys.begin(), keys.end());  // std::string compares bytes as unsigned

  std::vector<std::string> seen;
  std::string query = "limit=10";
  int pages = 0;
  for (;;) {
    REQUIRE(pages < 10);
    const json page = List(f, query);
    ++pages;
    CHECK(page.at("items").size() <= 10);
    for (const std::string& k : Keys(page)) seen.push_back(k);
    if (page.at("next").is_null()) break;
    CHECK(page.at("next") == seen.back());
    query = "limit=10&after=" + core::PercentEncode(page.at("next").get<std::string>());
  }
  CHECK(pages == 3);
  CHECK(seen == keys);
}

TEST_CASE("a listing without a limit returns every key when there are few") {
  Fixture f;
  for (const char* k : {"c", "a", "b"}) REQUIRE(Put(f, k, "v").status == 201);
  const json page = List(f, "");
  CHECK(Keys(page) == std::vector<std::string>{"a", "b", "c"});
  CHECK(page.at("next").is_null());
  CHECK(page.at("items").at(0).at("revision") == 2);
}

TEST_CASE("a prefix lists only the keys that start with it") {
  Fixture f;
  for (const char* k : {"a", "a/", "a/b", "a/c/d", "a0", "a.", "b/x", "A/b"}) {
    REQUIRE(Put(f, k, "v").status == 201);
  }
  CHECK(Keys(List(f, "prefix=a%2F")) == std::vector<std::string>{"a/", "a/b", "a/c/d"});
  CHECK(Keys(List(f, "prefix=a/")) == std::vector<std::string>{"a/", "a/b", "a/c/d"});
  CHECK(Keys(List(f, "prefix=a")) == std::vector<std::string>{"a", "a.", "a/", "a/b", "a/c/d", "a0"});
  CHECK(Keys(List(f, "prefix=zz")).empty());
  // Paging inside a prefix stays inside it.
  const json first = List(f, "prefix=a/&limit=2");
  CHECK(Keys(first) == std::vector<std::string>{"a/", "a/b"});
  CHECK(first.at("next") == "a/b");
  const json second = List(f, "prefix=a/&limit=2&after=a%2Fb");
  CHECK(Keys(second) == std::vector<std::string>{"a/c/d"});
  CHECK(second.at("next").is_null());
}

TEST_CASE("keys_only listings leave out values") {
  Fixture f;
  REQUIRE(Put(f, "a", "1").status == 201);
  REQUIRE(Put(f, "b", "2").status == 201);
  for (const char* flag : {"keys_only=1", "keys_only=true"}) {
    CAPTURE(flag);
    const json page = List(f, flag);
    REQUIRE(page.at("items").size() == 2);
    for (const json& item : page.at("items")) {
      CHECK_FALSE(item.contains("value"));
      CHECK(item.contains("key"));
      CHECK(item.contains("revision"));
    }
  }
  for (const char* flag : {"keys_only=0", "keys_only=false"}) {
    CAPTURE(flag);
    const json page = List(f, flag);
    REQUIRE(page.at("items").size() == 2);
    CHECK(page.at("items").at(0).at("value") == core::Base64Encode("1"));
  }
}

TEST_CASE("listed values are the base64 of the exact value bytes") {
  Fixture f;
  const std::string binary("\0\xff\xfe\n{\"x\"}", 9);
  REQUIRE(Put(f, "bin", binary).status == 201);
  REQUIRE(Put(f, "empty", "").status == 201);
  REQUIRE(Put(f, "text", "hello").status == 201);
  const json page = List(f, "");
  REQUIRE(page.at("items").size() == 3);
  const json& bin = page.at("items").at(0);
  CHECK(bin.at("key") == "bin");
  CHECK(bin.at("revision") == 1);
  auto decoded = core::Base64Decode(bin.at("value").get<std::string>());
  REQUIRE(decoded.has_value());
  CHECK(*decoded == binary);
  CHECK(page.at("items").at(1).at("value") == "");
  CHECK(page.at("items").at(2).at("value") == "aGVsbG8=");
}

TEST_CASE("bad listing parameters answer 400 bad_parameter") {
  Fixture f;
  REQUIRE(Put(f, "a", "1").status == 201);
  for (const char* query : {"limit=0", "limit=10001", "limit=x", "limit=", "limit=-1", "limit=1.5",
                            "limit=99999999999999999999999", "keys_only=maybe", "keys_only=",
                            "unknown=1", "prefix=a&prefix=b", "prefix=%zz", "prefix=%", "after=a%2",
                            "%zz=1"}) {
    CAPTURE(query);
    CheckError(f.api.Handle(Req("GET", "/v1/kv?" + std::string(query))), 400, "bad_parameter");
  }
  // The limits themselves are fine.
  CHECK(f.api.Handle(Req("GET", "/v1/kv?limit=1")).status == 200);
  CHECK(f.api.Handle(Req("GET", "/v1/kv?limit=10000")).status == 200);
}

TEST_CASE("a listing page ends once its keys and values reach max_list_bytes, and paging on visits every key") {
  ApiOptions options;
  options.max_list_bytes = 1000;
  options.max_value_bytes = 400;
  Fixture f(options);
  for (int i = 0; i < 10; ++i) REQUIRE(Put(f, "k" + std::to_string(i), std::string(300, 'a' + i)).status == 201);
  REQUIRE(Put(f, "tiny", "t").status == 201);
  // 3 x (2 + 300) bytes stay under 1000; the fourth reaches it and ends the page.
  const json first = List(f, "limit=100");
  CHECK(Keys(first) == std::vector<std::string>{"k0", "k1", "k2", "k3"});
  CHECK(first.at("next") == "k3");
  CHECK(first.at("items").at(3).at("value") == core::Base64Encode(std::string(300, 'd')));
  // The count limit still ends a page first when it comes first.
  CHECK(Keys(List(f, "limit=2")) == std::vector<std::string>{"k0", "k1"});
  // keys_only pages count only the keys.
  const json keys = List(f, "keys_only=1");
  CHECK(keys.at("items").size() == 11);
  CHECK(keys.at("next").is_null());
  // Paging on from `next` visits every key once, in order.
  std::vector<std::string> seen;
  std::string query = "limit=100";
  for (int pages = 0;; ++pages) {
    REQUIRE(pages < 10);
    const json page = List(f, query);
    for (const std::string& k : Keys(page)) seen.push_back(k);
    if (page.at("next").is_null()) break;
    query = "limit=100&after=" + core::PercentEncode(page.at("next").get<std::string>());
  }
  CHECK(seen == std::vector<std::string>{"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9", "tiny"});
  // One value larger than the bound is still returned, alone.
  ApiOptions small;
  small.max_list_bytes = 100;
  small.max_value_bytes = 400;
  Fixture g(small);
  REQUIRE(Put(g, "big", std::string(300, 'b')).status == 201);
  REQUIRE(Put(g, "next", "n").status == 201);
  const json alone = List(g, "");
  CHECK(Keys(alone) == std::vector<std::string>{"big"});
  CHECK(alone.at("next") == "big");
}

TEST_CASE("a listing's JSON is byte for byte what nlohmann writes, binary keys and next included") {
  Fixture f;
  const std::string bad("b\xff", 2);
  for (const std::string& k : {std::string("a\"q\\\n\x01"), bad, std::string("\xc3\xa9t\xc3\xa9"), std::string("z")}) {
    REQUIRE(Put(f, k, "v\0" + k).status == 201);
  }
  for (const char* query : {"limit=2", "limit=3", "", "keys_only=1&limit=3"}) {
    CAPTURE(query);
    const HttpResponse res = f.api.Handle(Req("GET", "/v1/kv?" + std::string(query)));
    REQUIRE(res.status == 200);
    const json parsed = json::parse(res.body);
    CHECK(res.body == parsed.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
  }
  const json page = List(f, "limit=2");
  CHECK(page.at("next_base64") == core::Base64Encode(bad));
}

TEST_CASE("a query parameter a route does not know is 400 bad_parameter on every route, and changes nothing") {
  Fixture f;
  REQUIRE(Put(f, "a", "1").status == 201);
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"PUT", "/v1/kv/a?x=1"}, {"PUT", "/v1/kv/a?lease=7&x=1"}, {"GET", "/v1/lease?x=1"}, {"POST", "/v1/lease/1/keepalive?x=1"}, {"DELETE", "/v1/kv/a?x"}, {"GET", "/v1/kv/a?x=1"},
           {"HEAD", "/v1/kv/a?x=1"}, {"POST", "/v1/admin/compact?now=1"}, {"GET", "/healthz?x=1"},
           {"GET", "/readyz?verbose"}, {"GET", "/metrics?name=x"}, {"GET", "/v1/kv?x=1"}, {"PUT", "/v1/kv/a?%zz=1"}}) {
    INFO(method << " " << target);
    const HttpResponse res = f.api.Handle(Req(method, target, "2"));
    CHECK(res.status == 400);
    if (method != "HEAD") {
      CheckError(res, 400, "bad_parameter");
      const std::string message = json::parse(res.body).at("error").get<std::string>();
      if (target.find("%zz") == std::string::npos) CHECK(message.find("unknown query parameter") != std::string::npos);
    }
  }
  CHECK(Get(f, "a").body == "1");
  CHECK(f.store.revision() == 1);
  // An empty query is no parameter.
  CHECK(Put(f, "a", "3").status == 200);
  CHECK(f.api.Handle(Req("GET", "/v1/kv/a?")).status == 200);
  CHECK(f.api.Handle(Req("GET", "/healthz?&")).status == 200);
}

TEST_CASE("a key that is not valid UTF-8 is listed with its exact bytes in key_base64") {
  Fixture f;
  const std::string bad("b\xff", 2);
  REQUIRE(Put(f, "a", "1").status == 201);
  const HttpResponse put = Put(f, bad, "2");
  REQUIRE(put.status == 201);
  CHECK(Body(put).at("key_base64") == core::Base64Encode(bad));
  REQUIRE(Put(f, "c", "3").status == 201);

  const json all = List(f, "");
  REQUIRE(all.at("items").size() == 3);
  const json& item = all.at("items").at(1);
  REQUIRE(item.contains("key_base64"));
  auto exact = core::Base64Decode(item.at("key_base64").get<std::string>());
  REQUIRE(exact.has_value());
  CHECK(*exact == bad);
  CHECK(item.at("key") == "b\xef\xbf\xbd");  // U+FFFD for the bad byte
  CHECK_FALSE(all.at("items").at(0).contains("key_base64"));
  CHECK_FALSE(all.at("items").at(2).contains("key_base64"));

  // As the cursor it comes back in next_base64, and paging on from it works.
  const json first = List(f, "limit=2");
  REQUIRE(first.contains("next_base64"));
  auto cursor = core::Base64Decode(first.at("next_base64").get<std::string>());
  REQUIRE(cursor.has_value());
  CHECK(*cursor == bad);
  const json second = List(f, "limit=2&after=" + core::PercentEncode(*cursor));
  CHECK(Keys(second) == std::vector<std::string>{"c"});
  CHECK(second.at("next").is_null());
  CHECK_FALSE(second.contains("next_base64"));
}

TEST_CASE("'+' in the query is a space and %2B is a plus") {
  Fixture f;
  for (const char* k : {"a b", "a b2", "a+b", "ab"}) REQUIRE(Put(f, k, "v").status == 201);
  CHECK(Keys(List(f, "prefix=a+b")) == std::vector<std::string>{"a b", "a b2"});
  CHECK(Keys(List(f, "prefix=a%2Bb")) == std::vector<std::string>{"a+b"});
  CHECK(Keys(List(f, "prefix=a%20b")) == std::vector<std::string>{"a b", "a b2"});
}

// ---- health, readiness, metrics -------------------------------------------------

TEST_CASE("/healthz answers 200") {
  Fixture f;
  const HttpResponse res = f.api.Handle(Req("GET", "/healthz"));
  CHECK(res.status == 200);
  CHECK(Body(res).at("status") == "ok");
}

TEST_CASE("/readyz answers 200 with the store's revision") {
  Fixture f;
  REQUIRE(Put(f, "a", "1").status == 201);
  REQUIRE(Put(f, "b", "2").status == 201);
  const HttpResponse res = f.api.Handle(Req("GET", "/readyz"));
  CHECK(res.status == 200);
  const json j = Body(res);
  CHECK(j.at("status") == "ready");
  CHECK(j.at("revision") == 2);
}

TEST_CASE("/readyz answers 503 once the store no longer takes writes") {
  Fixture f;
  REQUIRE(f.store.Close().ok());
  CheckError(f.api.Handle(Req("GET", "/readyz")), 503, "not_ready");
  CheckError(Put(f, "k", "v"), 503, "unavailable");
}

TEST_CASE("/metrics answers Prometheus text with the key count and request counters") {
  Fixture f;
  REQUIRE(Put(f, "a", "1").status == 201);
  REQUIRE(Put(f, "b", "2").status == 201);
  REQUIRE(Get(f, "a").status == 200);
  REQUIRE(Get(f, "zz").status == 404);
  const HttpResponse res = f.api.Handle(Req("GET", "/metrics"));
  CHECK(res.status == 200);
  CHECK(res.content_type.starts_with("text/plain"));
  const std::string& text = res.body;
  CHECK(text.find("\nkvctl_keys 2\n") != std::string::npos);
  CHECK(text.find("kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"201\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",code=\"200\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",code=\"404\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("/metrics has a latency histogram per route, bytes in memory and the auth counters") {
  Fixture f;
  REQUIRE(Put(f, "ab", "xyz").status == 201);
  REQUIRE(Get(f, "ab").status == 200);
  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find(fmt::format("\nkvctl_live_bytes {}\n", core::EncodedRecordSize(2, 3))) != std::string::npos);
  CHECK(text.find("# TYPE kvctl_http_request_duration_seconds histogram\n") != std::string::npos);
  CHECK(text.find("kvctl_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",le=\"+Inf\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("kvctl_http_request_duration_seconds_count{route=\"/v1/kv/{key}\"} 2\n") != std::string::npos);
  CHECK(text.find("kvctl_auth_failures_total{reason=\"forbidden\"} 0\n") != std::string::npos);
  CHECK(text.find("kvctl_ratelimit_refusals_total 0\n") != std::string::npos);
}

// ---- admission: request ids, auth, rate limit -------------------------------

TEST_CASE("every answer carries X-Kvctl-Revision: the store revision it reflects") {
  Fixture f;
  CHECK(HeaderOf(f.api.Handle(Req("GET", "/healthz")), "X-Kvctl-Revision") == "0");
  CHECK(HeaderOf(f.api.Handle(Req("PUT", KeyPath("a"), "1")), "X-Kvctl-Revision") == "1");
  CHECK(HeaderOf(f.api.Handle(Req("PUT", KeyPath("b"), "2")), "X-Kvctl-Revision") == "2");
  CHECK(HeaderOf(Get(f, "a"), "X-Kvctl-Revision") == "2");
  CHECK(HeaderOf(Get(f, "missing"), "X-Kvctl-Revision") == "2");       // a 404 too
  CHECK(HeaderOf(f.api.Handle(Req("GET", "/nowhere")), "X-Kvctl-Revision") == "2");
  CHECK(HeaderOf(f.admission.Refused(408, {}, "127.0.0.1"), "X-Kvctl-Revision") == "2");
}

TEST_CASE("every answer carries X-Request-Id: the client's when usable, else a new one") {
  Fixture f;
  const HttpResponse given = f.api.Handle(Req("GET", "/healthz", {}, {{"X-Request-Id", "abc-123"}}));
  CHECK(HeaderOf(given, "X-Request-Id") == "abc-123");
  const HttpResponse made = Get(f, "missing");
  const auto id = HeaderOf(made, "X-Request-Id");
  REQUIRE(id.has_value());
  CHECK(id->size() == 16);
  CHECK(HeaderOf(Get(f, "missing"), "X-Request-Id") != id);  // each request its own
  const HttpResponse junk = f.api.Handle(Req("GET", "/healthz", {}, {{"X-Request-Id", "has space"}}));
  CHECK(HeaderOf(junk, "X-Request-Id") != "has space");
}

AdmissionOptions WithTokens(bool metrics_need_admin = false) {
  AdmissionOptions o;
  auto token = [](std::string name, std::string secret, std::vector<Grant> grants) {
    return AuthOptions::Token{std::move(name), *ParseSha256Hex(Sha256Hex(secret)), std::move(grants)};
  };
  o.auth.tokens.push_back(token("reader", "t-reader", {Grant{"app/", true, false, false}}));
  o.auth.tokens.push_back(token("writer", "t-writer", {Grant{"app/", true, true, false}}));
  o.auth.tokens.push_back(token("admin", "t-admin", {Grant{"", true, true, true}}));
  o.auth.tokens.push_back(token("blind", "t-blind", {Grant{"app/", false, true, false}}));
  o.auth.metrics_need_admin = metrics_need_admin;
  return o;
}

Headers Bearer(std::string token) { return {{"Authorization", "Bearer " + std::move(token)}}; }

TEST_CASE("with tokens configured each route answers 401 without a valid token") {
  Fixture f({}, WithTokens());
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", KeyPath("app/x")}, {"HEAD", KeyPath("app/x")}, {"PUT", KeyPath("app/x")},
           {"DELETE", KeyPath("app/x")}, {"GET", "/v1/kv?prefix=app/"}}) {
    INFO(method << " " << target);
    const HttpResponse none = f.api.Handle(Req(method, target));
    CHECK(none.status == 401);
    CHECK(HeaderOf(none, "WWW-Authenticate") == "Bearer realm=\"kvctl\"");
    if (method != "HEAD") CheckError(none, 401, "unauthorized");
    CHECK(f.api.Handle(Req(method, target, {}, Bearer("t-wrong"))).status == 401);
  }
  CHECK(f.store.revision() == 0);
  // Probes and (by default) /metrics need no token.
  CHECK(f.api.Handle(Req("GET", "/healthz")).status == 200);
  CHECK(f.api.Handle(Req("GET", "/readyz")).status == 200);
  CHECK(f.api.Handle(Req("GET", "/metrics")).status == 200);
}

TEST_CASE("each operation is allowed inside the token's grants and answers 403 outside them") {
  Fixture f({}, WithTokens());
  REQUIRE(Put(f, "app/a", "1", Bearer("t-writer")).status == 201);
  REQUIRE(Put(f, "other/b", "2", Bearer("t-admin")).status == 201);

  CHECK(f.api.Handle(Req("GET", KeyPath("app/a"), {}, Bearer("t-reader"))).body == "1");
  CHECK(f.api.Handle(Req("HEAD", KeyPath("app/a"), {}, Bearer("t-reader"))).status == 200);
  CheckError(f.api.Handle(Req("GET", KeyPath("other/b"), {}, Bearer("t-reader"))), 403, "forbidden");
  // Outside the grant a missing key is 403 too: a refusal does not tell whether a key exists.
  CheckError(f.api.Handle(Req("GET", KeyPath("other/none"), {}, Bearer("t-reader"))), 403, "forbidden");
  CheckError(Put(f, "app/a", "x", Bearer("t-reader")), 403, "forbidden");
  CheckError(f.api.Handle(Req("DELETE", KeyPath("app/a"), {}, Bearer("t-reader"))), 403, "forbidden");
  CheckError(Put(f, "other/b", "x", Bearer("t-writer")), 403, "forbidden");
  CheckError(f.api.Handle(Req("GET", KeyPath("app/a"), {}, Bearer("t-blind"))), 403, "forbidden");
  CHECK(Put(f, "app/a", "2", Bearer("t-blind")).status == 200);
  CHECK(f.api.Handle(Req("DELETE", KeyPath("app/a"), {}, Bearer("t-writer"))).status == 204);
  CHECK(f.store.revision() == 4);  // refused writes changed nothing

  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find("kvctl_auth_failures_total{reason=\"forbidden\"} 6\n") != std::string::npos);
}

TEST_CASE("a listing shows only the keys the token may read, and pages across its grants") {
  AdmissionOptions o = WithTokens();
  o.auth.tokens.push_back({"two", *ParseSha256Hex(Sha256Hex("t-two")),
                           {Grant{"b/", true, false, false}, Grant{"d/", true, false, false}}});
  Fixture f({}, std::move(o));
  for (const char* k : {"a/1", "b/1", "b/2", "c/1", "d/1", "d/2", "e/1"}) {
    REQUIRE(Put(f, k, "v", Bearer("t-admin")).status == 201);
  }
  auto keys = [](const HttpResponse& res) {
    std::vector<std::string> out;
    const json body = json::parse(res.body);
    for (const json& item : body.at("items")) out.push_back(item.at("key").get<std::string>());
    return out;
  };
  const HttpResponse all = f.api.Handle(Req("GET", "/v1/kv", {}, Bearer("t-two")));
  REQUIRE(all.status == 200);
  CHECK(keys(all) == std::vector<std::string>{"b/1", "b/2", "d/1", "d/2"});
  CHECK(keys(f.api.Handle(Req("GET", "/v1/kv?prefix=d/2", {}, Bearer("t-two")))) ==
        std::vector<std::string>{"d/2"});
  CHECK(keys(f.api.Handle(Req("GET", "/v1/kv?prefix=c/", {}, Bearer("t-two")))).empty());

  // Pages of 3 follow the cursor from one grant into the next.
  const HttpResponse first = f.api.Handle(Req("GET", "/v1/kv?limit=3", {}, Bearer("t-two")));
  CHECK(keys(first) == std::vector<std::string>{"b/1", "b/2", "d/1"});
  REQUIRE(json::parse(first.body).at("next") == "d/1");
  const HttpResponse second = f.api.Handle(Req("GET", "/v1/kv?limit=3&after=d/1", {}, Bearer("t-two")));
  CHECK(keys(second) == std::vector<std::string>{"d/2"});
  CHECK(json::parse(second.body).at("next").is_null());

  CheckError(f.api.Handle(Req("GET", "/v1/kv", {}, Bearer("t-blind"))), 403, "forbidden");
}

TEST_CASE("auth.metrics = admin: /metrics needs a token with the admin grant") {
  Fixture f({}, WithTokens(/*metrics_need_admin=*/true));
  CHECK(f.api.Handle(Req("GET", "/metrics")).status == 401);
  CheckError(f.api.Handle(Req("GET", "/metrics", {}, Bearer("t-writer"))), 403, "forbidden");
  CHECK(f.api.Handle(Req("GET", "/metrics", {}, Bearer("t-admin"))).status == 200);
  CHECK(f.api.Handle(Req("GET", "/healthz")).status == 200);
}

TEST_CASE("/readyz tells the revision only to an admin caller when auth is on") {
  Fixture f({}, WithTokens());
  REQUIRE(Put(f, "app/a", "1", Bearer("t-writer")).status == 201);
  for (const Headers& h : {Headers{}, Bearer("t-reader"), Bearer("t-writer"), Bearer("t-wrong"),
                           Headers{{"Authorization", "Bearer t-admin"}, {"Authorization", "Bearer t-admin"}}}) {
    const HttpResponse res = f.api.Handle(Req("GET", "/readyz", {}, h));
    CHECK(res.status == 200);
    const json body = Body(res);
    CHECK(body.at("status") == "ready");
    CHECK_FALSE(body.contains("revision"));
  }
  const json admin = Body(f.api.Handle(Req("GET", "/readyz", {}, Bearer("t-admin"))));
  CHECK(admin.at("revision") == 1);
  // A failed credential on a probe is no auth failure: nothing was refused.
  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find("kvctl_auth_failures_total{reason=\"invalid_token\"} 0\n") != std::string::npos);
  // Nor does any answer's header tell it to a caller without credentials.
  for (const Headers& h : {Headers{}, Bearer("t-wrong")}) {
    CHECK(HeaderOf(f.api.Handle(Req("GET", "/readyz", {}, h)), "X-Kvctl-Revision") == "0");
    CHECK(HeaderOf(Get(f, "app/a", h), "X-Kvctl-Revision") == "0");
  }
  CHECK(HeaderOf(Get(f, "app/a", Bearer("t-reader")), "X-Kvctl-Revision") == "1");
}

TEST_CASE("the rate limit answers 429 with Retry-After per client, and never limits probes") {
  AdmissionOptions o;
  o.rate_limit = 1;  // one a second: the test cannot wait its way past it
  o.rate_burst = 2;
  Fixture f({}, std::move(o));
  CHECK(Get(f, "k").status == 404);
  CHECK(Get(f, "k").status == 404);
  const HttpResponse limited = Get(f, "k");
  CheckError(limited, 429, "rate_limited");
  CHECK(HeaderOf(limited, "Retry-After") == "1");
  HttpRequest other = Req("GET", KeyPath("k"));
  other.remote_addr = "10.0.0.2";  // another client has its own bucket
  CHECK(f.api.Handle(other).status == 404);
  for (int i = 0; i < 5; ++i) CHECK(f.api.Handle(Req("GET", "/healthz")).status == 200);
  HttpRequest scrape = Req("GET", "/metrics");
  scrape.remote_addr = "10.0.0.3";
  CHECK(f.api.Handle(scrape).body.find("kvctl_ratelimit_refusals_total 1\n") != std::string::npos);
}

// HandleWriteAsync's answer, waited for (the store calls back from its
// committer thread once the write is durable).
HttpResponse WriteAsync(Fixture& f, HttpRequest request) {
  std::promise<HttpResponse> answered;
  REQUIRE(f.api.HandleWriteAsync(request, [&](HttpResponse res) { answered.set_value(std::move(res)); }));
  auto done = answered.get_future();
  REQUIRE(done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return done.get();
}

TEST_CASE("async writes are admitted, authorized, stamped and counted as Handle's are") {
  AdmissionOptions o = WithTokens();
  o.rate_limit = 1;
  o.rate_burst = 3;
  Fixture f({}, std::move(o));
  // Reads and other routes are not taken.
  HttpRequest read = Req("GET", KeyPath("app/a"));
  HttpRequest compact = Req("POST", "/v1/admin/compact");
  CHECK_FALSE(f.api.HandleWriteAsync(read, [](HttpResponse) {}));
  CHECK_FALSE(f.api.HandleWriteAsync(compact, [](HttpResponse) {}));

  const HttpResponse none = WriteAsync(f, Req("PUT", KeyPath("app/a"), "1"));
  CheckError(none, 401, "unauthorized");
  CheckError(WriteAsync(f, Req("PUT", KeyPath("other/a"), "1", Bearer("t-writer"))), 403, "forbidden");
  const HttpResponse created =
      WriteAsync(f, Req("PUT", KeyPath("app/a"), "1", {{"Authorization", "Bearer t-writer"}, {"X-Request-Id", "w-1"}}));
  CHECK(created.status == 201);
  CHECK(HeaderOf(created, "X-Request-Id") == "w-1");
  CHECK(HeaderOf(none, "X-Request-Id").has_value());
  CHECK(WriteAsync(f, Req("DELETE", KeyPath("app/a"), {}, Bearer("t-writer"))).status == 204);
  // The writer's burst of 3 is spent (its 403 counted too); the anonymous
  // 401 came from the address's own bucket.
  const HttpResponse limited = WriteAsync(f, Req("PUT", KeyPath("app/b"), "1", Bearer("t-writer")));
  CHECK(limited.status == 429);
  CHECK(HeaderOf(limited, "Retry-After") == "1");
  CHECK(f.store.revision() == 2);

  HttpRequest scrape = Req("GET", "/metrics");
  scrape.remote_addr = "10.0.0.9";
  const std::string text = f.api.Handle(scrape).body;
  for (const char* sample : {"kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"401\"} 1\n",
                             "kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"403\"} 1\n",
                             "kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"201\"} 1\n",
                             "kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"DELETE\",code=\"204\"} 1\n",
                             "kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"429\"} 1\n",
                             "kvctl_http_request_duration_seconds_count{route=\"/v1/kv/{key}\"} 5\n",
                             "kvctl_ratelimit_refusals_total 1\n"}) {
    CHECK_MESSAGE(text.find(sample) != std::string::npos, std::string(sample));
  }
}

// What the transport does: Admit() at the head, then the handler with the
// body in.
HttpResponse AdmitThenHandle(Fixture& f, HttpRequest request) {
  const std::string body = std::move(request.body);
  request.body.clear();
  if (std::optional<HttpResponse> early = f.api.Admit(request)) return *early;
  REQUIRE(request.admission.done);
  request.body = body;
  return f.api.Handle(request);
}

TEST_CASE("admission comes first: without credentials 404, 405 and OPTIONS are 401, and they pay the rate limit") {
  AdmissionOptions o = WithTokens();
  o.rate_limit = 1;
  o.rate_burst = 2;
  Fixture f({}, std::move(o));
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/nope"}, {"OPTIONS", KeyPath("app/x")}, {"OPTIONS", "*"}, {"POST", KeyPath("app/x")},
           {"PUT", "/v1/kv"}}) {
    INFO(method << " " << target);
    HttpRequest r = Req(method, target);
    r.remote_addr = "10.0.1." + std::to_string(r.method.size() + r.path.size());  // a bucket each
    std::optional<HttpResponse> early = f.api.Admit(r);
    REQUIRE(early.has_value());
    CheckError(*early, 401, "unauthorized");
    CHECK(HeaderOf(*early, "X-Kvctl-Revision").has_value());
  }
  CHECK(f.api.Handle(Req("GET", "/nope", {}, Bearer("t-reader"))).status == 404);
  CHECK(f.api.Handle(Req("GET", "/nope", {}, Bearer("t-reader"))).status == 404);
  CheckError(f.api.Handle(Req("GET", "/nope", {}, Bearer("t-reader"))), 429, "rate_limited");
  // Probes stay open to all, however often.
  for (int i = 0; i < 5; ++i) {
    HttpRequest probe = Req("GET", "/healthz");
    CHECK_FALSE(f.api.Admit(probe).has_value());
    CHECK(f.api.Handle(probe).status == 200);
  }
}

TEST_CASE("a write outside the grant is refused at its head, and a bad key too") {
  Fixture f({}, WithTokens());
  HttpRequest outside = Req("PUT", KeyPath("other/x"), {}, Bearer("t-writer"));
  std::optional<HttpResponse> early = f.api.Admit(outside);
  REQUIRE(early.has_value());
  CheckError(*early, 403, "forbidden");
  HttpRequest empty = Req("PUT", "/v1/kv/", {}, Bearer("t-writer"));
  early = f.api.Admit(empty);
  REQUIRE(early.has_value());
  CheckError(*early, 400, "empty_key");
  HttpRequest inside = Req("PUT", KeyPath("app/x"), {}, Bearer("t-writer"));
  CHECK_FALSE(f.api.Admit(inside).has_value());
  CHECK(inside.admission.key == "app/x");
  CHECK(inside.admission.caller != nullptr);
  CHECK(f.store.revision() == 0);
}

TEST_CASE("a request admitted at its head is not authenticated, rate-limited or stamped again") {
  AdmissionOptions o = WithTokens();
  o.rate_limit = 1;
  o.rate_burst = 2;
  Fixture f({}, std::move(o));
  HttpRequest first = Req("PUT", KeyPath("app/a"), "1", {{"Authorization", "Bearer t-writer"}, {"X-Request-Id", "one"}});
  const HttpResponse put = AdmitThenHandle(f, first);
  CHECK(put.status == 201);
  CHECK(HeaderOf(put, "X-Request-Id") == "one");
  // The async path too: admitted at the head, answered once durable.
  HttpRequest second = Req("PUT", KeyPath("app/b"), {}, Bearer("t-writer"));
  REQUIRE_FALSE(f.api.Admit(second).has_value());
  second.body = "2";
  CHECK(WriteAsync(f, second).status == 201);
  // Two requests took the burst of two: the next is refused.
  CheckError(AdmitThenHandle(f, Req("GET", KeyPath("app/a"), {}, Bearer("t-writer"))), 429, "rate_limited");
  HttpRequest scrape = Req("GET", "/metrics");
  scrape.remote_addr = "10.0.0.9";
  const std::string text = f.api.Handle(scrape).body;
  CHECK(text.find("kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"201\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("kvctl_ratelimit_refusals_total 1\n") != std::string::npos);
}

TEST_CASE("two Authorization fields are 400, counted as an auth failure") {
  Fixture f({}, WithTokens());
  const HttpResponse res = f.api.Handle(
      Req("GET", KeyPath("app/a"), {}, {{"Authorization", "Bearer t-admin"}, {"Authorization", "Bearer t-reader"}}));
  CheckError(res, 400, "duplicate_authorization");
  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find("kvctl_auth_failures_total{reason=\"duplicate_authorization\"} 1\n") != std::string::npos);
}

TEST_CASE("failed TLS handshakes are counted in /metrics by reason") {
  Fixture f;
  f.admission.TlsHandshakeFailed("10.0.0.1", TlsFailure::kNotTls, "error:0A00009C:SSL routines::http request");
  f.admission.TlsHandshakeFailed("10.0.0.1", TlsFailure::kNotTls, "x");
  f.admission.TlsHandshakeFailed("10.0.0.2", TlsFailure::kTimeout, "y");
  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find("# TYPE kvctl_tls_handshake_failures_total counter\n") != std::string::npos);
  CHECK(text.find("kvctl_tls_handshake_failures_total{reason=\"not_tls\"} 2\n") != std::string::npos);
  CHECK(text.find("kvctl_tls_handshake_failures_total{reason=\"timeout\"} 1\n") != std::string::npos);
  CHECK(text.find("kvctl_tls_handshake_failures_total{reason=\"bad_client_certificate\"} 0\n") != std::string::npos);
}

TEST_CASE("a refusal by the transport is stamped and counted under route unknown") {
  Fixture f;
  const HttpResponse res = f.admission.Refused(431, {}, "10.0.0.1");
  CheckError(res, 431, "headers_too_large");
  CHECK(HeaderOf(res, "X-Request-Id").has_value());
  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find("kvctl_http_requests_total{route=\"unknown\",method=\"other\",code=\"431\"} 1\n") !=
        std::string::npos);
}

// ---------------------------------------------------------------- transactions

std::string B64(std::string_view bytes) { return core::Base64Encode(bytes); }

HttpRequest TxnReq(const json& body, Headers headers = {}) {
  return Req("POST", "/v1/txn", body.dump(), std::move(headers));
}

TEST_CASE("POST /v1/txn refuses a body it cannot read with 400 bad_txn naming the place, and writes nothing") {
  ApiOptions o;
  o.max_txn_ops = 3;
  o.max_value_bytes = 4;
  Fixture f(std::move(o));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"success":[{"get":{"key":"YQ=="}},{"get":{"key":"YQ=="}},{"put":{"key":"YQ==","value":"%%%%"}}]})",
       "success[2].put.value: not base64"},
      {R"({"failure":[{"put":{"key":"YQ==","lease":-1}}]})", "failure[0].put.lease: not a whole number"},
      {R"({"failure":[{"put":{"key":"YQ==","lease":"7x"}}]})", "failure[0].put.lease: not a whole number"},
      {R"({"success":[{"get":{"key":"YQ==","limit":5}}]})", "success[0].get.limit: only with prefix"},
      {R"({"success":[{"get":{"prefix":"YQ==","limit":10001}}]})", "success[0].get.limit: not a whole number from 0 to 10000"},
      {R"({"success":[{"put":{"key":"YQ==","value":"MTIzNDU="}}]})", "success[0] (put): the value is 5 bytes, over limits.max_value_bytes = 4"},
      {R"({"success":[{"put":{"key":"YQ=="}},{"delete":{"prefix":""}}]})", "success[1] (delete prefix) writes a key that success[0] (put) writes too"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":1}],"success":[{"get":{"key":"YQ=="}}],"failure":[{"get":{"key":"YQ=="}},{"get":{"key":"YQ=="}}]})",
       "over limits.max_txn_ops = 3"},
      {R"({"compare":[{"key":7,"target":"value","op":"=","value":""}]})", "compare[0].key: not a string"},
      {R"({"compare":[{"target":"value","op":"=","value":""}]})", "compare[0].key: missing"},
      {R"({"compare":[1]})", "compare[0]: not an object"},
      {R"({"success":[{}]})", "success[0]: is empty"},
      {R"({"success":[{"put":[]}]})", "success[0].put: not an object"},
      {R"({"success":"x"})", "success: not an array of ops"},
  };
  for (const auto& [text, says] : bad) {
    CAPTURE(text);
    const HttpResponse res = f.api.Handle(Req("POST", "/v1/txn", text));
    CheckError(res, 400, "bad_txn");
    const std::string message = json::parse(res.body).value("error", "");
    CHECK_MESSAGE(message.find(says) != std::string::npos, message);
  }
  // Missing arrays are empty: a transaction of nothing reads and writes nothing.
  CHECK(f.store.revision() == 0);
  CheckError(f.api.Handle(Req("PUT", "/v1/txn")), 405, "method_not_allowed");
  CheckError(f.api.Handle(Req("POST", "/v1/txn?x=1", "{}")), 400, "bad_parameter");
}

TEST_CASE("POST /v1/txn needs read on compared and read keys and write on written ones, in both branches") {
  Fixture f({}, WithTokens());
  auto refused = [&](const json& body, const std::string& token, std::string_view says) {
    const HttpResponse res = f.api.Handle(TxnReq(body, Bearer(token)));
    CheckError(res, 403, "forbidden");
    const std::string message = json::parse(res.body).value("error", "");
    CHECK_MESSAGE(message.find(says) != std::string::npos, message);
  };
  const json put_app = {{"put", {{"key", B64("app/x")}, {"value", B64("1")}}}};
  refused({{"success", {put_app}}}, "t-reader", R"(reader may not write the key "app/x" (success[0].put.key))");
  refused({{"failure", {{{"delete", {{"key", B64("other/y")}}}}}}}, "t-writer", R"("other/y" (failure[0].delete.key))");
  refused({{"compare", {{{"key", B64("app/x")}, {"target", "version"}, {"op", "="}, {"value", 0}}}}}, "t-blind",
          "blind may not read the key \"app/x\" (compare[0].key)");
  refused({{"success", {{{"get", {{"prefix", B64("app")}}}}}}}, "t-reader", "every key under the prefix \"app\"");
  refused({{"success", {{{"delete", {{"prefix", B64("")}}}}}}}, "t-writer", "every key under the prefix \"\"");
  refused({{"success", {{{"get", {{"key", B64("app/\x1b")}}}}, {{"get", {{"key", B64("x\n")}}}}}}}, "t-reader",
          "base64:" + B64("x\n"));
  CHECK(f.api.Handle(TxnReq({{"success", {put_app}}})).status == 401);
  CHECK(f.store.revision() == 0);
  const std::string text = f.api.Handle(Req("GET", "/metrics")).body;
  CHECK(text.find("kvctl_auth_failures_total{reason=\"forbidden\"} 6\n") != std::string::npos);
  CHECK(text.find("route=\"/v1/txn\"") != std::string::npos);
}

TEST_CASE("POST /v1/txn runs through HandleWriteAsync and answers the results with the transaction's revision") {
  Fixture f({}, WithTokens());
  REQUIRE(Put(f, "app/a", "1", Bearer("t-writer")).status == 201);  // 1
  const json body = {{"compare", {{{"key", B64("app/a")}, {"target", "value"}, {"op", "="}, {"value", B64("1")}}}},
                     {"success",
                      {{{"put", {{"key", B64("app/b")}, {"value", B64("2")}}}},
                       {{"delete", {{"key", B64("app/a")}}}},
                       {{"get", {{"prefix", B64("app/")}}}}}}};
  const HttpResponse res = WriteAsync(f, TxnReq(body, Bearer("t-writer")));
  REQUIRE_MESSAGE(res.status == 200, res.body);
  CHECK(HeaderOf(res, "X-Kvctl-Revision") == "2");
  CHECK(HeaderOf(res, "X-Request-Id").has_value());
  const json answer = json::parse(res.body);
  CHECK(answer["succeeded"] == true);
  CHECK(answer["revision"] == 2);
  CHECK(answer["results"][0]["put"]["revision"] == 2);
  CHECK(answer["results"][0]["put"]["version"] == 1);
  CHECK(answer["results"][1]["delete"]["deleted"] == 1);
  const json items = answer["results"][2]["get"]["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0] == json{{"key", "app/b"}, {"value", B64("2")}, {"revision", 2}, {"create_revision", 2},
                         {"version", 1}, {"lease", 0}});
  // The same again: app/a is gone, so the failure branch (none) runs.
  const HttpResponse failed = WriteAsync(f, TxnReq(body, Bearer("t-writer")));
  REQUIRE(failed.status == 200);
  CHECK(json::parse(failed.body)["succeeded"] == false);
  CHECK(json::parse(failed.body)["results"].empty());
  CHECK(f.store.revision() == 2);
  // Refusals come through the same path.
  CheckError(WriteAsync(f, TxnReq(body, Bearer("t-reader"))), 403, "forbidden");
  CheckError(WriteAsync(f, Req("POST", "/v1/txn", "nope", Bearer("t-writer"))), 400, "bad_txn");
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::server
