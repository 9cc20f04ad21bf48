// The etcd face's past reads of changed ranges and its watches (prev_kv,
// any range, several requests on one stream, cancels, progress requests),
// compared with Debian's etcd 3.4 on loopback (etcd_differential.h), and
// the same reads on PostgreSQL (docs/etcd.md).
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using json = nlohmann::json;

const std::string kFromKeyOn = "AA==";  // "\0" in base64

std::string PutBody(const std::string& key, const std::string& value) {
  return R"({"key":")" + B64(key) + R"(","value":")" + B64(value) + R"("})";
}

void Post(const Side& side, const std::string& path, const std::string& body) {
  RawAnswer r = RawRequest(side.port, "POST", path, body);
  REQUIRE(r.status == 200);
}

// What a watch stream said, normalized, by watch id: each answer to a
// request and each event, in order. etcd sends the events of one revision
// to several watches in no set order, and splits events into messages its
// own way (live: one revision per message; history: all at once, under
// the current revision's header), so each watch's events are compared one
// by one, not how they were packed (docs/etcd.md).
std::map<std::string, std::vector<json>> ByWatch(const std::vector<json>& messages, Side& side) {
  std::map<std::string, std::vector<json>> grouped;
  for (json m : messages) {
    Normalize(m, side, false);
    json& result = m["result"];
    const std::string id = result.contains("watch_id") ? result["watch_id"].get<std::string>() : "0";
    if (result.contains("events")) {
      for (json& e : result["events"]) grouped[id].push_back({{"event", std::move(e)}});
    } else {
      grouped[id].push_back(std::move(m));
    }
  }
  return grouped;
}

// Answers plus events: what ByWatch counts.
size_t Units(const std::vector<json>& messages) {
  size_t n = 0;
  for (const json& m : messages) {
    const json& result = m.contains("result") ? m["result"] : m;
    n += result.contains("events") ? result["events"].size() : 1;
  }
  return n;
}

void CheckSameStreams(const std::map<std::string, std::vector<json>>& etcd,
                      const std::map<std::string, std::vector<json>>& kvctl) {
  CHECK(etcd.size() == kvctl.size());
  for (const auto& [id, want] : etcd) {
    CAPTURE(id);
    auto it = kvctl.find(id);
    REQUIRE(it != kvctl.end());
    const std::vector<json>& got = it->second;
    CHECK(got.size() == want.size());
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
      INFO("item " << i << "\n etcd:  " << want[i].dump() << "\n kvctl: " << got[i].dump());
      CHECK(got[i] == want[i]);
    }
  }
}

// The same watch on both servers, each from the same history (`prepare`),
// with `live` run once `ready` answers and events have come; read until
// `count` have.
void CheckSameWatch(const std::function<void(Side&)>& prepare, const std::function<std::string(Side&)>& body,
                    size_t ready, const std::function<void(Side&)>& live, size_t count) {
  EtcdProcess etcd;
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  Side reference{etcd.port(), 1, {}, {}};
  Side kvctl{etcd_port, 0, {}, {}};
  std::map<std::string, std::vector<json>> streams[2];
  int n = 0;
  for (Side* side : {&reference, &kvctl}) {
    CAPTURE(side->port);
    prepare(*side);
    const auto messages = WatchMessagesUntil(
        side->port, body(*side), [&](const std::vector<json>& m) { return Units(m) >= ready; }, [&] { live(*side); },
        [&](const std::vector<json>& m) { return Units(m) >= count; });
    CHECK(Units(messages) == count);
    streams[n++] = ByWatch(messages, *side);
  }
  CheckSameStreams(streams[0], streams[1]);
}

std::string Create(const std::string& fields) { return R"({"create_request":{)" + fields + "}}"; }

}  // namespace

TEST_CASE(
    "etcd face: past reads of changed ranges answer what Debian's etcd "
    "3.4 answers: values, deletes, re-creates") {
  EtcdProcess etcd;
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  Side reference{etcd.port(), 1, {}, {}};
  Side kvctl{etcd_port, 0, {}, {}};
  const std::string a = B64("a"), b = B64("b"), d = B64("d");
  std::vector<Step> steps = {
      {"/v3/kv/put", PutBody("a", "a1")},                   // @1
      {"/v3/kv/put", PutBody("b", "b1")},                   // @2
      {"/v3/kv/put", PutBody("a", "a2")},                   // @3
      {"/v3/kv/deleterange", R"({"key":")" + b + R"("})"},  // @4
      {"/v3/kv/put", PutBody("b", "b2")},                   // @5: b again, a new life
      {"/v3/kv/put", PutBody("c", "c1")},                   // @6
      {"/v3/kv/put", PutBody("d", "d1")},                   // @7, outside [a, d)
      {"/v3/kv/put", PutBody("a", "a3")},                   // @8
  };
  for (int r = 1; r <= 8; ++r) {
    steps.push_back(
        {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + d + R"(","revision":@)" + std::to_string(r) + "}"});
  }
  for (const std::string& extra :
       {std::string(R"(,"count_only":true)"), std::string(R"(,"keys_only":true)"), std::string(R"(,"limit":1)"),
        std::string(R"(,"sort_order":"DESCEND","sort_target":"MOD")"), std::string(R"(,"min_mod_revision":@2)")}) {
    steps.push_back(
        {"/v3/kv/range", R"({"key":")" + a + R"(","range_end":")" + d + R"(","revision":@3)" + extra + "}"});
  }
  for (int r : {1, 2, 4, 5}) {
    steps.push_back({"/v3/kv/range", R"({"key":")" + b + R"(","revision":@)" + std::to_string(r) + "}"});
    steps.push_back({"/v3/kv/range", R"({"key":")" + b + R"(","range_end":")" + kFromKeyOn + R"(","revision":@)" +
                                         std::to_string(r) + "}"});
  }
  steps.push_back({"/v3/kv/range", R"({"key":")" + a + R"(","revision":@9})"});  // future
  CheckSameAnswers(reference, kvctl, steps);
}

TEST_CASE(
    "etcd face: watch events carry prev_kv as Debian's etcd 3.4's do, "
    "from history and live, beside filters") {
  const std::string p = B64("p/"), end = B64("p0");
  CheckSameWatch(
      [](Side& side) {
        Post(side, "/v3/kv/put", PutBody("p/a", "1"));  // @1
        Post(side, "/v3/kv/put", PutBody("p/a", "2"));  // @2
        Post(side, "/v3/kv/put", PutBody("p/b", "1"));  // @3
        Post(side, "/v3/kv/deleterange",
             R"({"key":")" + B64("p/a") + R"("})");  // @4
      },
      [&](Side& side) {
        const std::string from = std::to_string(side.Raw(2));
        return Create(R"("key":")" + p + R"(","range_end":")" + end + R"(","start_revision":)" + from +
                      R"(,"prev_kv":true)") +
               Create(R"("key":")" + p + R"(","range_end":")" + end + R"(","start_revision":)" + from +
                      R"(,"filters":["NOPUT"])");
      },
      2 + 3 + 1,  // both created, then each one's history (NOPUT: the delete only)
      [](Side& side) {
        Post(side, "/v3/kv/put", PutBody("p/b", "2"));  // @5: prev p/b=1
        Post(side, "/v3/kv/put", PutBody("p/a", "3"));  // @6: p/a did not exist before
        Post(side, "/v3/kv/deleterange",
             R"({"key":")" + B64("p/b") + R"("})");  // @7
      },
      2 + 3 + 1 + 3 + 1);
}

TEST_CASE(
    "etcd face: watches of any range on one stream stream what Debian's "
    "etcd 3.4 streams") {
  CheckSameWatch([](Side& side) { Post(side, "/v3/kv/put", PutBody("seed", "1")); },
                 [](Side&) {
                   // [b, d) is not a prefix; "\0" is every key from c on; the third
                   // has prev_kv and NODELETE over [b, d).
                   return Create(R"("key":")" + B64("b") + R"(","range_end":")" + B64("d") + R"(")") + "\n" +
                          Create(R"("key":")" + B64("c") + R"(","range_end":")" + kFromKeyOn + R"(")") + "\n" +
                          Create(R"("key":")" + B64("b") + R"(","range_end":")" + B64("d") +
                                 R"(","prev_kv":true,"filters":["NODELETE"])");
                 },
                 3,
                 [](Side& side) {
                   // (c's second put has a new value: kvctl takes no revision for the same
                   // value; docs/etcd.md)
                   int n = 0;
                   for (const char* k : {"a", "b", "c", "d", "e", "bz", "c"}) {
                     Post(side, "/v3/kv/put", PutBody(k, std::to_string(++n)));
                   }
                   Post(side, "/v3/kv/deleterange", R"({"key":")" + B64("b") + R"("})");
                 },
                 3 + 5 + 4 + 4);
}

TEST_CASE(
    "etcd face: one watch body's creates, cancels and progress requests "
    "are answered as Debian's etcd 3.4 answers them") {
  const std::string x = B64("x"), y = B64("y");
  CheckSameWatch([](Side& side) { Post(side, "/v3/kv/put", PutBody("seed", "1")); },
                 [&](Side&) {
                   return Create(R"("key":")" + x + R"(")") +                             // id 0
                          Create(R"("key":")" + y + R"(","watch_id":"5")") +              // the client's id
                          R"({"cancel_request":{"watch_id":"0"}})" +                      // canceled
                          R"({"progress_request":{}})" +                                  // a progress header, id -1
                          Create(R"("key":")" + y + R"(","watch_id":"5")") +              // a duplicate id: refused
                          Create(R"("key":")" + y + R"(","range_end":")" + x + R"(")") +  // an empty range: refused
                          R"({"cancel_request":{"watch_id":"42"}})" +                     // no such watch: no
                                                                                          // answer
                          "{}" +                                                          // nothing to answer
                          Create(R"("key":")" + x + R"(")");                              // the next id, 1
                 },
                 7,
                 [](Side& side) {
                   Post(side, "/v3/kv/put", PutBody("x", "1"));  // only watch 1 sees it (0 was canceled)
                   Post(side, "/v3/kv/put", PutBody("y", "1"));  // watch 5
                 },
                 9);
}

TEST_CASE(
    "etcd face: a prev_kv watch whose start state is older than the "
    "retained history is canceled as compacted") {
  const int etcd_port = FreePort();
  KvServer server(
      {"--etcd-listen", Addr(etcd_port), "--storage-segment-bytes", "4KiB", "--storage-history-retention", "10"});
  const Side side{etcd_port, 0, {}, {}};
  Post(side, "/v3/kv/put", PutBody("old", "o1"));  // 1
  for (int i = 0; i < 300; ++i) Post(side, "/v3/kv/put", PutBody("filler" + std::to_string(i), "1"));
  HttpClient http(server.port());
  REQUIRE(http.Request("POST", "/v1/admin/compact").status == 200);
  Post(side, "/v3/kv/put", PutBody("old", "o2"));  // 302
  const auto floor_watch =
      WatchMessages(etcd_port, Create(R"("key":")" + B64("old") + R"(","start_revision":1)"), 2, [] {});
  REQUIRE(floor_watch.size() == 2);
  const std::string compacted = floor_watch[1]["result"].value("compact_revision", "0");
  REQUIRE(std::stoll(compacted) > 1);
  const std::string floor = std::to_string(std::stoll(compacted) + 1);

  // Without prev_kv a watch from the floor is served; with it, "old"'s
  // state before the floor is not in the history: created, then canceled.
  const auto plain =
      WatchMessages(etcd_port, Create(R"("key":")" + B64("old") + R"(","start_revision":)" + floor), 2, [] {});
  REQUIRE(plain.size() == 2);
  CHECK(plain[1]["result"]["events"][0]["kv"]["value"] == B64("o2"));
  const auto with_prev = WatchMessages(
      etcd_port, Create(R"("key":")" + B64("old") + R"(","start_revision":)" + floor + R"(,"prev_kv":true)"), 2, [] {});
  REQUIRE(with_prev.size() == 2);
  CHECK(with_prev[0]["result"]["created"] == true);
  CHECK(with_prev[1]["result"]["canceled"] == true);
  CHECK(with_prev[1]["result"]["compact_revision"] == compacted);
  CHECK_FALSE(with_prev[1]["result"].contains("events"));
}

TEST_CASE(
    "etcd face: on PostgreSQL a past read of a changed range and watch "
    "prev_kv come from kv_log") {
  MigratedDb db;
  const int etcd_port = FreePort();
  PgServer server(db.dsn, {"--etcd-listen", Addr(etcd_port)});
  auto post = [&](const std::string& path, const std::string& body) {
    auto [status, answer] = PostJson(etcd_port, path, body);
    REQUIRE(status == 200);
    return answer;
  };
  const uint64_t base = [&] {
    json h = post("/v3/kv/range", R"({"key":")" + B64("k") + R"("})")["header"];
    return h.contains("revision") ? std::stoull(h["revision"].get<std::string>()) : 0;
  }();
  auto rev = [&](uint64_t n) { return std::to_string(base + n); };
  post("/v3/kv/put", PutBody("k", "1"));                           // +1
  post("/v3/kv/put", PutBody("k", "2"));                           // +2
  post("/v3/kv/deleterange", R"({"key":")" + B64("k") + R"("})");  // +3
  post("/v3/kv/put", PutBody("k", "3"));                           // +4

  json at1 = post("/v3/kv/range", R"({"key":")" + B64("k") + R"(","revision":)" + rev(1) + "}");
  REQUIRE(at1["kvs"].size() == 1);
  CHECK(at1["kvs"][0]["value"] == B64("1"));
  CHECK(at1["kvs"][0]["mod_revision"] == rev(1));
  CHECK(at1["header"]["revision"] == rev(4));
  json at3 = post("/v3/kv/range", R"({"key":")" + B64("k") + R"(","revision":)" + rev(3) + "}");
  CHECK_FALSE(at3.contains("kvs"));
  CHECK_FALSE(at3.contains("count"));

  // created, 3 events from kv_log, then 1 live: however they are packed.
  const auto messages = WatchMessagesUntil(
      etcd_port, Create(R"("key":")" + B64("k") + R"(","start_revision":)" + rev(2) + R"(,"prev_kv":true)"),
      [](const std::vector<json>& m) { return Units(m) >= 4; }, [&] { post("/v3/kv/put", PutBody("k", "4")); },
      [](const std::vector<json>& m) { return Units(m) >= 5; });
  REQUIRE(Units(messages) == 5);
  CHECK(messages[0]["result"]["created"] == true);
  std::vector<json> events;
  for (const json& m : messages) {
    for (const json& e : m["result"].value("events", json::array())) events.push_back(e);
  }
  REQUIRE(events.size() == 4);
  CHECK(events[0]["kv"]["value"] == B64("2"));
  CHECK(events[0]["prev_kv"]["value"] == B64("1"));
  CHECK(events[1]["type"] == "DELETE");
  CHECK(events[1]["prev_kv"]["value"] == B64("2"));
  CHECK(events[2]["kv"]["value"] == B64("3"));
  CHECK_FALSE(events[2].contains("prev_kv"));  // re-created: nothing before it
  CHECK(events[3]["kv"]["value"] == B64("4"));
  CHECK(events[3]["prev_kv"]["value"] == B64("3"));
}

}  // namespace kvctl::e2e
