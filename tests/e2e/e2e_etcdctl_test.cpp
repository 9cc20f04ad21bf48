// etcd's gRPC API proven by software nobody here wrote, against Debian's
// etcd 3.4 started on loopback (etcd_differential.h): Debian's etcdctl
// driven through a user's session (etcdctl_script.h), and Debian's tooz
// coordination tests over python3-etcd3 (tooz_tests.h). Issue 17 will point
// the same checks at kvctl's gRPC face.
#include <doctest/doctest.h>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/etcdctl_script.h"
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

}  // namespace
}  // namespace kvctl::e2e
