// Tests for lib/etcd/access.h: etcd's ranges, txns, leases and compaction
// judged against kvctl's prefix grants, as both etcd faces judge them.
#include "lib/etcd/access.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

namespace kvctl::server::etcd {
namespace {

using access::Grant;
using access::Op;
using access::Principal;

TEST_SUITE_BEGIN("etcd access");

const std::string kZero("\0", 1);  // etcd's "from the key on" range end

TEST_CASE("a range is permitted when one grant covers all of it, a range to the last key only by the grant of every key") {
  const Principal app{"app", {Grant{"app/", true, true, false}}};
  CHECK(RangePermitted(&app, Op::kRead, "app/x", ""));
  CHECK(RangePermitted(&app, Op::kRead, "app/", "app0"));     // the prefix app/ itself
  CHECK(RangePermitted(&app, Op::kRead, "app/a", "app/b"));   // inside it
  CHECK_FALSE(RangePermitted(&app, Op::kRead, "app/", "app1"));  // past its end
  CHECK_FALSE(RangePermitted(&app, Op::kRead, "app/x", kZero));  // to the last key
  CHECK_FALSE(RangePermitted(&app, Op::kRead, "other", ""));
  CHECK_FALSE(RangePermitted(&app, Op::kAdmin, "app/x", ""));
  const Principal everything{"root", {Grant{"", true, false, false}}};
  CHECK(RangePermitted(&everything, Op::kRead, kZero, kZero));
  CHECK_FALSE(RangePermitted(&everything, Op::kWrite, "x", ""));
  CHECK(RangePermitted(nullptr, Op::kWrite, kZero, kZero));  // auth off
}

TEST_CASE("a txn is permitted when every compare and request of both branches is, nested ones included") {
  const Principal app{"app", {Grant{"app/", true, true, false}, Grant{"ro/", true, false, false}}};
  TxnAsk txn;
  txn.compare.emplace_back().key = "ro/flag";
  RequestAsk& put = txn.success.emplace_back();
  put.kind = RequestAsk::Kind::kPut;
  put.put.key = "app/x";
  CHECK(TxnPermitted(&app, txn));

  RequestAsk& nested = txn.failure.emplace_back();
  nested.kind = RequestAsk::Kind::kTxn;
  nested.txn = std::make_shared<TxnAsk>();
  RequestAsk& del = nested.txn->success.emplace_back();
  del.kind = RequestAsk::Kind::kDelete;
  del.del.key = "ro/flag";  // read-only there
  CHECK_FALSE(TxnPermitted(&app, txn));
  del.del.key = "app/y";
  CHECK(TxnPermitted(&app, txn));
  txn.compare.emplace_back().key = "secret";
  CHECK_FALSE(TxnPermitted(&app, txn));
  CHECK(TxnPermitted(nullptr, txn));
}

TEST_CASE("leases need a write grant somewhere, compaction the admin grant") {
  const Principal writer{"w", {Grant{"app/", false, true, false}}};
  const Principal reader{"r", {Grant{"", true, false, false}}};
  const Principal admin{"a", {Grant{"", false, false, true}}};
  const Principal prefixed_admin{"pa", {Grant{"app/", true, true, true}}};
  CHECK(LeasesPermitted(&writer));
  CHECK_FALSE(LeasesPermitted(&reader));
  CHECK(CompactionPermitted(&admin));
  CHECK_FALSE(CompactionPermitted(&writer));
  CHECK_FALSE(CompactionPermitted(&prefixed_admin));  // admin is store-wide: prefix "" only
  CHECK(LeasesPermitted(nullptr));
  CHECK(CompactionPermitted(nullptr));
}

TEST_CASE("a lease shows only the keys its caller may read") {
  const Principal app{"app", {Grant{"app/", true, true, false}, Grant{"logs/", false, true, false}}};
  std::vector<std::string> keys = {"app/a", "logs/1", "other", "app/b"};
  KeepReadable(&app, &keys);
  CHECK(keys == std::vector<std::string>{"app/a", "app/b"});
  std::vector<std::string> all = {"x", "y"};
  KeepReadable(nullptr, &all);
  CHECK(all.size() == 2);
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::server::etcd
