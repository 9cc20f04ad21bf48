// Transactions over HTTP and the command line (SPEC §6, POST /v1/txn and
// kvctl txn), on the real binary: both branches and every compare, one
// revision per transaction (and none for one that changes nothing), the
// 400s that name the place, grants per key, watchers seeing one revision,
// and all-or-nothing across kill -9.
#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using nlohmann::json;

json PutOp(std::string_view key, std::string_view value) {
  return {{"put", {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}}}};
}
json DeleteOp(std::string_view key) { return {{"delete", {{"key", Base64Encode(key)}}}}; }
json DeletePrefixOp(std::string_view prefix) { return {{"delete", {{"prefix", Base64Encode(prefix)}}}}; }
json GetOp(std::string_view key) { return {{"get", {{"key", Base64Encode(key)}}}}; }
json GetPrefixOp(std::string_view prefix) { return {{"get", {{"prefix", Base64Encode(prefix)}}}}; }
json Compare(std::string_view key, const std::string& target, const std::string& op, json value) {
  return {{"key", Base64Encode(key)}, {"target", target}, {"op", op}, {"value", std::move(value)}};
}

HttpResponse Txn(HttpClient& http, const json& body, const httplib::Headers& headers = {}) {
  return http.Request("POST", "/v1/txn", body.dump(), headers);
}

uint64_t RevisionOf(const HttpResponse& r) { return std::stoull(r.Header("X-Kvctl-Revision")); }

std::string ErrorText(const HttpResponse& r) { return r.Json().value("error", std::string()); }

TEST_CASE("txn: the success branch's puts share one revision and its get sees them") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("x/pre", "0").status == 201);  // 1
  const HttpResponse r = Txn(http, {{"success", {PutOp("x/a", "1"), PutOp("x/b", "2"), GetPrefixOp("x/")}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const json body = r.Json();
  CHECK(body["succeeded"] == true);
  CHECK(body["revision"] == 2);
  CHECK(RevisionOf(r) == 2);
  REQUIRE(body["results"].size() == 3);
  for (int i = 0; i < 2; ++i) {
    CHECK(body["results"][i]["put"]["revision"] == 2);
    CHECK(body["results"][i]["put"]["create_revision"] == 2);
    CHECK(body["results"][i]["put"]["version"] == 1);
  }
  const json items = body["results"][2]["get"]["items"];
  REQUIRE(items.size() == 3);
  CHECK(items[0]["key"] == "x/a");
  CHECK(Base64Decode(items[0]["value"].get<std::string>()) == "1");
  CHECK(items[0]["revision"] == 2);
  CHECK(items[1]["key"] == "x/b");
  CHECK(Base64Decode(items[1]["value"].get<std::string>()) == "2");
  CHECK(items[2]["key"] == "x/pre");
  CHECK(items[2]["revision"] == 1);
  CHECK(items[2]["version"] == 1);
  CHECK(body["results"][2]["get"]["more"] == false);
  const HttpResponse a = http.Get("x/a");
  CHECK(a.body == "1");
  CHECK(a.Header("ETag") == "\"2\"");
  CHECK(http.Get("x/b").Header("ETag") == "\"2\"");
  CHECK(http.Put("x/c", "3").EtagRevision() == 3);  // the transaction took one revision
}

TEST_CASE("txn: every compare target and op decides the branch, and the other branch does not run") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("other", "o").status == 201);  // 1
  REQUIRE(http.Put("k", "m").status == 201);      // 2
  REQUIRE(http.Put("other", "p").status == 200);  // 3
  REQUIRE(http.Put("k", "m2").status == 200);     // 4: k has revision 4, create_revision 2, version 2
  REQUIRE(http.Put("k", "m").status == 200);      // 5: revision 5, version 3
  struct Case {
    std::string target, op;
    json value;
    bool holds;
  };
  std::vector<Case> cases;
  auto numbers = [&](const std::string& target, uint64_t now) {
    cases.push_back({target, "=", now, true});
    cases.push_back({target, "=", now + 1, false});
    cases.push_back({target, "!=", now + 1, true});
    cases.push_back({target, "!=", std::to_string(now), false});  // a decimal string is a number too
    cases.push_back({target, "<", now + 1, true});
    cases.push_back({target, "<", now, false});
    if (now > 0) cases.push_back({target, ">", now - 1, true});
    cases.push_back({target, ">", now, false});
  };
  numbers("revision", 5);
  numbers("create_revision", 2);
  numbers("version", 3);
  numbers("lease", 0);
  for (const auto& [op, holds, fails] : {std::tuple{"=", "m", "n"}, std::tuple{"!=", "n", "m"},
                                         std::tuple{"<", "n", "m"}, std::tuple{">", "l", "m"}}) {
    cases.push_back({"value", op, Base64Encode(holds), true});
    cases.push_back({"value", op, Base64Encode(fails), false});
  }
  for (const Case& c : cases) {
    CAPTURE(c.target);
    CAPTURE(c.op);
    CAPTURE(c.value.dump());
    // Each branch reads a different key, so the result shows which ran.
    const HttpResponse r = Txn(http, {{"compare", {Compare("k", c.target, c.op, c.value)}},
                                      {"success", {GetOp("k")}},
                                      {"failure", {GetOp("other")}}});
    REQUIRE_MESSAGE(r.status == 200, r.body);
    const json body = r.Json();
    CHECK(body["succeeded"] == c.holds);
    CHECK(body["revision"] == 5);
    REQUIRE(body["results"].size() == 1);
    const json items = body["results"][0]["get"]["items"];
    REQUIRE(items.size() == 1);
    CHECK(items[0]["key"] == (c.holds ? "k" : "other"));
  }
  // Several compares: all must hold. A value compare on a missing key fails whatever its op.
  json two = {{"compare", {Compare("k", "version", "=", 3), Compare("other", "value", "=", Base64Encode("x"))}},
              {"failure", {PutOp("flag", "failed")}}};
  HttpResponse r = Txn(http, two);
  REQUIRE(r.status == 200);
  CHECK(r.Json()["succeeded"] == false);
  CHECK(r.Json()["revision"] == 6);
  CHECK(http.Get("flag").body == "failed");
  r = Txn(http, {{"compare", {Compare("missing", "value", "!=", Base64Encode("x"))}}, {"success", {PutOp("s", "1")}}});
  CHECK(r.Json()["succeeded"] == false);
  CHECK(r.Json()["results"].empty());
  CHECK(http.Get("s").status == 404);
  // The missing key's numbers are 0.
  r = Txn(http, {{"compare", {Compare("missing", "create_revision", "=", 0)}}});
  CHECK(r.Json()["succeeded"] == true);
}

TEST_CASE("txn: puts that change nothing take no revision, and a delete of a missing key deletes 0") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("same", "v").status == 201);   // 1
  REQUIRE(http.Put("same2", "w").status == 201);  // 2
  const HttpResponse r =
      Txn(http, {{"success", {PutOp("same", "v"), PutOp("same2", "w"), DeleteOp("never-was")}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(RevisionOf(r) == 2);
  const json body = r.Json();
  CHECK(body["succeeded"] == true);
  CHECK(body["revision"] == 2);
  CHECK(body["results"][0]["put"]["revision"] == 1);
  CHECK(body["results"][0]["put"]["version"] == 1);
  CHECK(body["results"][1]["put"]["revision"] == 2);
  CHECK(body["results"][2]["delete"]["deleted"] == 0);
  CHECK(http.Put("next", "x").EtagRevision() == 3);
}

TEST_CASE("txn: a key written twice, too many ops and bad input are 400 bad_txn naming the place") {
  KvServer server({"--limits-max-txn-ops", "4"});
  HttpClient http(server.port());
  REQUIRE(http.Put("a", "1").status == 201);
  HttpResponse r = Txn(http, {{"success", {PutOp("a", "2"), GetOp("b"), DeleteOp("a")}}});
  CHECK(r.status == 400);
  CHECK(ErrorCode(r) == "bad_txn");
  CHECK(ErrorText(r).find("success[2]") != std::string::npos);
  CHECK(ErrorText(r).find("success[0]") != std::string::npos);
  r = Txn(http, {{"failure", {DeletePrefixOp("x/"), PutOp("x/y", "1")}}});
  CHECK(ErrorCode(r) == "bad_txn");
  CHECK(ErrorText(r).find("failure[1]") != std::string::npos);

  // limits.max_txn_ops = 4 counts compares and ops of both branches.
  r = Txn(http, {{"compare", {Compare("a", "version", "=", 1)}},
                 {"success", {GetOp("a"), GetOp("b")}},
                 {"failure", {GetOp("c"), GetOp("d")}}});
  CHECK(r.status == 400);
  CHECK(ErrorCode(r) == "bad_txn");
  CHECK(ErrorText(r).find("limits.max_txn_ops = 4") != std::string::npos);
  CHECK(Txn(http, {{"success", {GetOp("a"), GetOp("b"), GetOp("c"), GetOp("d")}}}).status == 200);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"success":[{"put":{"key":"YQ==","value":"!!!!"}}]})", "success[0].put.value: not base64"},
      {R"({"success":[{"put":{"key":"YQ=="},"get":{"key":"YQ=="}}]})", "success[0]: has more than one"},
      {R"({"success":[{"put":{"key":"YQ==","valu":"YQ=="}}]})", "success[0].put.valu: unknown field"},
      {R"({"failure":[{"get":{"key":"YQ==","prefix":"YQ=="}}]})", "failure[0].get: has both key and prefix"},
      {R"({"compare":[{"key":"YQ==","target":"value","op":"~","value":"YQ=="}]})", "compare[0].op"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"=","value":1.5}]})", "compare[0].value"},
      {R"({"compare":[{"key":"YQ==","target":"version","op":"="}]})", "compare[0].value: missing"},
      {R"({"compare":{}})", "compare: not an array"},
      {R"({"success":[{"delete":{}}]})", "success[0].delete: has neither key nor prefix"},
      {R"({"success":[{"put":{"key":""}}]})", "success[0] (put): the key is empty"},
      {R"({"compare":[], "extra":1})", "extra: unknown field"},
      {R"([1])", "not a JSON object"},
      {"{", "not JSON"},
      {"", "the body is empty"},
  };
  for (const auto& [text, says] : bad) {
    CAPTURE(text);
    r = http.Request("POST", "/v1/txn", text);
    CHECK(r.status == 400);
    CHECK(ErrorCode(r) == "bad_txn");
    CHECK_MESSAGE(ErrorText(r).find(says) != std::string::npos, ErrorText(r));
  }
  CHECK(http.Get("a").Header("ETag") == "\"1\"");  // nothing refused changed anything
  CHECK(http.Request("GET", "/v1/txn").status == 405);
  // A put attached to a lease that does not exist.
  json leased = PutOp("l", "v");
  leased["put"]["lease"] = "12345";
  r = Txn(http, {{"success", json::array({leased})}});
  CHECK(r.status == 404);
  CHECK(ErrorCode(r) == "no_such_lease");
  CHECK(http.Get("l").status == 404);
}

TEST_CASE("txn: a delete of a prefix deletes every key under it at one revision, which a watch shows") {
  KvServer server;
  HttpClient http(server.port());
  for (const char* k : {"t/1", "t/2", "t/3", "u/1"}) REQUIRE(http.Put(k, "v").status == 201);  // 1..4
  HttpResponse r = Txn(http, {{"success", {DeletePrefixOp("t/"), PutOp("u/2", "new")}}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.Json()["revision"] == 5);
  CHECK(r.Json()["results"][0]["delete"]["deleted"] == 3);
  CHECK(http.ListAll("t/").empty());
  CHECK(http.Get("u/1").status == 200);
  CHECK(http.Get("u/2").Header("ETag") == "\"5\"");

  // The watch from revision 5: the transaction's four events, all at 5.
  RawSocket watch(server.port());
  REQUIRE(watch.Send("GET /v1/watch?prefix=&from=5 HTTP/1.0\r\nHost: x\r\n\r\n"));
  auto events = [](const std::string& text) {
    std::vector<json> out;
    const size_t body = text.find("\r\n\r\n");
    if (body == std::string::npos) return out;
    for (const std::string& line : Lines(text.substr(body + 4))) {
      if (line.empty()) continue;
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("op")) out.push_back(std::move(j));
    }
    return out;
  };
  const std::string got =
      watch.ReadUntil(std::chrono::seconds(5), [&](const std::string& text) { return events(text).size() >= 4; });
  const std::vector<json> seen = events(got);
  REQUIRE_MESSAGE(seen.size() == 4, got);
  std::vector<std::string> keys;
  for (const json& e : seen) {
    CHECK(e["revision"] == 5);
    keys.push_back(e["op"].get<std::string>() + " " + e["key"].get<std::string>());
  }
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"delete t/1", "delete t/2", "delete t/3", "put u/2"});
}

TEST_CASE("txn: every key needs its grant, the refusal names the key, and nothing is written") {
  TempDir tmp;
  auto hash = [](const std::string& token) {
    CliOptions in;
    in.stdin_bytes = token + "\n";
    CliResult r = RunCli({"auth", "hash-token"}, in);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return r.out.substr(0, 64);
  };
  const std::string writer = "writer-token-0123456789", reader = "reader-token-0123456789";
  WriteFile(tmp / "kvctl.toml", R"(
[[auth.tokens]]
name = "writer"
sha256 = ")" + hash(writer) + R"("
grants = [{ prefix = "app/", ops = ["read", "write"] }, { prefix = "ro/", ops = ["read"] }]

[[auth.tokens]]
name = "reader"
sha256 = ")" + hash(reader) + R"("
grants = [{ prefix = "", ops = ["read"] }]
)");
  KvServer server({"--config", (tmp / "kvctl.toml").string()});
  HttpClient http(server.port());
  const httplib::Headers as_writer = {{"Authorization", "Bearer " + writer}};
  const httplib::Headers as_reader = {{"Authorization", "Bearer " + reader}};

  CHECK(http.Request("POST", "/v1/txn", "{}").status == 401);
  HttpResponse r = Txn(http, {{"success", {PutOp("app/a", "1"), PutOp("ro/b", "2")}}}, as_writer);
  CHECK(r.status == 403);
  CHECK(ErrorCode(r) == "forbidden");
  CHECK_MESSAGE(ErrorText(r).find("\"ro/b\"") != std::string::npos, ErrorText(r));
  CHECK(ErrorText(r).find("success[1].put.key") != std::string::npos);
  // Both branches are judged, whichever would run; compares and gets need read.
  r = Txn(http, {{"compare", {Compare("app/a", "version", "=", 0)}},
                 {"success", {PutOp("app/a", "1")}},
                 {"failure", {DeleteOp("other/x")}}},
          as_writer);
  CHECK(r.status == 403);
  CHECK(ErrorText(r).find("\"other/x\"") != std::string::npos);
  r = Txn(http, {{"compare", {Compare("other/x", "version", "=", 0)}}}, as_writer);
  CHECK(r.status == 403);
  // A prefix needs a grant over all of it: "app" reaches beyond "app/".
  r = Txn(http, {{"success", {DeletePrefixOp("app")}}}, as_writer);
  CHECK(r.status == 403);
  CHECK(ErrorText(r).find("prefix \"app\"") != std::string::npos);
  CHECK(Txn(http, {{"success", {GetPrefixOp("ro/")}}}, as_writer).status == 200);
  CHECK(Txn(http, {{"success", {GetPrefixOp("")}}}, as_writer).status == 403);
  // A key that is not printable text is named in base64.
  r = Txn(http, {{"success", {PutOp(std::string("bad\x01key"), "1")}}}, as_writer);
  CHECK(r.status == 403);
  CHECK(ErrorText(r).find("base64:" + Base64Encode(std::string("bad\x01key"))) != std::string::npos);
  CHECK(Txn(http, {{"success", {PutOp("app/a", "1")}}}, as_reader).status == 403);

  // Nothing refused was written.
  CHECK(http.Request("GET", "/v1/kv?prefix=", {}, as_reader).Json()["items"].empty());
  r = Txn(http, {{"success", {PutOp("app/a", "1"), GetOp("ro/b")}}}, as_writer);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(http.Request("GET", KeyPath("app/a"), {}, as_reader).body == "1");
  const std::string metrics = http.Request("GET", "/metrics").body;
  CHECK(metrics.find("route=\"/v1/txn\"") != std::string::npos);
}

TEST_CASE("kvctl txn reads stdin or --file, prints the results, and exits 0 or 4") {
  KvServer server;
  HttpClient http(server.port());
  const std::string addr = server.addr();
  REQUIRE(http.Put("c/k", "v").status == 201);  // 1
  const json txn = {{"compare", {Compare("c/k", "value", "=", Base64Encode("v"))}},
                    {"success", {PutOp("c/a", "1"), DeleteOp("c/k"), GetPrefixOp("c/")}},
                    {"failure", {GetOp("c/a")}}};
  CliOptions in;
  in.stdin_bytes = txn.dump();
  CliResult r = RunCli({"txn", "--addr", addr}, in);
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out == "SUCCEEDED\nPUT c/a revision 2\nDELETE 1\nc/a\n1\n");
  CHECK(r.err.empty());

  // The same again: c/k is gone, so the compare fails: exit 4, the failure ops' results printed.
  const TempDir tmp;
  WriteFile(tmp / "txn.json", txn.dump());
  r = RunCli({"txn", "--file", (tmp / "txn.json").string(), "--addr", addr});
  CHECK(r.exit_code == 4);
  CHECK(r.out == "FAILED\nc/a\n1\n");
  CHECK(IsOneErrorLine(r.err));

  r = RunCli({"txn", "--file", (tmp / "txn.json").string(), "--addr", addr, "-o", "json"});
  CHECK(r.exit_code == 4);
  const json body = json::parse(r.out);
  CHECK(body["succeeded"] == false);
  CHECK(body["revision"] == 2);
  CHECK(Base64Decode(body["results"][0]["get"]["items"][0]["value"].get<std::string>()) == "1");

  // Bad input: exit 2, naming the file or the place.
  WriteFile(tmp / "bad.json", "{\"success\": [");
  r = RunCli({"txn", "--file", (tmp / "bad.json").string(), "--addr", addr});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--file " + (tmp / "bad.json").string()) != std::string::npos);
  CHECK(IsOneErrorLine(r.err));
  r = RunCli({"txn", "--file", (tmp / "none.json").string(), "--addr", addr});
  CHECK(r.exit_code == 2);
  in.stdin_bytes = R"({"success":[{"put":{"key":"not base64!"}}]})";
  r = RunCli({"txn", "--addr", addr}, in);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("success[0].put.key") != std::string::npos);
  // Larger than a request body may be: refused before it is sent.
  in.stdin_bytes = std::string(2000, ' ') + "{}";
  in.env = {{"KVCTL_LIMITS_MAX_VALUE_BYTES", "1000"}};
  r = RunCli({"txn", "--addr", addr}, in);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("limits.max_value_bytes") != std::string::npos);
  // No server: exit 3.
  in.env.clear();
  in.stdin_bytes = "{}";
  r = RunCli({"txn", "--addr", Addr(FreePort())}, in);
  CHECK(r.exit_code == 3);
}

TEST_CASE("txn: after kill -9 each transaction's keys are all there or none, and a restart keeps their metadata") {
  KvServer server;
  constexpr int kThreads = 4;
  std::vector<std::atomic<int64_t>> acked(kThreads);
  for (auto& a : acked) a = -1;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient http(server.port());
      const std::string base = "t/" + std::to_string(t) + "/";
      for (int64_t n = 0; !stop; ++n) {
        const std::string v = std::to_string(n);
        const json txn = {{"success", {PutOp(base + "a", v), PutOp(base + "b", v), PutOp(base + "c", v)}}};
        const std::optional<HttpResponse> r = http.TryRequest("POST", "/v1/txn", txn.dump());
        if (!r || r->status != 200) return;  // the server is gone
        acked[t] = n;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  server.Kill9();
  stop = true;
  for (std::thread& th : threads) th.join();
  server.Start();
  HttpClient http(server.port());
  for (int t = 0; t < kThreads; ++t) {
    CAPTURE(t);
    REQUIRE(acked[t] >= 0);  // some transactions were acknowledged
    const std::string base = "t/" + std::to_string(t) + "/";
    const HttpResponse a = http.Get(base + "a");
    REQUIRE(a.status == 200);
    CHECK(http.Get(base + "b").body == a.body);
    CHECK(http.Get(base + "c").body == a.body);
    CHECK(std::stoll(a.body) >= acked[t]);
    // All three written by one transaction: one revision.
    CHECK(http.Get(base + "b").Header("ETag") == a.Header("ETag"));
    CHECK(http.Get(base + "c").Header("ETag") == a.Header("ETag"));
  }

  // A clean restart keeps a transaction's keys with their metadata.
  const HttpResponse before = http.Get("t/0/a");
  http.Close();
  server.Restart();
  HttpClient again(server.port());
  const HttpResponse after = again.Get("t/0/a");
  REQUIRE(after.status == 200);
  CHECK(after.body == before.body);
  for (const char* h : {"ETag", "X-Kvctl-Create-Revision", "X-Kvctl-Version", "X-Kvctl-Lease"}) {
    CAPTURE(h);
    CHECK(after.Header(h) == before.Header(h));
  }
  CHECK(std::stoull(after.Header("X-Kvctl-Version")) == static_cast<uint64_t>(std::stoll(after.body)) + 1);
}

}  // namespace
}  // namespace kvctl::e2e
