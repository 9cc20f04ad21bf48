// `kvctl watch` (SPEC §6, the command line), run as a user would: the real
// binary in the background against a real server that is stopped, killed
// and started again on the same port; and the metadata the other client
// commands now print.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

extern char** environ;

namespace kvctl::e2e {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// `kvctl watch ARGS...` in the background, its stdout and stderr in files,
// pointed at 127.0.0.1:port. Stopped with SIGINT (Ctrl-C) by Interrupt(),
// or SIGKILL when the test ends first.
class BackgroundWatch {
 public:
  BackgroundWatch(const TempDir& dir, int port, std::vector<std::string> args)
      : out_(dir / "watch.out"), err_(dir / "watch.err") {
    std::vector<std::string> argv{KvctlBinary(), "watch"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env{"KVCTL_CLIENT_ADDR=" + Addr(port), "PATH=/usr/bin:/bin", "HOME=" + dir.path().string()};
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argp, envp;
    for (auto& a : argv) argp.push_back(a.data());
    argp.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    REQUIRE(posix_spawn(&pid_, argp[0], &actions, nullptr, argp.data(), envp.data()) == 0);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~BackgroundWatch() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // SIGINT, then its exit code (-1 if it did not end within 10 s).
  int Interrupt() {
    ::kill(pid_, SIGINT);
    return Wait(seconds(10));
  }
  // Its exit code once it ends by itself (-1 if not within `limit`).
  int Wait(milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return -1;
  }
  std::string Out() const { return ReadFile(out_); }
  std::string Err() const { return ReadFile(err_); }
  std::vector<json> JsonLines() const {
    std::vector<json> lines;
    for (const std::string& line : Lines(Out())) lines.push_back(json::parse(line));
    return lines;
  }

 private:
  std::filesystem::path out_, err_;
  pid_t pid_ = -1;
};

size_t Count(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST_CASE("kvctl watch follows a server through a restart and a kill -9 with no event lost or printed twice") {
  TempDir dir;
  const std::string data = (dir / "data").string();
  const int port = FreePort();
  auto server = std::make_unique<ServerProcess>(dir.path(), ServerOptions{data, port});
  server->WaitReady();
  auto put = [&](int i) {
    HttpClient http(port);
    REQUIRE(http.Put("p/" + std::to_string(i % 4), "v" + std::to_string(i)).status / 100 == 2);
  };
  for (int i = 1; i <= 5; ++i) put(i);
  {
    HttpClient http(port);
    REQUIRE(http.Put("other", "x").status == 201);  // revision 6, not under p/
  }

  BackgroundWatch watch(dir, port, {"p/", "--prefix", "--from", "2", "-o", "json"});
  for (int i = 7; i <= 10; ++i) put(i);
  REQUIRE(Eventually([&] { return Lines(watch.Out()).size() == 8; }));

  // A clean stop (SIGTERM ends the stream), writes while it is down are
  // impossible, so write right after it is back.
  REQUIRE(server->Terminate() == 0);
  server = std::make_unique<ServerProcess>(dir.path(), ServerOptions{data, port});
  server->WaitReady();
  for (int i = 11; i <= 13; ++i) put(i);
  REQUIRE(Eventually([&] { return Lines(watch.Out()).size() == 11; }));

  // A crash: the connection just drops.
  server->Kill9();
  server = std::make_unique<ServerProcess>(dir.path(), ServerOptions{data, port});
  server->WaitReady();
  for (int i = 14; i <= 16; ++i) put(i);
  REQUIRE(Eventually([&] { return Lines(watch.Out()).size() == 14; }));
  std::this_thread::sleep_for(milliseconds(300));  // a repeat would come now

  CHECK(watch.Interrupt() == 0);
  const std::vector<json> events = watch.JsonLines();
  REQUIRE(events.size() == 14);
  uint64_t expect = 2;
  for (const json& e : events) {
    if (expect == 6) ++expect;  // "other"
    CHECK(e["revision"].get<uint64_t>() == expect);
    CHECK(e["op"] == "put");
    CHECK(e["key"] == "p/" + std::to_string(expect % 4));
    CHECK(Base64Decode(e["value"].get<std::string>()) == "v" + std::to_string(expect));
    CHECK(e["version"].get<uint64_t>() >= 1);
    ++expect;
  }
  const std::string err = watch.Err();
  INFO(err);
  CHECK(Count(err, "lost the watch") == 2);  // once per outage
  CHECK(Count(err, "reconnected") == 2);
  CHECK(watch.Out().find("lost") == std::string::npos);  // stdout holds events only
}

TEST_CASE("kvctl watch prints etcdctl's text, and runs a command per event with the event in its environment") {
  KvServer server;
  REQUIRE(RunCli({"put", "a", "1", "--addr", server.addr()}).exit_code == 0);

  TempDir dir;
  {
    BackgroundWatch text(dir, server.port(), {"a", "--from", "1"});
    REQUIRE(RunCli({"del", "a", "--addr", server.addr()}).exit_code == 0);
    REQUIRE(Eventually([&] { return text.Out() == "PUT\na\n1\nDELETE\na\n\n"; }));
    CHECK(text.Interrupt() == 0);
    CHECK(text.Err().empty());
  }

  TempDir dir2;
  const std::string script =
      R"(printf '%s|%s|%s|%s|%s|' "$KVCTL_WATCH_REVISION" "$KVCTL_WATCH_OP" "$KVCTL_WATCH_KEY" )"
      R"("$KVCTL_WATCH_KEY_BASE64" "$KVCTL_WATCH_VALUE"; cat; echo; exit 3)";
  BackgroundWatch run(dir2, server.port(), {"b", "--from", "3", "--", "/bin/sh", "-c", script});
  REQUIRE(RunCli({"put", "b", "two words", "--addr", server.addr()}).exit_code == 0);
  REQUIRE(RunCli({"del", "b", "--addr", server.addr()}).exit_code == 0);
  REQUIRE(Eventually([&] { return Lines(run.Out()).size() == 2; }));
  CHECK(run.Interrupt() == 0);
  const std::vector<std::string> lines = Lines(run.Out());
  CHECK(lines[0] == "3|put|b|Yg==|two words|two words");
  CHECK(lines[1] == "4|delete|b|Yg==||");
  // A failing command is said on stderr, and the watch goes on.
  CHECK(Count(run.Err(), "exited with status 3") == 2);
}

TEST_CASE("kvctl watch from a compacted revision is exit 5 naming where the history starts") {
  KvServer server({"--storage-history-retention", "0"});
  for (int i = 0; i < 5; ++i) {
    REQUIRE(RunCli({"put", "k" + std::to_string(i), "v", "--addr", server.addr()}).exit_code == 0);
  }
  REQUIRE(RunCli({"compact", "--addr", server.addr()}).exit_code == 0);
  CliResult r = RunCli({"watch", "k0", "--from", "1", "--addr", server.addr()}, {.limit = seconds(10)});
  CHECK(r.exit_code == 5);
  CHECK(IsOneErrorLine(r.err));
  CHECK(r.err.find("--from") != std::string::npos);
  CHECK(r.out.empty());
}

TEST_CASE("without from, a watch's X-Kvctl-Revision is the revision its stream begins after, so a client resumes from there") {
  KvServer server;
  HttpClient http(server.port());
  for (int i = 0; i < 3; ++i) REQUIRE(http.Put("k", std::to_string(i)).status / 100 == 2);
  CHECK(http.Request("HEAD", "/v1/watch?prefix=").Header("X-Kvctl-Revision") == "3");
  // With from, the store's revision: how far the history goes now.
  CHECK(http.Request("HEAD", "/v1/watch?prefix=&from=2").Header("X-Kvctl-Revision") == "3");
}

TEST_CASE("kvctl watch refuses what it cannot do before it connects") {
  CliResult r = RunCli({"watch", "a", "--from", "0", "--addr", "127.0.0.1:1"});
  CHECK(r.exit_code == 2);
  CHECK(IsOneErrorLine(r.err));
  r = RunCli({"watch", "a", "-o", "json", "--addr", "127.0.0.1:1", "--", "/bin/true"});
  CHECK(r.exit_code == 2);
  CHECK(IsOneErrorLine(r.err));
  r = RunCli({"watch", "", "--addr", "127.0.0.1:1"});
  CHECK(r.exit_code == 2);
  // No server: nothing was ever watched, so there is nothing to wait for.
  r = RunCli({"watch", "a", "--addr", "127.0.0.1:1"});
  CHECK(r.exit_code == 3);
  CHECK(IsOneErrorLine(r.err));
}

TEST_CASE("get -o json, listings and replay --state carry create_revision, version and lease") {
  KvServer server;
  const std::string addr = server.addr();
  REQUIRE(RunCli({"put", "k", "1", "--addr", addr}).exit_code == 0);  // 1
  REQUIRE(RunCli({"put", "x", "1", "--addr", addr}).exit_code == 0);  // 2
  REQUIRE(RunCli({"put", "k", "2", "--addr", addr}).exit_code == 0);  // 3
  REQUIRE(RunCli({"put", "k", "3", "--addr", addr}).exit_code == 0);  // 4

  CliResult r = RunCli({"get", "k", "-o", "json", "--addr", addr});
  REQUIRE(r.exit_code == 0);
  json j = json::parse(r.out);
  CHECK(j["revision"] == 4);
  CHECK(j["create_revision"] == 1);
  CHECK(j["version"] == 3);
  CHECK(j["lease"] == 0);

  r = RunCli({"get", "--prefix", "", "-o", "json", "--addr", addr});
  REQUIRE(r.exit_code == 0);
  json list = json::parse(r.out);
  REQUIRE(list["items"].size() == 2);
  CHECK(list["items"][0]["key"] == "k");
  CHECK(list["items"][0]["version"] == 3);
  CHECK(list["items"][0]["create_revision"] == 1);
  CHECK(list["items"][1]["version"] == 1);
  CHECK(list["items"][1]["create_revision"] == 2);

  REQUIRE(server.Stop() == 0);
  r = RunCli({"replay", "--data-dir", server.data_dir().string(), "--state", "-o", "json"});
  REQUIRE(r.exit_code == 0);
  const std::vector<std::string> lines = Lines(r.out);
  REQUIRE(lines.size() == 2);
  json k = json::parse(lines[0]);
  CHECK(k["key"] == "k");
  CHECK(k["create_revision"] == 1);
  CHECK(k["version"] == 3);
  r = RunCli({"replay", "--data-dir", server.data_dir().string(), "--state"});
  REQUIRE(r.exit_code == 0);
  CHECK(Lines(r.out)[0] == R"(4 "k" "3" create_revision=1 version=3 lease=0)");
}

TEST_CASE("on PostgreSQL, a watch on server B sees every write made through A and B, in order, history first") {
  PgCluster& pg = PgCluster::Shared();
  const std::string dsn = pg.Dsn(pg.CreateDatabase());
  MigrateUp(dsn);
  PgServer a(dsn);
  for (int i = 1; i <= 10; ++i) {
    HttpClient http(a.port());
    REQUIRE(http.Put("k" + std::to_string(i % 3), "a" + std::to_string(i)).status / 100 == 2);
  }
  // B starts after those: they reach its watch from kv_log, the rest live.
  PgServer b(dsn);
  TempDir dir;
  BackgroundWatch watch(dir, b.port(), {"", "--prefix", "--from", "1", "-o", "json"});
  HttpClient ha(a.port()), hb(b.port());
  for (int i = 11; i <= 30; ++i) {
    HttpClient& http = i % 2 == 0 ? ha : hb;
    if (i % 5 == 0) {
      REQUIRE(http.Delete("k" + std::to_string(i % 3)).status == 204);
    } else {
      REQUIRE(http.Put("k" + std::to_string(i % 3), "v" + std::to_string(i)).status / 100 == 2);
    }
  }
  const HttpResponse last = ha.Get("k1");
  const uint64_t end = std::stoull(last.Header("X-Kvctl-Revision"));
  REQUIRE(Eventually([&] {
    const std::vector<std::string> lines = Lines(watch.Out());
    return !lines.empty() && json::parse(lines.back())["revision"].get<uint64_t>() == end;
  }));
  CHECK(watch.Interrupt() == 0);
  const std::vector<json> events = watch.JsonLines();
  // Every revision once, in order (a delete of a missing key takes none).
  for (size_t i = 1; i < events.size(); ++i) {
    CHECK(events[i]["revision"].get<uint64_t>() == events[i - 1]["revision"].get<uint64_t>() + 1);
  }
  CHECK(events.front()["revision"] == 1);
  CHECK(events.back()["revision"] == end);
  CHECK(Count(watch.Err(), "lost") == 0);
}

}  // namespace
}  // namespace kvctl::e2e
