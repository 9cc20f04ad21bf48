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
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "lib/core/base64.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

namespace kvctl::e2e {
namespace {

using nlohmann::json;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kEtcd = "/usr/bin/etcd";

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

// Debian's etcd 3.4 on loopback, in a temp dir; killed by PID and reaped
// on scope exit.
class EtcdProcess {
 public:
  EtcdProcess() : client_port_(FreePort()), peer_port_(FreePort()) {
    REQUIRE_MESSAGE(std::filesystem::exists(kEtcd), "etcd is missing: scripts/deps.sh test installs etcd-server");
    const std::string client = "http://" + Addr(client_port_);
    const std::string peer = "http://" + Addr(peer_port_);
    const std::vector<std::string> args = {kEtcd,
                                           "--data-dir", (dir_ / "data").string(),
                                           "--name", "default",
                                           "--listen-client-urls", client,
                                           "--advertise-client-urls", client,
                                           "--listen-peer-urls", peer,
                                           "--initial-advertise-peer-urls", peer,
                                           "--initial-cluster", "default=" + peer};
    const std::string log = (dir_ / "etcd.log").string();
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      FILE* out = freopen(log.c_str(), "w", stdout);
      (void)out;
      dup2(fileno(stdout), fileno(stderr));
      std::vector<char*> argv;
      for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      char* envp[] = {const_cast<char*>("PATH=/usr/bin:/bin"), nullptr};
      execve(kEtcd, argv.data(), envp);
      _exit(127);
    }
    HttpClient http(client_port_);
    for (int i = 0; i < 150; ++i) {
      if (auto r = http.TryRequest("GET", "/version"); r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    FAIL("etcd did not start: " << text);
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  int port() const { return client_port_; }

 private:
  TempDir dir_;
  int client_port_, peer_port_;
  pid_t pid_ = -1;
};

// One request over its own connection, read to the close. etcd answers
// errors chunked with HTTP trailers (grpc-gateway's), which the harness's
// client does not read; this reads both servers the same way.
struct RawAnswer {
  int status = 0;
  std::string body;
};
RawAnswer RawRequest(int port, const std::string& method, const std::string& path, const std::string& body) {
  RawSocket socket(port);
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (method == "POST") request += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  REQUIRE(socket.Send(request));
  const std::string in = socket.ReadUntil(std::chrono::seconds(10));  // Connection: close: to the end
  const size_t head_end = in.find("\r\n\r\n");
  REQUIRE_MESSAGE(head_end != std::string::npos, "no HTTP answer to " << method << " " << path << ": " << in);
  RawAnswer answer;
  answer.status = std::stoi(in.substr(9, 3));
  std::string head = in.substr(0, head_end);
  for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string rest = in.substr(head_end + 4);
  if (head.find("transfer-encoding: chunked") == std::string::npos) {
    answer.body = rest;
    return answer;
  }
  size_t at = 0;
  for (;;) {  // chunks, then trailers (ignored)
    const size_t line_end = rest.find("\r\n", at);
    REQUIRE(line_end != std::string::npos);
    const size_t size = std::stoul(rest.substr(at, line_end - at), nullptr, 16);
    if (size == 0) break;
    answer.body += rest.substr(line_end + 2, size);
    at = line_end + 2 + size + 2;
  }
  return answer;
}

std::string B64(std::string_view bytes) { return core::Base64Encode(bytes); }

// One server's side of the comparison: its revisions are counted from its
// own start (etcd's empty store is at revision 1, kvctl's at 0), and its
// lease ids are named L1, L2, ... in the order they were granted.
struct Side {
  int port = 0;
  int64_t revision_offset = 0;
  // Revisions this side took where the other did not (kvctl's lease grants
  // and key-less revokes): left out of the count.
  std::vector<int64_t> own_revisions;
  std::vector<std::string> lease_ids;

  int64_t Normalized(int64_t raw) const {
    int64_t own = 0;
    for (int64_t r : own_revisions) own += r <= raw ? 1 : 0;
    return raw - revision_offset - own;
  }
  int64_t Raw(int64_t normalized) const {
    int64_t raw = normalized + revision_offset;
    while (Normalized(raw) < normalized) ++raw;
    return raw;
  }
};

constexpr const char* kRevisionFields[] = {"revision", "create_revision", "mod_revision", "compact_revision"};

void Normalize(json& j, Side& side, bool in_status) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) {
      if (k == "cluster_id" || k == "member_id" || k == "raft_term" || k == "leader") {
        v = "<id>";
      } else if (std::find(std::begin(kRevisionFields), std::end(kRevisionFields), k) != std::end(kRevisionFields) &&
                 v.is_string()) {
        v = std::to_string(side.Normalized(std::stoll(v.get<std::string>())));
      } else if ((k == "ID" || k == "lease") && v.is_string()) {
        const std::string id = v.get<std::string>();
        auto it = std::find(side.lease_ids.begin(), side.lease_ids.end(), id);
        if (it == side.lease_ids.end()) {
          side.lease_ids.push_back(id);
          it = side.lease_ids.end() - 1;
        }
        v = "L" + std::to_string(it - side.lease_ids.begin() + 1);
      } else if (k == "TTL" && v.is_string() && v != "-1") {
        // Seconds left: the two servers' clocks are a moment apart.
        v = std::stoll(v.get<std::string>()) > 0 ? "<ttl>" : v;
      } else if (in_status && (k == "version" || k == "dbSize" || k == "dbSizeInUse" || k == "raftIndex" ||
                               k == "raftTerm" || k == "raftAppliedIndex" || k == "etcdserver" ||
                               k == "etcdcluster")) {
        v = "<status>";
      } else if (k == "peerURLs" || k == "clientURLs" || k == "name") {
        v = "<urls>";
      } else {
        Normalize(v, side, in_status);
      }
    }
  } else if (j.is_array()) {
    for (auto& v : j) Normalize(v, side, in_status);
  }
}

// What is compared of an error: its status, its gRPC code, and its message
// when etcd's is one of etcd's own ("etcdserver: ...": kvctl says the same);
// Go's JSON and base64 messages are not matched (docs/etcd.md).
void NormalizeError(json& j) {
  if (!j.is_object() || !j.contains("code") || !j.contains("error")) return;
  const std::string message = j["error"].get<std::string>();
  if (!message.starts_with("etcdserver:")) {
    j["error"] = "<message>";
    j["message"] = "<message>";
  }
}

struct Step {
  std::string path;
  // "$L1" is replaced by the side's first lease id, and so on; "@N" by
  // revision N as counted from the side's start.
  std::string body;
  int64_t kvctl_extra_revisions = 0;  // 1: kvctl takes a revision here and etcd does not (docs/etcd.md)
  bool status = false;                 // a status answer: values are the server's own
  std::string method = "POST";
};

json Send(Side& side, const Step& step, int* http_status) {
  std::string body = step.body;
  for (size_t i = 0; i < side.lease_ids.size(); ++i) {
    const std::string name = "$L" + std::to_string(i + 1);
    for (size_t at; (at = body.find(name)) != std::string::npos;) body.replace(at, name.size(), side.lease_ids[i]);
  }
  static const std::regex kRevision(R"(@(\d+))");
  std::string with_revisions;
  auto last = body.cbegin();
  for (std::sregex_iterator it(body.begin(), body.end(), kRevision), end; it != end; ++it) {
    with_revisions.append(last, (*it)[0].first);
    with_revisions += std::to_string(side.Raw(std::stoll((*it)[1].str())));
    last = (*it)[0].second;
  }
  with_revisions.append(last, body.cend());
  body = with_revisions;
  const std::string method = step.path == "/version" ? "GET" : step.method;
  RawAnswer r = RawRequest(side.port, method, step.path, method == "POST" ? body : "");
  *http_status = r.status;
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) j = r.body;
  if (step.kvctl_extra_revisions > 0 && side.revision_offset == 0) {
    // kvctl's answer says the revision it took.
    REQUIRE(j.contains("header"));
    side.own_revisions.push_back(std::stoll(j["header"]["revision"].get<std::string>()));
  }
  Normalize(j, side, step.status);
  NormalizeError(j);
  return j;
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
      {"/v3/maintenance/status", "{}", 0, true},
      {"/v3/cluster/member/list", "{}", 0, true},
      {"/version", "", 0, true},
      {"/v3/kv/nope", "{}"},
      {"/v3/kv/range", "", 0, false, "GET"},
      {"/v3/kv/range", R"({"key":")" + foo + R"(","limit":1e30})"},
  };
  for (const Step& step : steps) {
    int etcd_status = 0, kvctl_status = 0;
    const json want = Send(reference, step, &etcd_status);
    const json got = Send(kvctl, step, &kvctl_status);
    INFO(step.method << " " << step.path << " " << step.body << "\n etcd:  " << etcd_status << " " << want.dump()
                 << "\n kvctl: " << kvctl_status << " " << got.dump());
    CHECK(kvctl_status == etcd_status);
    CHECK(got == want);
  }
}

TEST_CASE("etcd face: a range at a past revision is answered from retained history, or refused, never with current data") {
  const int etcd_port = FreePort();
  KvServer server({"--etcd-listen", Addr(etcd_port)});
  auto post = [&](const std::string& path, const std::string& body) {
    RawAnswer r = RawRequest(etcd_port, "POST", path, body);
    return std::make_pair(r.status, json::parse(r.body));
  };
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
    auto [changed_status, changed] = post("/v3/kv/range", R"({"key":")" + b + R"(","revision":2})");
    CHECK(changed_status == 501);
    CHECK(changed["code"] == 12);
    CHECK(!changed.contains("kvs"));
    auto [future_status, future] = post("/v3/kv/range", R"({"key":")" + a + R"(","revision":4})");
    CHECK(future_status == 400);
    CHECK(future["code"] == 11);
    if (!restarted) {
      server.Stop();
      server.Start();
    }
  }
}

// The first `count` messages of a watch stream (one JSON object per
// chunk); `after_created` runs once the first has come.
std::vector<json> WatchMessages(int port, const std::string& body, size_t count,
                                const std::function<void()>& after_created) {
  RawSocket socket(port);
  REQUIRE(socket.Send("POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body));
  std::vector<json> messages;
  bool created = false;
  socket.ReadUntil(std::chrono::seconds(10), [&](const std::string& in) {
    // Every complete line of what came that parses as a JSON object is a
    // message (chunk sizes and the head are not JSON objects).
    messages.clear();
    size_t from = 0;
    for (size_t nl; (nl = in.find('\n', from)) != std::string::npos; from = nl + 1) {
      std::string line = in.substr(from, nl - from);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line.front() != '{') continue;
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) messages.push_back(std::move(j));
    }
    if (!created && !messages.empty()) {
      created = true;
      after_created();
    }
    return messages.size() >= count;
  });
  return messages;
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
