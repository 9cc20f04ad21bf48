// The etcd JSON face's answers written straight (etcd_internal.h) agree
// with the same answers built as JSON objects, byte for byte.
#include <doctest/doctest.h>

#include <cstdint>

#include "lib/server/etcd_internal.h"

using namespace kvctl::server;

TEST_CASE("etcd face: a header-only answer written straight is the JSON writer's, byte for byte") {
  EtcdOptions options;
  options.cluster_id = 0xfedcba9876543210ull;  // above INT64_MAX: etcd's ids are unsigned
  options.member_id = 1;
  for (const uint64_t revision : {uint64_t{0}, uint64_t{1}, uint64_t{42}, UINT64_MAX}) {
    INFO("revision " << revision);
    const HttpResponse straight = etcd::HeaderAnswer(options, revision);
    const HttpResponse built = etcd::Answer(etcd::Json{{"header", etcd::Header(options, revision)}});
    CHECK(straight.body == built.body);
    CHECK(straight.status == built.status);
    CHECK(straight.content_type == built.content_type);
  }
}
