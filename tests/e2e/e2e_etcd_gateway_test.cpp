// etcd's JSON API on server.etcd_listen (SPEC §7), proven by software nobody
// here wrote:
// - Debian's python3-etcd3gw ships its functional tests
//   (etcd3gw/tests/test_etcd3gw.py, 22 tests); they run unchanged against
//   kvctl, on both backends, all passing and none skipped. A small pytest
//   plugin (tests/e2e/etcd3gw/kvctl_etcd_port.py) points them at kvctl's
//   port instead of 2379, without editing Debian's files.
// - A differential test: the same requests to Debian's etcd 3.4 (started
//   here on loopback) and to kvctl, the answers compared field by field
//   (cluster and member ids, raft term, lease ids and timing aside).
#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using nlohmann::json;

// Runs etcd3gw's functional tests against an etcd API on `port`; returns
// pytest's summary line, after checking that it ran at all.
std::string RunEtcd3gwTests(int port) {
  REQUIRE_MESSAGE(std::filesystem::exists(kPython), "python3 is missing: scripts/deps.sh test installs it");
  CliOptions options;
  options.env = {{"PYTHONPATH", std::string(KVCTL_SOURCE_DIR) + "/tests/e2e/etcd3gw"},
                 {"KVCTL_ETCD_PORT", std::to_string(port)},
                 // No __pycache__ left in the source tree.
                 {"PYTHONDONTWRITEBYTECODE", "1"}};
  options.limit = std::chrono::seconds(100);
  CliResult r = RunProgram({kPython, "-m", "pytest", "-p", "kvctl_etcd_port", "-p", "no:cacheprovider", "-q",
                            "-rs", "--pyargs", "etcd3gw.tests.test_etcd3gw"},
                           options);
  INFO("pytest stdout:\n" << r.out << "\nstderr:\n" << r.err);
  std::smatch m;
  std::string last_line;
  std::regex summary(R"(=*\s*(\d+ passed[^\n]*))");
  REQUIRE_MESSAGE(std::regex_search(r.out, m, summary), "no pytest summary");
  CHECK(r.exit_code == 0);
  return m[1].str();
}

TEST_CASE("etcd face: Debian's etcd3gw functional tests all pass against kvctl on the file backend, none skipped") {
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  const std::string summary = RunEtcd3gwTests(etcd_port);
  INFO(summary);
  CHECK(summary.starts_with("22 passed"));
  CHECK(summary.find("skipped") == std::string::npos);
  CHECK(summary.find("failed") == std::string::npos);
}

TEST_CASE("etcd face: Debian's etcd3gw functional tests all pass against kvctl on PostgreSQL, none skipped") {
  MigratedDb db;
  const int etcd_port = FreePort();
  PgServer server(db.dsn, {"--etcd-listen", Addr(etcd_port)});
  const std::string summary = RunEtcd3gwTests(etcd_port);
  INFO(summary);
  CHECK(summary.starts_with("22 passed"));
  CHECK(summary.find("skipped") == std::string::npos);
  CHECK(summary.find("failed") == std::string::npos);
}

// What etcd streamed, compared with what kvctl streams (one test case).
std::vector<json> reference_messages_;

TEST_CASE("etcd face: kvctl answers as Debian's etcd 3.4 does, endpoint by endpoint, errors included") {
  EtcdProcess etcd;
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  Side reference{etcd.port(), 1, {}};
  Side kvctl{etcd_port, 0, {}};

  const std::string foo = B64("foo"), a = B64("a"), b = B64("b"), c = B64("c"), d = B64("d"), e = B64("e");
  const std::string v1 = B64("v1"), v2 = B64("v2"), zero = B64(std::string(1, '\0'));
  const std::vector<Step> steps = {
      {"/v3/kv/put", R"({"key":")" + foo + R"(","value":")" + v1 + R"("})"},
      {"/v3/kv/put", R"({"key":")" + foo + R"(","value":")" + v2 + R"(","prev_kv":true})"},
      {"/v3/kv/range", R"({"key":")" + foo + R"("})"},
      {"/v3beta/kv/range", R"({"key":")" + foo + R"(","keys_only":true})"},
      {"/v3/kv/range", R"({"key":")" + B64("nope") + R"("})"},
      {"/v3/kv/put", R"({"key":")" + a + R"(","value":")" + B64("va") + R"("})"},
      {"/v3/kv/put", R"({"key":")" + b + R"(","value":")" + B64("vb") + R"("})"},
      {"/v3/kv/put", R"({"key":")" + c + R"(","value":")" + B64("vc") + R"("})"},
      {"/v3/kv/put", R"({"key":")" + d + R"(","value":")" + B64("vd") + R"("})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + d + R"("})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + e + R"(","limit":2})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + e + R"(","limit":"2","sort_order":"DESCEND"})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + e + R"(","sort_target":"MOD","sort_order":2})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + e + R"(","sort_target":"VALUE","keys_only":true})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + e + R"(","min_mod_revision":"@3","max_mod_revision":@4})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + e + R"(","min_create_revision":@4})"},
      {"/v3/kv/range", R"({"key":")" + zero + R"(","range_end":")" + zero + R"(","count_only":true})"},
      {"/v3/kv/range", R"({"key":")" + b + R"(","range_end":")" + zero + R"("})"},
      {"/v3/kv/range", R"({"key":")" + c + R"(","range_end":")" + a + R"("})"},
      // In the past, where the retained history shows the range unchanged since.
      {"/v3/kv/range", R"({"key":")" + a + R"(","revision":"@3"})"},
      {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + c + R"(","revision":@4})"},
      {"/v3/kv/range", R"({"key":")" + foo + R"(","revision":1000})"},
      {"/v3/kv/range", "{}"},
      {"/v3/kv/range", R"({"key":"!!!"})"},
      {"/v3/kv/range", "{bad"},
      {"/v3/kv/range", "[]"},
      {"/v3/kv/range", R"({"key":")" + foo + R"(","sort_order":"SIDEWAYS"})"},
      {"/v3/kv/put", R"({"value":")" + v1 + R"("})"},
      {"/v3/kv/put", R"({"key":")" + foo + R"(","ignore_value":true,"value":")" + v1 + R"("})"},
      {"/v3/kv/put", R"({"key":")" + B64("ghost") + R"(","ignore_value":true})"},
      {"/v3/kv/put", R"({"key":")" + foo + R"(","lease":"999"})"},
      {"/v3/kv/txn", R"({"compare":[{"key":")" + B64("x") + R"(","result":"EQUAL","target":"CREATE","create_revision":0}],)"
                     R"("success":[{"request_put":{"key":")" + B64("x") + R"(","value":")" + v1 + R"(","prev_kv":true}},)"
                     R"({"request_range":{"key":")" + B64("x") + R"("}}],"failure":[{"request_range":{"key":")" + B64("x") + R"("}}]})"},
      {"/v3/kv/txn", R"({"compare":[{"key":")" + B64("x") + R"(","result":"EQUAL","target":"CREATE","create_revision":0}],)"
                     R"("success":[{"request_put":{"key":")" + B64("x") + R"(","value":")" + v1 + R"("}}],)"
                     R"("failure":[{"request_range":{"key":")" + B64("x") + R"("}},{"request_delete_range":{"key":")" + B64("none") + R"("}}]})"},
      {"/v3/kv/txn", R"({"compare":[{"key":")" + B64("x") + R"(","result":"NOT_EQUAL","target":"VALUE","value":")" + v2 + R"("},)"
                     R"({"key":")" + B64("x") + R"(","target":"VERSION","result":"GREATER","version":"0"},)"
                     R"({"key":")" + B64("x") + R"(","target":"MOD","result":"LESS","mod_revision":1000},)"
                     R"({"key":")" + B64("x") + R"(","target":"LEASE","result":"EQUAL","lease":0}],)"
                     R"("success":[{"request_delete_range":{"key":")" + B64("x") + R"(","prev_kv":true}},)"
                     R"({"request_range":{"key":")" + zero + R"(","range_end":")" + zero + R"(","count_only":true}}]})"},
      {"/v3/kv/txn", "{}"},
      {"/v3/kv/txn", R"({"success":[{"request_put":{"key":")" + B64("y") + R"(","value":")" + v1 + R"("}},)"
                     R"({"request_put":{"key":")" + B64("y") + R"(","value":")" + v2 + R"("}}]})"},
      {"/v3/kv/txn", R"({"compare":[{"key":")" + B64("y") + R"(","result":"BOGUS","target":"VALUE"}]})"},
      {"/v3/kv/txn", R"({"compare":[{"result":"EQUAL","target":"VALUE","value":")" + v1 + R"("}]})"},
      {"/v3/kv/txn", R"({"success":[{}]})"},
      {"/v3/kv/deleterange", R"({"key":")" + a + R"(","range_end":")" + c + R"(","prev_kv":true})"},
      {"/v3/kv/deleterange", R"({"key":")" + B64("none") + R"("})"},
      {"/v3/kv/deleterange", R"({"key":")" + c + R"(","prev_kv":true})"},
      {"/v3/kv/deleterange", "{}"},
      {"/v3/kv/compaction", R"({"revision":100000})"},
      {"/v3/kv/compaction", R"({"revision":"@3","physical":true})"},
      {"/v3/kv/compaction", R"({"revision":-1})"},
      // Leases: a grant takes a revision in kvctl and none in etcd (docs/etcd.md).
      {"/v3/lease/grant", R"({"TTL":60,"ID":0})", 1},
      {"/v3/kv/put", R"({"key":")" + B64("leased") + R"(","value":")" + v1 + R"(","lease":"$L1"})"},
      {"/v3/kv/range", R"({"key":")" + B64("leased") + R"("})"},
      {"/v3/lease/timetolive", R"({"ID":"$L1","keys":true})"},
      {"/v3/kv/lease/timetolive", R"({"ID":"$L1"})"},
      {"/v3/lease/keepalive", R"({"ID":"$L1"})"},
      {"/v3/lease/leases", "{}"},
      {"/v3/kv/put", R"({"key":")" + B64("leased") + R"(","value":")" + v2 + R"(","ignore_lease":true,"prev_kv":true})"},
      {"/v3/kv/range", R"({"key":")" + B64("leased") + R"("})"},
      // Without a lease, ignore_value detaches the key.
      {"/v3/kv/put", R"({"key":")" + B64("leased") + R"(","ignore_value":true})"},
      {"/v3/lease/timetolive", R"({"ID":"$L1","keys":true})"},
      // A revoke of a lease with no keys takes a revision in kvctl only.
      {"/v3/lease/revoke", R"({"ID":"$L1"})", 1},
      {"/v3/kv/range", R"({"key":")" + B64("leased") + R"("})"},
      {"/v3/kv/lease/revoke", R"({"ID":"$L1"})"},
      {"/v3/lease/timetolive", R"({"ID":"123"})"},
      {"/v3/lease/keepalive", R"({"ID":"123"})"},
      {"/v3/lease/grant", R"({"TTL":0})", 1},
      // A lease ID chosen by the client: kept, refused while alive, free again after its revoke.
      {"/v3/lease/grant", R"({"TTL":60,"ID":"7777"})", 1},
      {"/v3/lease/grant", R"({"TTL":30,"ID":7777})"},
      {"/v3/lease/timetolive", R"({"ID":"7777"})"},
      {"/v3/lease/revoke", R"({"ID":"7777"})", 1},
      {"/v3/lease/grant", R"({"TTL":30,"ID":"7777"})", 1},
      {"/v3/maintenance/status", "{}", 0, true},
      {"/v3/cluster/member/list", "{}", 0, true},
      {"/version", "", 0, true},
      {"/v3/kv/nope", "{}"},
      {"/v3/kv/range", "", 0, false, "GET"},
      {"/v3/kv/range", R"({"key":")" + foo + R"(","limit":1e30})"},
  };
  CheckSameAnswers(reference, kvctl, steps);
}

TEST_CASE("etcd face: kv/compaction runs kvctl's compaction, and revisions below the new floor are refused as compacted") {
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port), "--storage-segment-bytes", "4KiB",
                   "--storage-history-retention", "0"});
  auto post = [&](const std::string& path, const std::string& body) { return PostJson(etcd_port, path, body); };
  for (int i = 0; i < 40; ++i) {
    const std::string value = B64(std::string(300, 'v') + std::to_string(i));  // each put a change
    REQUIRE(post("/v3/kv/put", R"({"key":")" + B64("k" + std::to_string(i % 5)) + R"(","value":")" + value + R"("})").first == 200);
  }
  auto [status, answer] = post("/v3/kv/compaction", R"({"revision":40})");
  CHECK(status == 200);
  CHECK(answer["header"]["revision"] == "40");
  auto [range_status, range] = post("/v3/kv/range", R"({"key":")" + B64("k1") + R"(","revision":2})");
  CHECK(range_status == 400);
  CHECK(range["code"] == 11);
  CHECK(range["error"] == "etcdserver: mvcc: required revision has been compacted");
  auto [again_status, again] = post("/v3/kv/compaction", R"({"revision":2})");
  CHECK(again_status == 400);
  CHECK(again["error"] == "etcdserver: mvcc: required revision has been compacted");
  // The data is all there.
  auto [now_status, now] = post("/v3/kv/range", R"({"key":")" + B64("k") + R"(","range_end":")" + B64("l") + R"("})");
  CHECK(now_status == 200);
  CHECK(now["count"] == "5");
}

TEST_CASE("etcd face: a negative lease ID is refused with code 3, where etcd takes any int64") {
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  const RawAnswer r = RawRequest(etcd_port, "POST", "/v3/lease/grant", R"({"TTL":60,"ID":"-5"})");
  CHECK(r.status == 400);
  const json body = json::parse(r.body);
  CHECK(body["code"] == 3);
  CHECK(body["error"].get<std::string>().find("positive") != std::string::npos);
  CHECK(RawRequest(etcd_port, "POST", "/v3/lease/leases", "{}").body.find("\"ID\"") == std::string::npos);
}

TEST_CASE("etcd face: a range at a past revision is answered from retained history, or refused, never with current data") {
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  auto post = [&](const std::string& path, const std::string& body) { return PostJson(etcd_port, path, body); };
  const std::string a = B64("a"), b = B64("b");
  post("/v3/kv/put", R"({"key":")" + a + R"(","value":")" + B64("a1") + R"("})");  // 1
  post("/v3/kv/put", R"({"key":")" + b + R"(","value":")" + B64("b1") + R"("})");  // 2
  post("/v3/kv/put", R"({"key":")" + b + R"(","value":")" + B64("b2") + R"("})");  // 3
  for (bool restarted : {false, true}) {
    CAPTURE(restarted);  // after a restart, the history comes from the log on disk
    auto [status, unchanged] = post("/v3/kv/range", R"({"key":")" + a + R"(","revision":1})");
    CHECK(status == 200);
    CHECK(unchanged["kvs"][0]["value"] == B64("a1"));
    CHECK(unchanged["header"]["revision"] == "3");
    // b changed since 2: its value then, from the history, not its value now.
    auto [changed_status, changed] = post("/v3/kv/range", R"({"key":")" + b + R"(","revision":2})");
    CHECK(changed_status == 200);
    REQUIRE(changed["kvs"].size() == 1);
    CHECK(changed["kvs"][0]["value"] == B64("b1"));
    CHECK(changed["kvs"][0]["mod_revision"] == "2");
    CHECK(changed["header"]["revision"] == "3");
    auto [before_status, before] = post("/v3/kv/range", R"({"key":")" + b + R"(","revision":1})");
    CHECK(before_status == 200);
    CHECK(!before.contains("kvs"));  // b was created at 2
    auto [future_status, future] = post("/v3/kv/range", R"({"key":")" + a + R"(","revision":4})");
    CHECK(future_status == 400);
    CHECK(future["code"] == 11);
    if (!restarted) {
      server.Stop();
      server.Start();
    }
  }
  // With a short retained history, a key whose state at the revision is
  // older than the history is refused as compacted, never answered with
  // what it holds now.
  const int small_port = FreePort();
  KvServer small({"--etcd-listen", Addr(small_port), "--storage-segment-bytes", "4KiB",
                  "--storage-history-retention", "10"});
  auto small_post = [&](const std::string& path, const std::string& body) {
    RawAnswer r = RawRequest(small_port, "POST", path, body);
    return std::make_pair(r.status, json::parse(r.body));
  };
  const std::string old_key = B64("old");
  small_post("/v3/kv/put", R"({"key":")" + old_key + R"(","value":")" + B64("o1") + R"("})");  // 1
  for (int i = 0; i < 300; ++i) {  // many 4 KiB segments, most of them older than the retained 10 revisions
    small_post("/v3/kv/put", R"({"key":")" + B64("filler" + std::to_string(i)) + R"(","value":"MQ=="})");
  }
  HttpClient http(small.port());
  REQUIRE(http.Request("POST", "/v1/admin/compact").status == 200);
  small_post("/v3/kv/put", R"({"key":")" + old_key + R"(","value":")" + B64("o2") + R"("})");  // 302
  // The floor, as a watch from the start says it: canceled, compacted up to it.
  const auto watch = WatchMessages(small_port, R"({"create_request":{"key":")" + old_key + R"(","start_revision":1}})",
                                   2, [] {});
  REQUIRE(watch.size() == 2);
  REQUIRE(watch[1]["result"].contains("compact_revision"));
  const int64_t compacted = std::stoll(watch[1]["result"]["compact_revision"].get<std::string>());
  REQUIRE(compacted > 1);
  REQUIRE(compacted < 300);
  const std::string floor = std::to_string(compacted + 1);
  // "old" changed at 302; its value at the floor is from revision 1, folded away.
  auto [old_status, old_answer] = small_post("/v3/kv/range", R"({"key":")" + old_key + R"(","revision":)" + floor + "}");
  CHECK(old_status == 400);
  CHECK(old_answer["code"] == 11);
  CHECK(old_answer["error"] == "etcdserver: mvcc: required revision has been compacted");
  CHECK(!old_answer.contains("kvs"));
  // A key that did not change since is still answered at that revision.
  auto [kept_status, kept] =
      small_post("/v3/kv/range", R"({"key":")" + B64("filler0") + R"(","revision":)" + floor + "}");
  CHECK(kept_status == 200);
  REQUIRE(kept["kvs"].size() == 1);
  CHECK(kept["kvs"][0]["mod_revision"] == "2");
}

TEST_CASE("etcd face: a watch streams what Debian's etcd 3.4 streams: created, then each revision's events") {
  EtcdProcess etcd;
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  Side reference{etcd.port(), 1, {}, {}};
  Side kvctl{etcd_port, 0, {}, {}};
  const std::string w = B64("w/1"), prefix = B64("w/"), end = B64("w0");
  for (Side* side : {&reference, &kvctl}) {
    CAPTURE(side->port);
    // Not from an empty store: kvctl's is at revision 0, which a header
    // omits, where etcd's is at 1 (docs/etcd.md).
    RawRequest(side->port, "POST", "/v3/kv/put", R"({"key":")" + B64("seed") + R"(","value":"MQ=="})");
    const auto messages = WatchMessages(
        side->port, R"({"create_request":{"key":")" + prefix + R"(","range_end":")" + end + R"("}})", 3, [&] {
          RawRequest(side->port, "POST", "/v3/kv/put", R"({"key":")" + w + R"(","value":"MQ=="})");
          RawRequest(side->port, "POST", "/v3/kv/deleterange", R"({"key":")" + w + R"("})");
        });
    REQUIRE(messages.size() == 3);
    std::vector<json> normalized;
    for (json m : messages) {
      Normalize(m, *side, false);
      normalized.push_back(std::move(m));
    }
    if (side == &reference) {
      reference_messages_ = normalized;
    } else {
      for (size_t i = 0; i < normalized.size(); ++i) {
        INFO("message " << i << "\n etcd:  " << reference_messages_[i].dump() << "\n kvctl: " << normalized[i].dump());
        CHECK(normalized[i] == reference_messages_[i]);
      }
    }
  }
}

}  // namespace
}  // namespace kvctl::e2e
