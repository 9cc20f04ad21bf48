// The etcd face's answers written without a JSON tree are the text the tree
// would have been dumped to: clients parse either, but the differential
// tests against Debian's etcd compare fields, not bytes, so the two ways of
// writing one answer are held equal here.
#include <doctest/doctest.h>

#include "lib/server/etcd_internal.h"

namespace {

using namespace kvctl::server;

TEST_CASE("etcd face: a header-only answer is written as its JSON tree dumps, with and without a revision") {
  EtcdOptions options;
  options.cluster_id = 14841639068965178418ull;  // above int64's range: written unsigned
  options.member_id = 10276657743932975437ull;
  for (uint64_t revision : {uint64_t{0}, uint64_t{1}, uint64_t{18446744073709551615ull}}) {
    CAPTURE(revision);
    etcd::Json tree;
    tree["header"] = etcd::Header(options, revision);
    CHECK(etcd::HeaderOnlyBody(options, revision) == etcd::Answer(tree).body);
  }
}

}  // namespace
