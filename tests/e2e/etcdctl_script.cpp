#include "tests/e2e/etcdctl_script.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/etcdctl.h"
#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// What etcdctl 3.4's interactive txn prints on stdout before it reads each
// of the three blank-line-ended parts from stdin.
const std::string kTxnPrompts =
    "compares:\n"
    "success requests (get, put, del):\n"
    "failure requests (get, put, del):\n";

// `etcdctl watch` runs until killed: it does not catch SIGTERM (lock and
// elect do, to unlock or resign first), so it exits as killed by it.
constexpr int kWatchStopped = 128 + SIGTERM;

// The one event a watch prints in etcdctl's simple format: three lines.
struct Event {
  std::string type, key, value;
  bool operator==(const Event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Event& e) { return os << e.type << " " << e.key << "=" << e.value; }

std::string Describe(const std::vector<Event>& events) {
  std::ostringstream os;
  for (const auto& e : events) os << "[" << e << "] ";
  return os.str();
}

// `watch` in the simple format prints each event as its type, its key and
// its value (empty for a DELETE), a line each. Only whole events are taken.
std::vector<Event> ParseEvents(const std::string& out) {
  auto lines = Lines(out);
  if (!out.ends_with("\n") && !lines.empty()) lines.pop_back();  // a line still being written
  std::vector<Event> events;
  for (size_t i = 0; i + 2 < lines.size(); i += 3) events.push_back({lines[i], lines[i + 1], lines[i + 2]});
  return events;
}

size_t CountLines(const std::string& text, const std::string& wanted) {
  const auto lines = Lines(text);
  return static_cast<size_t>(std::count(lines.begin(), lines.end(), wanted));
}

// What the server is, read from a first answer, and checked to stay the
// same in every later answer that carries it.
struct Identity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
};

void CheckHeader(json header, const Identity& id) {
  INFO("header: " << header.dump());
  CHECK(header["cluster_id"].get<uint64_t>() == id.cluster_id);
  CHECK(header["member_id"].get<uint64_t>() == id.member_id);
  CHECK(header["raft_term"].get<uint64_t>() >= 1);
}

std::string Hex(uint64_t n) {
  std::ostringstream os;
  os << std::hex << n;
  return os.str();
}

// ------------------------------------------------------------------ the steps

// put, get (one key, a prefix, keys only, values only, JSON, a past
// revision), del (the count printed).
Identity KeyValue(const Etcdctl& etcdctl) {
  // A server that does not speak etcd's gRPC stops the script here, at
  // once, not after every command has waited out its timeout.
  const EtcdctlRun first = etcdctl.Exec({"put", "kv/a", "1"});
  REQUIRE_MESSAGE(first.exit_code() == 0, "etcdctl's first put was not answered: " << first.Shown());
  CHECK(first.out() == "OK\n");
  CHECK(etcdctl.Ok({"put", "kv/b", "2"}) == "OK\n");
  CHECK(etcdctl.Ok({"put", "kv/c", "3"}) == "OK\n");
  CHECK(etcdctl.Ok({"put", "kw", "outside"}) == "OK\n");  // after kv/'s range, not under its prefix

  CHECK(etcdctl.Ok({"get", "kv/a"}) == "kv/a\n1\n");
  CHECK(etcdctl.Ok({"get", "kv/none"}) == "");
  CHECK(etcdctl.Ok({"get", "kv/", "--prefix"}) == "kv/a\n1\nkv/b\n2\nkv/c\n3\n");
  CHECK(etcdctl.Ok({"get", "kv/", "--prefix", "--keys-only"}) == "kv/a\n\nkv/b\n\nkv/c\n\n");
  CHECK(etcdctl.Ok({"get", "kv/", "--prefix", "--print-value-only"}) == "1\n2\n3\n");
  CHECK(etcdctl.Ok({"get", "kv/", "--prefix", "--limit", "2"}) == "kv/a\n1\nkv/b\n2\n");
  // A range [kv/b, kw): kv/b and kv/c, not kw itself.
  CHECK(etcdctl.Ok({"get", "kv/b", "kw"}) == "kv/b\n2\nkv/c\n3\n");

  json listed = etcdctl.Json({"get", "kv/", "--prefix"});
  INFO("get kv/ --prefix -w json: " << listed.dump());
  const Identity id{listed["header"]["cluster_id"].get<uint64_t>(), listed["header"]["member_id"].get<uint64_t>()};
  CHECK(id.cluster_id != 0);
  CHECK(id.member_id != 0);
  CheckHeader(listed["header"], id);
  CHECK(listed["count"] == 3);
  REQUIRE(listed["kvs"].size() == 3);
  const std::vector<std::string> keys{"kv/a", "kv/b", "kv/c"}, values{"1", "2", "3"};
  for (size_t i = 0; i < 3; ++i) {
    json& kv = listed["kvs"][i];
    CHECK(Base64Decode(kv["key"].get<std::string>()) == keys[i]);
    CHECK(Base64Decode(kv["value"].get<std::string>()) == values[i]);
    CHECK(kv["version"] == 1);
    CHECK(kv["create_revision"] == kv["mod_revision"]);
  }
  // One revision per put, in order; the put of kw came after them.
  const int64_t a_created = listed["kvs"][0]["mod_revision"].get<int64_t>();
  CHECK(listed["kvs"][1]["mod_revision"].get<int64_t>() == a_created + 1);
  CHECK(listed["kvs"][2]["mod_revision"].get<int64_t>() == a_created + 2);
  CHECK(listed["header"]["revision"].get<int64_t>() == a_created + 3);

  // A second put: a new revision and version, the same create revision; the
  // value before it still readable at its revision.
  CHECK(etcdctl.Ok({"put", "kv/a", "1bis"}) == "OK\n");
  json a = etcdctl.Json({"get", "kv/a"});
  INFO("get kv/a -w json: " << a.dump());
  REQUIRE(a["kvs"].size() == 1);
  CHECK(a["kvs"][0]["version"] == 2);
  CHECK(a["kvs"][0]["create_revision"].get<int64_t>() == a_created);
  CHECK(a["kvs"][0]["mod_revision"].get<int64_t>() == a_created + 4);
  CHECK(a["header"]["revision"].get<int64_t>() == a_created + 4);
  CHECK(etcdctl.Ok({"get", "kv/a", "--rev", std::to_string(a_created)}) == "kv/a\n1\n");
  CHECK(etcdctl.Ok({"get", "kv/c", "--rev", std::to_string(a_created)}) == "");  // before kv/c was created

  CHECK(etcdctl.Ok({"del", "kv/c"}) == "1\n");
  CHECK(etcdctl.Ok({"del", "kv/", "--prefix"}) == "2\n");
  CHECK(etcdctl.Ok({"del", "kv/", "--prefix"}) == "0\n");
  CHECK(etcdctl.Ok({"get", "kv/", "--prefix"}) == "");
  CHECK(etcdctl.Ok({"get", "kw"}) == "kw\noutside\n");  // not under the prefix: kept
  return id;
}

// txn in its interactive form: compares, success ops, failure ops, each
// part ended by an empty line on stdin.
void Txn(const Etcdctl& etcdctl) {
  CHECK(etcdctl.Ok({"put", "tx/k", "v1"}) == "OK\n");

  // The compare holds: the success ops run, their answers printed in order.
  CHECK(etcdctl.Ok({"txn", "-i"}, "value(\"tx/k\") = \"v1\"\n\nput tx/k v2\nget tx/k\n\nput tx/failure ran\n\n") ==
        kTxnPrompts + "SUCCESS\n\nOK\n\ntx/k\nv2\n");
  CHECK(etcdctl.Ok({"get", "tx/failure"}) == "");

  // The same compare fails now: the failure ops run instead.
  CHECK(etcdctl.Ok({"txn", "-i"}, "value(\"tx/k\") = \"v1\"\n\nput tx/k v3\n\nput tx/failure ran\nget tx/k\n\n") ==
        kTxnPrompts + "FAILURE\n\nOK\n\ntx/k\nv2\n");
  CHECK(etcdctl.Ok({"get", "tx/failure"}) == "tx/failure\nran\n");
  CHECK(etcdctl.Ok({"get", "tx/k"}) == "tx/k\nv2\n");

  // Several compares on version, create and mod revisions, all holding; a
  // delete prints its count.
  CHECK(etcdctl.Ok({"txn", "-i"},
                   "version(\"tx/k\") = \"2\"\ncreate(\"tx/none\") = \"0\"\nmod(\"tx/k\") > \"0\"\n\n"
                   "del tx/failure\n\n\n") == kTxnPrompts + "SUCCESS\n\n1\n");
  // One of them not holding fails the whole: nothing deleted.
  CHECK(etcdctl.Ok({"txn", "-i"}, "version(\"tx/k\") = \"2\"\ncreate(\"tx/k\") = \"0\"\n\ndel tx/k\n\n\n") ==
        kTxnPrompts + "FAILURE\n");  // no failure ops: nothing after it
  CHECK(etcdctl.Ok({"get", "tx/k"}) == "tx/k\nv2\n");

  // The JSON form: succeeded, and each answer under its type.
  const EtcdctlRun json_run = etcdctl.Exec({"txn", "-w", "json"}, "value(\"tx/k\") = \"v2\"\n\nput tx/k v3\nget tx/k\n\n\n");
  INFO(json_run.Shown());
  CHECK(json_run.exit_code() == 0);
  json answer = json::parse(json_run.out(), nullptr, false);
  REQUIRE(!answer.is_discarded());
  CHECK(answer["succeeded"] == true);
  REQUIRE(answer["responses"].size() == 2);
  const int64_t revision = answer["header"]["revision"].get<int64_t>();
  CHECK(answer["responses"][0]["Response"]["ResponsePut"]["header"]["revision"].get<int64_t>() == revision);
  json& range = answer["responses"][1]["Response"]["ResponseRange"];
  REQUIRE(range["kvs"].size() == 1);
  CHECK(Base64Decode(range["kvs"][0]["value"].get<std::string>()) == "v3");
  CHECK(range["kvs"][0]["mod_revision"].get<int64_t>() == revision);  // the txn's put, seen inside it
  CHECK(range["kvs"][0]["version"] == 3);

  // A get at a past revision inside a txn answers what the key held then,
  // though the txn wrote it first; one not there yet refuses the txn,
  // which writes nothing.
  const std::string at = std::to_string(revision);
  CHECK(etcdctl.Ok({"txn"}, "\nput tx/k v4\nget tx/k --rev=" + at + "\nget tx/k\n\n\n") ==
        "SUCCESS\n\nOK\n\ntx/k\nv3\n\ntx/k\nv4\n");
  const EtcdctlRun future =
      etcdctl.Exec({"txn"}, "\nput tx/k v5\nget tx/k --rev=" + std::to_string(revision + 100) + "\n\n\n");
  INFO(future.Shown());
  CHECK(future.exit_code() != 0);
  CHECK(future.err().find("required revision is a future revision") != std::string::npos);
  CHECK(etcdctl.Ok({"get", "tx/k"}) == "tx/k\nv4\n");
}

// lease grant, put --lease, timetolive --keys, keep-alive --once, list,
// revoke (which deletes the lease's keys), and the refusals of a lease
// that is gone.
void Leases(const Etcdctl& etcdctl) {
  const std::string granted = etcdctl.Ok({"lease", "grant", "60"});
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_match(granted, m, std::regex("lease ([0-9a-f]{16}) granted with TTL\\(60s\\)\n")),
                  "lease grant 60 printed: " << granted);
  const std::string id = m[1].str();  // etcdctl prints lease ids as 16 hex digits
  const uint64_t id_number = std::stoull(id, nullptr, 16);
  CHECK(id_number != 0);

  json second = etcdctl.Json({"lease", "grant", "30"});
  INFO("lease grant 30 -w json: " << second.dump());
  CHECK(second["TTL"] == 30);
  CHECK(second["Error"] == "");
  const uint64_t second_number = second["ID"].get<uint64_t>();
  CHECK(second_number != 0);
  CHECK(second_number != id_number);
  char second_id[17];
  std::snprintf(second_id, sizeof second_id, "%016llx", static_cast<unsigned long long>(second_number));

  CHECK(etcdctl.Ok({"put", "--lease=" + id, "ls/k", "v"}) == "OK\n");
  CHECK(etcdctl.Ok({"put", "--lease=" + id, "ls/j", "w"}) == "OK\n");
  json leased = etcdctl.Json({"get", "ls/k"});
  INFO("get ls/k -w json: " << leased.dump());
  REQUIRE(leased["kvs"].size() == 1);
  CHECK(leased["kvs"][0]["lease"].get<uint64_t>() == id_number);

  const std::string ttl = etcdctl.Ok({"lease", "timetolive", id, "--keys"});
  REQUIRE_MESSAGE(std::regex_match(ttl, m,
                                   std::regex("lease " + id +
                                              " granted with TTL\\(60s\\), remaining\\(([0-9]+)s\\), "
                                              "attached keys\\(\\[(.*)\\]\\)\n")),
                  "lease timetolive --keys printed: " << ttl);
  CHECK(std::stoi(m[1].str()) >= 1);
  CHECK(std::stoi(m[1].str()) <= 60);
  const std::string attached = m[2].str();  // in no promised order
  CHECK((attached == "ls/k ls/j" || attached == "ls/j ls/k"));

  json ttl_json = etcdctl.Json({"lease", "timetolive", id, "--keys"});
  INFO("lease timetolive --keys -w json: " << ttl_json.dump());
  CHECK(ttl_json["id"].get<uint64_t>() == id_number);
  CHECK(ttl_json["granted-ttl"] == 60);
  CHECK(ttl_json["ttl"].get<int64_t>() >= 1);
  CHECK(ttl_json["ttl"].get<int64_t>() <= 60);
  std::set<std::string> keys;
  for (const auto& k : ttl_json["keys"]) keys.insert(Base64Decode(k.get<std::string>()));
  CHECK(keys == std::set<std::string>{"ls/j", "ls/k"});

  CHECK(etcdctl.Ok({"lease", "keep-alive", "--once", id}) == "lease " + id + " keepalived with TTL(60)\n");

  const auto listed = Lines(etcdctl.Ok({"lease", "list"}));
  REQUIRE(listed.size() == 3);
  CHECK(listed[0] == "found 2 leases");
  CHECK(std::set<std::string>(listed.begin() + 1, listed.end()) == std::set<std::string>{id, second_id});

  CHECK(etcdctl.Ok({"lease", "revoke", id}) == "lease " + id + " revoked\n");
  CHECK(etcdctl.Ok({"get", "ls/", "--prefix"}) == "");  // its keys went with it
  CHECK(etcdctl.Ok({"lease", "timetolive", id}) == "lease " + id + " already expired\n");
  // etcdctl exits 2 for any keep-alive error, 1 for the others.
  etcdctl.Refused({"lease", "keep-alive", "--once", id}, 2, "etcdserver: requested lease not found");
  etcdctl.Refused({"lease", "revoke", id}, 1, "failed to revoke lease (etcdserver: requested lease not found)");
  etcdctl.Refused({"put", "--lease=" + id, "ls/k", "v"}, 1, "etcdserver: requested lease not found");
  CHECK(etcdctl.Ok({"get", "ls/", "--prefix"}) == "");

  CHECK(etcdctl.Ok({"lease", "revoke", second_id}) == "lease " + std::string(second_id) + " revoked\n");
  CHECK(etcdctl.Ok({"lease", "list"}) == "found 0 leases\n");
}

// A live watch on a prefix: it sees the prefix's changes, in order, and
// nothing else.
void LiveWatch(const Etcdctl& etcdctl) {
  auto watch = etcdctl.Start({"watch", "lw/", "--prefix"});
  // etcdctl prints nothing when its watch is created: until it has printed
  // a change, one more is made, so that the changes below all come after it.
  bool ready = false;
  for (int i = 0; i < 40 && !ready; ++i) {
    etcdctl.Ok({"put", "lw/ready", std::to_string(i)});
    ready = watch->WaitForStdout([](const std::string& out) { return out.find("lw/ready\n") != std::string::npos; },
                                 milliseconds(250));
  }
  REQUIRE_MESSAGE(ready, "the watch printed no change to lw/ready in 10 s: " << watch->Shown());
  etcdctl.Ok({"put", "lw/a", "1"});
  etcdctl.Ok({"put", "lx", "outside"});  // not under the prefix
  etcdctl.Ok({"put", "lw/b", "2"});
  etcdctl.Ok({"del", "lw/a"});
  etcdctl.Ok({"put", "lw/end", "."});
  const bool ended = watch->WaitForStdout(
      [](const std::string& out) { return !ParseEvents(out).empty() && ParseEvents(out).back().key == "lw/end"; });
  CHECK_MESSAGE(ended, watch->Shown());
  CHECK_MESSAGE(watch->Stop() == kWatchStopped, watch->Shown());
  std::vector<Event> events;
  for (const Event& e : ParseEvents(watch->Stdout())) {
    if (e.key != "lw/ready") events.push_back(e);
  }
  const std::vector<Event> expected{{"PUT", "lw/a", "1"}, {"PUT", "lw/b", "2"}, {"DELETE", "lw/a", ""},
                                    {"PUT", "lw/end", "."}};
  INFO(watch->Shown());
  CHECK_MESSAGE(events == expected, "events: " << Describe(events));
}

// A watch from a past revision replays the changes since, then goes on.
void PastWatch(const Etcdctl& etcdctl) {
  etcdctl.Ok({"put", "pw/k", "a"});
  const int64_t first = etcdctl.Json({"get", "pw/k"})["kvs"][0]["mod_revision"].get<int64_t>();
  etcdctl.Ok({"put", "pw/k", "b"});
  etcdctl.Ok({"put", "pw/other", "c"});
  etcdctl.Ok({"del", "pw/k"});

  auto replay = etcdctl.Start({"watch", "pw/", "--prefix", "--rev", std::to_string(first)});
  CHECK_MESSAGE(replay->WaitForStdout([](const std::string& out) { return ParseEvents(out).size() >= 4; }),
                replay->Shown());
  etcdctl.Ok({"put", "pw/k", "d"});  // after the replay: seen live on the same watch
  CHECK_MESSAGE(replay->WaitForStdout([](const std::string& out) { return ParseEvents(out).size() >= 5; }),
                replay->Shown());
  CHECK_MESSAGE(replay->Stop() == kWatchStopped, replay->Shown());
  const std::vector<Event> expected{{"PUT", "pw/k", "a"}, {"PUT", "pw/k", "b"}, {"PUT", "pw/other", "c"},
                                    {"DELETE", "pw/k", ""}, {"PUT", "pw/k", "d"}};
  const auto events = ParseEvents(replay->Stdout());
  INFO(replay->Shown());
  CHECK_MESSAGE(events == expected, "events: " << Describe(events));

  // The JSON form of a replay from the second change of one key: its
  // revisions, and the delete's type.
  auto json_watch = etcdctl.Start({"watch", "pw/k", "--rev", std::to_string(first + 1), "-w", "json"});
  std::vector<json> seen;
  const auto parse = [&seen](const std::string& out) {
    seen.clear();
    for (const auto& line : Lines(out)) {
      json message = json::parse(line, nullptr, false);
      if (message.is_discarded()) continue;
      for (const auto& event : message.value("Events", json::array())) seen.push_back(event);
    }
    return seen.size() >= 3;
  };
  CHECK_MESSAGE(json_watch->WaitForStdout(parse), json_watch->Shown());
  CHECK_MESSAGE(json_watch->Stop() == kWatchStopped, json_watch->Shown());
  INFO(json_watch->Shown());
  REQUIRE(seen.size() == 3);
  CHECK(!seen[0].contains("type"));  // PUT is type 0, left out
  CHECK(seen[0]["kv"]["mod_revision"].get<int64_t>() == first + 1);
  CHECK(seen[0]["kv"]["create_revision"].get<int64_t>() == first);
  CHECK(seen[0]["kv"]["version"] == 2);
  CHECK(seen[1]["type"] == 1);  // DELETE
  CHECK(seen[1]["kv"]["mod_revision"].get<int64_t>() == first + 3);
  CHECK(seen[2]["kv"]["create_revision"] == seen[2]["kv"]["mod_revision"]);  // created anew
  CHECK(seen[2]["kv"]["mod_revision"].get<int64_t>() > first + 3);
  CHECK(Base64Decode(seen[2]["kv"]["value"].get<std::string>()) == "d");
}

// lock NAME: held until etcdctl is stopped; lock NAME CMD: CMD runs while
// it is held, a second locker's CMD only after the first ended.
void Locks(const Etcdctl& etcdctl) {
  {
    auto holder = etcdctl.Start({"lock", "lk/one"});
    // It prints the key that holds the lock (NAME/<lease>) with an empty value.
    const bool held = holder->WaitForStdout([](const std::string& out) {
      return std::regex_match(out, std::regex("lk/one/[0-9a-f]+\n\n"));
    });
    REQUIRE_MESSAGE(held, holder->Shown());
    const std::string key = Lines(holder->Stdout())[0];
    CHECK(etcdctl.KeysUnder("lk/one") == std::vector<std::string>{key});
    CHECK_MESSAGE(holder->Stop() == 0, holder->Shown());
    CHECK(etcdctl.KeysUnder("lk/one").empty());  // released on its way out
  }

  {
    // etcdctl passes the lock's key and revision to CMD as ETCD_LOCK_KEY and
    // ETCD_LOCK_REV. The first CMD holds the lock until the test creates
    // `release` (at most 20 s); the second only logs.
    const std::filesystem::path log = etcdctl.scratch() / "lock.log";
    const std::filesystem::path release = etcdctl.scratch() / "release";
    const std::string first_cmd = "echo \"first $ETCD_LOCK_KEY $ETCD_LOCK_REV\" >> '" + log.string() +
                                  "'; i=0; while [ ! -e '" + release.string() +
                                  "' ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; echo first-end >> '" +
                                  log.string() + "'";
    const std::string second_cmd = "echo \"second $ETCD_LOCK_KEY $ETCD_LOCK_REV\" >> '" + log.string() + "'";
    auto first = etcdctl.Start({"lock", "lk/two", "--", "/bin/sh", "-c", first_cmd});
    const bool first_holds = Eventually([&] { return ReadFile(log).starts_with("first "); });
    REQUIRE_MESSAGE(first_holds, first->Shown());
    auto second = etcdctl.Start({"lock", "lk/two", "--", "/bin/sh", "-c", second_cmd});
    // The second locker waits in line: its own key beside the first's.
    const bool queued = Eventually([&] { return etcdctl.KeysUnder("lk/two").size() == 2; });
    CHECK_MESSAGE(queued, second->Shown());
    std::this_thread::sleep_for(milliseconds(300));
    CHECK_MESSAGE(CountLines(ReadFile(log), "first-end") == 0, ReadFile(log));
    CHECK_MESSAGE(ReadFile(log).find("second") == std::string::npos,
                  "the second locker ran while the first held the lock:\n" << ReadFile(log));
    WriteFile(release, "");
    CHECK_MESSAGE(first->WaitExit(seconds(10)) == 0, first->Shown());
    CHECK_MESSAGE(second->WaitExit(seconds(10)) == 0, second->Shown());
    const auto lines = Lines(ReadFile(log));
    INFO("lock.log:\n" << ReadFile(log));
    REQUIRE(lines.size() == 3);
    std::smatch first_m, second_m;
    const std::regex entry("(first|second) (lk/two/[0-9a-f]+) ([0-9]+)");
    REQUIRE(std::regex_match(lines[0], first_m, entry));
    CHECK(first_m[1] == "first");
    CHECK(lines[1] == "first-end");
    REQUIRE(std::regex_match(lines[2], second_m, entry));
    CHECK(second_m[1] == "second");
    CHECK(first_m[2] != second_m[2]);
    CHECK(std::stoll(second_m[3].str()) > std::stoll(first_m[3].str()));
    CHECK(etcdctl.KeysUnder("lk/two").empty());
  }

  // CMD's failure is etcdctl's, and the lock is released all the same.
  const EtcdctlRun failing = etcdctl.Exec({"lock", "lk/three", "--", "/bin/sh", "-c", "exit 3"});
  INFO(failing.Shown());
  CHECK(failing.exit_code() == 1);
  CHECK(CountLines(failing.err(), "Error: exit status 3") == 1);
  CHECK(etcdctl.KeysUnder("lk/three").empty());
}

// elect NAME PROPOSAL campaigns and, once leader, prints its key and
// proposal; elect -l NAME prints each leader as it comes.
void Elections(const Etcdctl& etcdctl) {
  const std::regex leader_line("el/x/[0-9a-f]+");
  auto alpha = etcdctl.Start({"elect", "el/x", "alpha"});
  const bool alpha_leads = alpha->WaitForStdout([](const std::string& out) { return Lines(out).size() >= 2; });
  REQUIRE_MESSAGE(alpha_leads, alpha->Shown());
  const auto alpha_lines = Lines(alpha->Stdout());
  INFO(alpha->Shown());
  REQUIRE(alpha_lines.size() == 2);
  CHECK(std::regex_match(alpha_lines[0], leader_line));
  CHECK(alpha_lines[1] == "alpha");

  auto observer = etcdctl.Start({"elect", "-l", "el/x"});
  CHECK_MESSAGE(observer->WaitForStdout([&](const std::string& out) { return Lines(out) == alpha_lines; }),
                observer->Shown());

  auto beta = etcdctl.Start({"elect", "el/x", "beta"});
  const bool queued = Eventually([&] { return etcdctl.KeysUnder("el/x").size() == 2; });
  CHECK_MESSAGE(queued, beta->Shown());
  std::this_thread::sleep_for(milliseconds(300));
  CHECK_MESSAGE(beta->Stdout().empty(), "beta was elected while alpha led: " << beta->Shown());

  // Stopped, alpha resigns: beta leads, and the observer sees it.
  CHECK_MESSAGE(alpha->Stop() == 0, alpha->Shown());
  const bool beta_leads = beta->WaitForStdout([](const std::string& out) { return Lines(out).size() >= 2; });
  REQUIRE_MESSAGE(beta_leads, beta->Shown());
  const auto beta_lines = Lines(beta->Stdout());
  INFO(beta->Shown());
  REQUIRE(beta_lines.size() == 2);
  CHECK(std::regex_match(beta_lines[0], leader_line));
  CHECK(beta_lines[0] != alpha_lines[0]);
  CHECK(beta_lines[1] == "beta");
  std::vector<std::string> both = alpha_lines;
  both.insert(both.end(), beta_lines.begin(), beta_lines.end());
  CHECK_MESSAGE(observer->WaitForStdout([&](const std::string& out) { return Lines(out) == both; }),
                observer->Shown());

  CHECK_MESSAGE(beta->Stop() == 0, beta->Shown());
  CHECK_MESSAGE(observer->Stop() == 0, observer->Shown());
  CHECK(etcdctl.KeysUnder("el/x").empty());
}

// endpoint status and member list: one member, the leader, the same ids
// as every answer's header.
void Cluster(const Etcdctl& etcdctl, const Identity& id) {
  const int64_t revision = etcdctl.Revision();
  json status = etcdctl.Json({"endpoint", "status"});
  INFO("endpoint status -w json: " << status.dump());
  REQUIRE(status.is_array());
  REQUIRE(status.size() == 1);
  CHECK(status[0]["Endpoint"] == etcdctl.endpoint());
  json& s = status[0]["Status"];
  CheckHeader(s["header"], id);
  CHECK(s["header"]["revision"].get<int64_t>() == revision);
  CHECK(s["leader"].get<uint64_t>() == id.member_id);
  CHECK(s["version"].get<std::string>().starts_with("3.4."));
  CHECK(s["dbSize"].get<int64_t>() > 0);
  CHECK(s["raftTerm"].get<uint64_t>() >= 1);
  CHECK(s["raftAppliedIndex"].get<uint64_t>() >= 1);
  CHECK(s["raftAppliedIndex"].get<uint64_t>() <= s["raftIndex"].get<uint64_t>());

  // endpoint, member id (hex), version, db size, is leader, is learner,
  // raft term, raft index, raft applied index, errors.
  const std::string line = etcdctl.Ok({"endpoint", "status"});
  const std::regex simple("([^,]+), ([0-9a-f]+), ([^,]+), [^,]+, (true|false), (true|false), [0-9]+, [0-9]+, [0-9]+, \n");
  std::smatch m;
  REQUIRE_MESSAGE(std::regex_match(line, m, simple), "endpoint status printed: " << line);
  CHECK(m[1] == etcdctl.endpoint());
  CHECK(m[2] == Hex(id.member_id));
  CHECK(m[3] == s["version"].get<std::string>());
  CHECK(m[4] == "true");
  CHECK(m[5] == "false");

  json members = etcdctl.Json({"member", "list"});
  INFO("member list -w json: " << members.dump());
  CHECK(members["header"]["cluster_id"].get<uint64_t>() == id.cluster_id);
  CHECK(members["header"]["member_id"].get<uint64_t>() == id.member_id);
  REQUIRE(members["members"].size() == 1);
  json& member = members["members"][0];
  CHECK(member["ID"].get<uint64_t>() == id.member_id);
  const std::string client_url = etcdctl.scheme() + "://" + etcdctl.endpoint();
  const auto& urls = member["clientURLs"];
  CHECK(std::find(urls.begin(), urls.end(), client_url) != urls.end());

  // member id (hex), status, name, peer URLs, client URLs, is learner.
  const std::string listed = etcdctl.Ok({"member", "list"});
  const std::regex row("([0-9a-f]+), started, ([^,]*), ([^,]+), ([^,]+), (true|false)\n");
  REQUIRE_MESSAGE(std::regex_match(listed, m, row), "member list printed: " << listed);
  CHECK(m[1] == Hex(id.member_id));
  CHECK(m[2] == member["name"].get<std::string>());
  CHECK(m[4].str().find(client_url) != std::string::npos);
  CHECK(m[5] == "false");
}

// compaction REV: reads and watches below REV refused as compacted, at REV
// still answered.
void Compaction(const Etcdctl& etcdctl, bool etcd_floor) {
  std::vector<int64_t> revisions;
  for (const std::string value : {"v1", "v2", "v3"}) {
    etcdctl.Ok({"put", "cp/k", value});
    revisions.push_back(etcdctl.Json({"get", "cp/k"})["kvs"][0]["mod_revision"].get<int64_t>());
  }
  const std::string r1 = std::to_string(revisions[0]), r2 = std::to_string(revisions[1]),
                    r3 = std::to_string(revisions[2]);
  const std::string compacted = "etcdserver: mvcc: required revision has been compacted";
  const std::string future = "etcdserver: mvcc: required revision is a future revision";

  CHECK(etcdctl.Ok({"get", "cp/k", "--rev", r1}) == "cp/k\nv1\n");
  CHECK(etcdctl.Ok({"compaction", r2}) == "compacted revision " + r2 + "\n");
  if (etcd_floor) {
    etcdctl.Refused({"get", "cp/k", "--rev", r1}, 1, compacted);
    CHECK(etcdctl.Ok({"get", "cp/k", "--rev", r2}) == "cp/k\nv2\n");
  }
  CHECK(etcdctl.Ok({"get", "cp/k"}) == "cp/k\nv3\n");
  if (etcd_floor) etcdctl.Refused({"compaction", r1}, 1, compacted);
  etcdctl.Refused({"get", "cp/k", "--rev", std::to_string(revisions[2] + 1000)}, 1, future);
  etcdctl.Refused({"compaction", std::to_string(revisions[2] + 1000)}, 1, future);

  if (etcd_floor) {
    // A watch from below the compaction is canceled by the server; etcdctl
    // says why and exits 5.
    const EtcdctlRun canceled = etcdctl.Exec({"watch", "cp/k", "--rev", r1});
    INFO(canceled.Shown());
    CHECK(canceled.exit_code() == 5);
    CHECK(canceled.out() == "");  // both lines go to stderr
    CHECK(CountLines(canceled.err(), "watch was canceled (" + compacted + ")") == 1);
    CHECK(CountLines(canceled.err(), "Error: watch is canceled by the server") == 1);
  }

  CHECK(etcdctl.Ok({"compaction", "--physical", r3}) == "compacted revision " + r3 + "\n");
  if (etcd_floor) etcdctl.Refused({"get", "cp/k", "--rev", r2}, 1, compacted);
  CHECK(etcdctl.Ok({"get", "cp/k", "--rev", r3}) == "cp/k\nv3\n");
}

}  // namespace

void CheckEtcdctlScript(int port, EtcdctlSteps steps, const EtcdctlAccess& access) {
  const bool etcd = steps == EtcdctlSteps::kAll;
  const Etcdctl etcdctl(port, access);
  Identity id;
  {
    INFO("step: put, get, del");
    id = KeyValue(etcdctl);
  }
  {
    INFO("step: txn -i");
    Txn(etcdctl);
  }
  {
    INFO("step: leases");
    Leases(etcdctl);
  }
  {
    INFO("step: watch --prefix, live");
    LiveWatch(etcdctl);
  }
  {
    INFO("step: watch --rev, from the past");
    PastWatch(etcdctl);
  }
  {
    INFO("step: lock");
    Locks(etcdctl);
  }
  {
    INFO("step: elect");
    Elections(etcdctl);
  }
  {
    INFO("step: endpoint status, member list");
    Cluster(etcdctl, id);
  }
  {
    INFO("step: compaction");
    Compaction(etcdctl, etcd);
  }
}

}  // namespace kvctl::e2e
