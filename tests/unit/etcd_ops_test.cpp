// etcd's operations without a wire format (lib/etcd): what only a store
// this large shows. What they answer is checked against Debian's etcd in
// the e2e tests, over both faces.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "lib/core/txn.h"
#include "lib/etcd/kv_ops.h"
#include "lib/core/key_range.h"
#include "tests/support/fault_fs.h"
#include "tests/support/open_store.h"

namespace {

using namespace kvctl;
using kvctl::testing::OpenStore;
using kvctl::testing::TempDir;

// `count` keys under `prefix` with values of `value_bytes`, many to a
// transaction (one commit each, not one per key).
void Fill(core::Store& store, const std::string& prefix, size_t count, size_t value_bytes) {
  const std::string value(value_bytes, 'v');
  for (size_t i = 0; i < count;) {
    core::TxnRequest txn;
    for (size_t n = 0; n < 1000 && i < count; ++n, ++i) {
      core::TxnOp put;
      put.kind = core::TxnOp::Kind::kPut;
      put.key = fmt::format("{}{:07}", prefix, i);
      put.value = value;
      txn.success.push_back(std::move(put));
    }
    auto done = store.Txn(txn);
    REQUIRE(done.has_value());
  }
}

}  // namespace

TEST_CASE("etcd delete-range: a range of more keys than a kvctl prefix delete takes goes at one revision") {
  TempDir dir;
  OpenStore open(dir.path(), nullptr, core::FsyncPolicy::kNever);
  // etcdctl check perf ends by deleting every key it wrote: tens of
  // thousands, more than kvctl's own delete-prefix bound.
  const size_t keys = core::kMaxTxnDeleteKeys * 3;
  Fill(open.store, "perf/", keys, 8);
  const uint64_t before = open.store.revision();
  server::etcd::DeleteAsk ask;
  ask.key = "perf/";
  ask.range_end = server::etcd::PrefixEnd("perf/");
  server::etcd::DeleteReply reply;
  const auto error = server::etcd::DeleteRange(open.store, ask, &reply);
  REQUIRE_MESSAGE(!error, error->message);
  CHECK(reply.deleted == keys);
  CHECK(reply.revision == before + 1);
  CHECK(core::ReadRange(open.store, core::KeyRange{ask.key, ask.range_end}, true).items.empty());
}

TEST_CASE("etcd delete-range: over 64 MiB of keys (with prev_kv, of values too) is refused, naming the size, and deletes nothing") {
  TempDir dir;
  OpenStore open(dir.path(), nullptr, core::FsyncPolicy::kNever);
  // 70 MiB of values, small keys: a delete without prev_kv reads only the
  // keys, so only prev_kv is over.
  Fill(open.store, "big/", 70 * 1024, 1024);
  const uint64_t before = open.store.revision();
  server::etcd::DeleteAsk ask;
  ask.key = "big/";
  ask.range_end = server::etcd::PrefixEnd("big/");
  ask.prev_kv = true;
  server::etcd::DeleteReply reply;
  const auto error = server::etcd::DeleteRange(open.store, ask, &reply);
  REQUIRE(error.has_value());
  CHECK(error->code == server::etcd::kInvalidArgument);
  CHECK_MESSAGE(error->message.find("71680 keys") != std::string::npos, error->message);
  CHECK_MESSAGE(error->message.find("at most 64 MiB") != std::string::npos, error->message);
  CHECK_MESSAGE(error->message.find("in parts") != std::string::npos, error->message);
  CHECK(open.store.revision() == before);
  CHECK(core::ReadRange(open.store, core::KeyRange{ask.key, ask.range_end}, true).items.size() == 70 * 1024);

  ask.prev_kv = false;  // 70k keys of 11 bytes: under the bound
  const auto plain = server::etcd::DeleteRange(open.store, ask, &reply);
  REQUIRE_MESSAGE(!plain, plain->message);
  CHECK(reply.deleted == 70 * 1024);
}
