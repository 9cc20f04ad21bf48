// etcd's Watch over gRPC (server.etcd_grpc_listen): one stream's creates,
// refusals, cancels, progress request, events and replay from the past
// answered as Debian's etcd 3.4 answers them, on both backends (the same
// session, tests/e2e/python_clients/watch_exchange.py, against each); many
// streams held without a thread each, all ended at once by a stop
// (watch_many.py). etcdctl's own watch, lock and elect are in
// e2e_etcdctl_test.cpp.
#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"

using namespace kvctl::e2e;

namespace {

// What watch_exchange.py saw of the server at `port`.
std::string Exchange(int port) { return RunPythonClient("watch_exchange.py", {Addr(port)}); }

size_t CountLinesWith(const std::string& text, const std::string& part) {
  size_t n = 0;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(part) != std::string::npos) ++n;
  }
  return n;
}

// etcd's session, checked on its own first, so that a script that saw
// nothing cannot pass by agreeing with another that saw nothing.
std::string EtcdExchange() {
  EtcdProcess etcd;
  const std::string seen = Exchange(etcd.port());
  INFO(seen);
  CHECK(CountLinesWith(seen, "\"created\": true") == 7);  // 4 watches, 2 refusals, 1 from the past
  CHECK(CountLinesWith(seen, "\"cancel_reason\"") == 2);
  CHECK(CountLinesWith(seen, "\"step\": \"progress\"") == 1);
  CHECK(CountLinesWith(seen, "\"type\": \"DELETE\"") == 7);
  CHECK(CountLinesWith(seen, "\"prev\"") == 8);
  CHECK(CountLinesWith(seen, "\"watch_id\": 20") == 9);  // the replay: 8 changes and the created
  return seen;
}

}  // namespace

TEST_CASE("etcd gRPC: one watch stream answers as Debian's etcd 3.4 answers, on the file backend") {
  const std::string etcd = EtcdExchange();
  const int grpc_port = FreePort();
  KvServer server({"--etcd-grpc-listen", Addr(grpc_port)});
  CHECK(Exchange(grpc_port) == etcd);
}

TEST_CASE("etcd gRPC: one watch stream answers as Debian's etcd 3.4 answers, on PostgreSQL") {
  const std::string etcd = EtcdExchange();
  MigratedDb db;
  const int grpc_port = FreePort();
  PgServer server(db.dsn, {"--etcd-grpc-listen", Addr(grpc_port)});
  CHECK(Exchange(grpc_port) == etcd);
}

TEST_CASE("etcd gRPC: 200 watch streams hold no thread each and a stop ends every one at once") {
  const int grpc_port = FreePort();
  KvServer server({"--etcd-grpc-listen", Addr(grpc_port)});
  const pid_t pid = server.process().pid();
  TempDir scratch;
  BackgroundProgram many(scratch.path(), PythonClient("watch_many.py", {Addr(grpc_port), "200", std::to_string(pid)}));
  const auto line = [&](size_t n) {
    return many.WaitForStdout(
        [n](const std::string& out) { return static_cast<size_t>(std::count(out.begin(), out.end(), '\n')) >= n; },
                              std::chrono::seconds(40));
  };
  REQUIRE_MESSAGE(line(2), many.Shown());
  std::istringstream out(many.Stdout());
  std::string first, second;
  std::getline(out, first);
  std::getline(out, second);
  const auto open = nlohmann::json::parse(first), events = nlohmann::json::parse(second);
  CHECK(open["open"] == 200);
  CHECK(events["events"] == 200);
  // kvctl's threads: its own and gRPC's pools, not one per stream.
  const int threads = open["threads"].get<int>();
  INFO("threads with 200 streams open: " << threads);
  CHECK(threads > 0);
  CHECK(threads < 100);

  // A stop ends the streams itself (etcd's "server stopped"), rather than
  // waiting out the shutdown's grace (10 s) for calls that never end and
  // then cancelling them.
  CHECK(server.Stop() == 0);
  REQUIRE_MESSAGE(line(3), many.Shown());
  std::istringstream all(many.Stdout());
  std::string l;
  for (int i = 0; i < 3; ++i) std::getline(all, l);
  const auto ended = nlohmann::json::parse(l)["ended"];
  INFO(ended.dump());
  CHECK(ended.size() == 1);
  CHECK(ended.value("UNAVAILABLE etcdserver: server stopped", 0) == 200);
  CHECK(many.WaitExit(std::chrono::seconds(10)) == 0);
}

TEST_CASE("etcd gRPC: a watch whose client stops reading is cut off past server.watch_max_lag, with what it missed") {
  const int grpc_port = FreePort();
  KvServer server({"--etcd-grpc-listen", Addr(grpc_port)}, {{"KVCTL_SERVER_WATCH_MAX_LAG", "100"}});
  // 600 puts of 16 KiB: about 10 MB, more than gRPC's windows and the
  // sockets hold for a client that reads nothing.
  const auto seen =
      nlohmann::json::parse(RunPythonClient("watch_slow.py", {Addr(grpc_port), "600", "16384"}, std::chrono::seconds(90)));
  // What it got is every change from the first on, with none missing,
  // then the end, which says where to start again.
  CHECK(seen["first"] == 0);
  CHECK(seen["contiguous"] == true);
  CHECK(seen["events"].get<int>() < 600);
  CHECK(seen["canceled"] == true);
  const std::string reason = seen["cancel_reason"];
  CHECK(reason.find("server.watch_max_lag = 100") != std::string::npos);
  // A fresh store: the first put is revision 1.
  CHECK(reason.find("start again with from = " + std::to_string(seen["events"].get<int>() + 1)) != std::string::npos);
  CHECK(server.Stop() == 0);
}
