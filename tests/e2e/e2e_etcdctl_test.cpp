// etcd's gRPC API proven by software nobody here wrote, against Debian's
// etcd 3.4 started on loopback (etcd_differential.h): Debian's etcdctl
// driven through a user's session (etcdctl_script.h), Debian's tooz
// coordination tests over python3-etcd3 (tooz_tests.h), and a session of
// python3-etcd3's own client calls (python_clients/etcd3_session.py); and
// the same checks against kvctl's gRPC face (server.etcd_grpc_listen): the
// script and the python3-etcd3 session on both backends (watches, locks
// and elections included), and tooz's tests, which end on kvctl as they
// do on etcd.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/etcdctl_script.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pg_harness.h"
#include "tests/e2e/tooz_tests.h"

namespace kvctl::e2e {
namespace {

TEST_CASE("etcd gRPC: Debian's etcdctl script passes against Debian's etcd") {
  EtcdProcess etcd;
  CheckEtcdctlScript(etcd.port());
}

TEST_CASE("etcd gRPC: Debian's tooz coordination tests over python3-etcd3 end against Debian's etcd as recorded") {
  EtcdProcess etcd;
  CheckToozCoordinationTests(etcd.port());
}

TEST_CASE("etcd gRPC: Debian's etcdctl script passes against kvctl on the file backend") {
  const int grpc_port = FreePort();
  KvServer server({"--etcd-grpc-listen", Addr(grpc_port)});
  CheckEtcdctlScript(grpc_port, EtcdctlSteps::kKvctl);
}

TEST_CASE("etcd gRPC: Debian's etcdctl script passes against kvctl on PostgreSQL") {
  MigratedDb db;
  const int grpc_port = FreePort();
  PgServer server(db.dsn, {"--etcd-grpc-listen", Addr(grpc_port)});
  CheckEtcdctlScript(grpc_port, EtcdctlSteps::kKvctl);
}

TEST_CASE("etcd gRPC: Debian's tooz coordination tests over python3-etcd3 end against kvctl as against Debian's etcd") {
  const int grpc_port = FreePort();
  KvServer server({"--etcd-grpc-listen", Addr(grpc_port)});
  CheckToozCoordinationTests(grpc_port);
}

// What Debian's python3-etcd3 client returned, step by step, in a session
// with the server at `port` (tests/e2e/python_clients/etcd3_session.py).
std::string Etcd3Session(int port) { return RunPythonClient("etcd3_session.py", {Addr(port)}); }

// etcd's side, checked on its own: every step ran, none raised.
std::string Etcd3SessionOnEtcd() {
  EtcdProcess etcd;
  const std::string seen = Etcd3Session(etcd.port());
  INFO(seen);
  CHECK(std::count(seen.begin(), seen.end(), '\n') == 28);
  CHECK(seen.find("\"raised\"") == std::string::npos);
  CHECK(seen.find(R"({"result": [true, true, true, true, false, true, true], "step": "lock"})") != std::string::npos);
  return seen;
}

TEST_CASE("etcd gRPC: a python3-etcd3 session gets what it gets from Debian's etcd, on the file backend") {
  const std::string etcd = Etcd3SessionOnEtcd();
  const int grpc_port = FreePort();
  KvServer server({"--etcd-grpc-listen", Addr(grpc_port)});
  CHECK(Etcd3Session(grpc_port) == etcd);
}

TEST_CASE("etcd gRPC: a python3-etcd3 session gets what it gets from Debian's etcd, on PostgreSQL") {
  const std::string etcd = Etcd3SessionOnEtcd();
  MigratedDb db;
  const int grpc_port = FreePort();
  PgServer server(db.dsn, {"--etcd-grpc-listen", Addr(grpc_port)});
  CHECK(Etcd3Session(grpc_port) == etcd);
}

}  // namespace
}  // namespace kvctl::e2e
