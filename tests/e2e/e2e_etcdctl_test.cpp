// etcd's gRPC API proven by software nobody here wrote, against Debian's
// etcd 3.4 started on loopback (etcd_differential.h): Debian's etcdctl
// driven through a user's session (etcdctl_script.h), and Debian's tooz
// coordination tests over python3-etcd3 (tooz_tests.h); and the same
// checks against kvctl's gRPC face (server.etcd_grpc_listen): the script on
// both backends (watches, locks and elections included), and tooz's
// tests, which end on kvctl as they do on etcd.
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

}  // namespace
}  // namespace kvctl::e2e
