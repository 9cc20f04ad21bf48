#include "tests/e2e/etcd_differential.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <thread>

#include <doctest/doctest.h>

#include "lib/core/base64.h"

namespace kvctl::e2e {

using nlohmann::json;

namespace {
constexpr const char* kEtcd = "/usr/bin/etcd";
}  // namespace

EtcdProcess::EtcdProcess() : client_port_(FreePort()), peer_port_(FreePort()) {
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
EtcdProcess::~EtcdProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
}

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

std::pair<int, json> PostJson(int port, const std::string& path, const std::string& body) {
  const RawAnswer r = RawRequest(port, "POST", path, body);
  json j = json::parse(r.body, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), "not JSON from " << path << ": " << r.body);
  return {r.status, std::move(j)};
}

int64_t Side::Normalized(int64_t raw) const {
  int64_t own = 0;
  for (int64_t r : own_revisions) own += r <= raw ? 1 : 0;
  return raw - revision_offset - own;
}

int64_t Side::Raw(int64_t normalized) const {
  int64_t raw = normalized + revision_offset;
  while (Normalized(raw) < normalized) ++raw;
  return raw;
}

namespace {
constexpr const char* kRevisionFields[] = {"revision", "create_revision", "mod_revision", "compact_revision"};

}  // namespace

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

void NormalizeError(json& j) {
  if (!j.is_object() || !j.contains("code") || !j.contains("error")) return;
  const std::string message = j["error"].get<std::string>();
  if (!message.starts_with("etcdserver:")) {
    j["error"] = "<message>";
    j["message"] = "<message>";
  }
}


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

std::vector<json> WatchMessagesUntil(int port, const std::string& body, const WatchMessagesCheck& ready,
                                     const std::function<void()>& after_ready, const WatchMessagesCheck& done) {
  RawSocket socket(port);
  REQUIRE(socket.Send("POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body));
  std::vector<json> messages;
  bool was_ready = false;
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
    if (!was_ready && ready(messages)) {
      was_ready = true;
      after_ready();
    }
    return done(messages);
  });
  return messages;
}

std::vector<json> WatchMessages(int port, const std::string& body, size_t count,
                                const std::function<void()>& after_created, size_t ready) {
  return WatchMessagesUntil(
      port, body, [ready](const std::vector<json>& m) { return m.size() >= ready; }, after_created,
      [count](const std::vector<json>& m) { return m.size() >= count; });
}

void CheckSameAnswers(Side& reference, Side& kvctl, const std::vector<Step>& steps) {
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

}  // namespace kvctl::e2e
