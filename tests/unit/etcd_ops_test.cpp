// etcd's operations without a wire format (lib/etcd): what only a store
// this large shows, and limits the e2e tests would need hundreds of
// requests for. What they answer is checked against Debian's etcd in the
// e2e tests, over both faces.
#include <future>

#include <doctest/doctest.h>

#include <fmt/format.h>

#include "lib/core/txn.h"
#include "lib/etcd/kv_ops.h"
#include "lib/etcd/txn_ops.h"
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

TEST_CASE("etcd txn: ranges at a past revision count toward limits.max_txn_ops, nested ones too, and over it nothing is written") {
  TempDir dir;
  OpenStore open(dir.path(), nullptr, core::FsyncPolicy::kNever);
  REQUIRE(open.store.Put("k", "v1").has_value());
  const uint64_t before = open.store.revision();
  using server::etcd::RequestAsk;
  auto past_range = [&] {
    RequestAsk r;
    r.kind = RequestAsk::Kind::kRange;
    r.range.key = "k";
    r.range.revision = static_cast<int64_t>(before);
    return r;
  };
  RequestAsk put;
  put.kind = RequestAsk::Kind::kPut;
  put.put.key = "k";
  put.put.value = "v2";
  server::etcd::TxnAsk ask;
  ask.success = {put, past_range()};
  RequestAsk nested;
  nested.kind = RequestAsk::Kind::kTxn;
  nested.txn = std::make_shared<server::etcd::TxnAsk>();
  nested.txn->failure = {past_range(), past_range()};
  ask.failure = {nested};
  // 1 put, 1 nested txn, 3 past ranges: 5.
  server::EtcdOptions options;
  auto run = [&](size_t max_ops) {
    options.max_txn_ops = max_ops;
    using Answer = std::pair<std::optional<server::etcd::Error>, server::etcd::TxnReply>;
    std::promise<Answer> answered;  // the store answers from its committer thread
    server::etcd::Txn(open.store, options, ask, [&](std::optional<server::etcd::Error> e, server::etcd::TxnReply r) {
      answered.set_value({std::move(e), std::move(r)});
    });
    return answered.get_future().get();
  };
  auto [over, none] = run(4);
  REQUIRE(over.has_value());
  CHECK_MESSAGE(over->message.find("5 compares and ops, over limits.max_txn_ops = 4") != std::string::npos,
                over->message);
  CHECK(open.store.revision() == before);

  auto [error, reply] = run(5);
  REQUIRE_MESSAGE(!error, error->message);
  CHECK(reply.succeeded);
  REQUIRE(reply.responses.size() == 2);
  // The past read answers what the key held then, not the txn's own put.
  REQUIRE(reply.responses[1].range.kvs.size() == 1);
  CHECK(reply.responses[1].range.kvs[0].value == "v1");
  CHECK(open.store.Get("k")->value == "v2");
}
