// The transaction shapes etcd's kv/txn brought to the core, checked the same
// way on any KvStore: the file store's unit tests (tests/unit/txn_test.cpp)
// and PostgreSQL's e2e tests (tests/e2e/e2e_pg_txn_test.cpp) both run these
// against a fresh, empty store. Each names the rule it checks.
#pragma once

#include <doctest/doctest.h>

#include <future>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/kv_store.h"
#include "lib/core/txn.h"

namespace kvctl::testing::txn_shapes {

using core::TxnCompare;
using core::TxnOp;

inline TxnOp PutOf(std::string key, std::string value, uint64_t lease = 0) {
  TxnOp op;
  op.kind = TxnOp::Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

inline TxnOp OpOf(TxnOp::Kind kind, std::string key, std::string range_end = {}) {
  TxnOp op;
  op.kind = kind;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}

inline TxnOp NestedOf(core::TxnRequest request) {
  TxnOp op;
  op.kind = TxnOp::Kind::kTxn;
  op.txn = std::make_shared<const core::TxnRequest>(std::move(request));
  return op;
}

inline TxnCompare CompareOf(std::string key, TxnCompare::Target target, TxnCompare::Op op, uint64_t number,
                            std::optional<std::string> range_end = std::nullopt, std::string value = {}) {
  TxnCompare c;
  c.key = std::move(key);
  c.target = target;
  c.op = op;
  c.number = number;
  c.value = std::move(value);
  c.range_end = std::move(range_end);
  return c;
}

inline core::TxnResult Run(core::KvStore& s, const core::TxnRequest& r) {
  auto done = s.Txn(r);
  REQUIRE_MESSAGE(done.has_value(), done.error().message());
  return *done;
}

inline std::vector<std::string> Keys(const core::TxnOpResult& r) {
  std::vector<std::string> keys;
  for (const auto& it : r.items) keys.push_back(it.key);
  return keys;
}

inline std::string ValueOf(const core::KvStore& s, const std::string& key) {
  auto e = s.Get(key);
  return e.has_value() ? e->value : "(none)";
}

using T = TxnCompare::Target;
using O = TxnCompare::Op;
using K = TxnOp::Kind;
using Strings = std::vector<std::string>;

// a=1 b=2 c=3 d=4, one revision each.
inline void Fill(core::KvStore& s) {
  for (const auto& [k, v] : {std::pair{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}) {
    REQUIRE(s.Put(k, v).has_value());
  }
}

inline void CheckRangeCompares(core::KvStore& s) {
  Fill(s);
  auto holds = [&](TxnCompare c) {
    core::TxnRequest r;
    r.compare = {std::move(c)};
    return Run(s, r).succeeded;
  };
  // Every key of the range holds; one fails; an end below the start and
  // a range with no key are judged as a missing key; "" is to the last key.
  CHECK(holds(CompareOf("a", T::kVersion, O::kEqual, 1, "d")));
  CHECK(holds(CompareOf("a", T::kValue, O::kGreater, 0, "e", "0")));
  CHECK_FALSE(holds(CompareOf("a", T::kValue, O::kLess, 0, "e", "4")));  // d's "4" is not below "4"
  CHECK(holds(CompareOf("a", T::kValue, O::kLess, 0, "d", "4")));
  const uint64_t b_revision = s.Get("b")->revision;
  CHECK_FALSE(holds(CompareOf("a", T::kRevision, O::kLess, b_revision, "c")));
  CHECK(holds(CompareOf("x", T::kCreateRevision, O::kEqual, 0, "y")));
  CHECK_FALSE(holds(CompareOf("x", T::kValue, O::kEqual, 0, "y", "")));
  CHECK(holds(CompareOf("c", T::kVersion, O::kEqual, 0, "a")));
  CHECK(holds(CompareOf("b", T::kVersion, O::kGreater, 0, "")));
  CHECK_FALSE(holds(CompareOf("b", T::kLease, O::kNotEqual, 0, "")));
  // A key deleted no longer counts.
  REQUIRE(s.Delete("b").has_value());
  CHECK(holds(CompareOf("a", T::kRevision, O::kNotEqual, b_revision, "c")));
}

inline void CheckRangeOps(core::KvStore& s) {
  Fill(s);
  REQUIRE(s.Put("e", "5").has_value());
  core::TxnRequest r;
  r.success = {OpOf(K::kGetRange, "b", "d"), OpOf(K::kGetRange, "c", ""), OpOf(K::kGetRange, "d", "b"),
               OpOf(K::kDeleteRange, "b", "c"), OpOf(K::kGetRange, "a", "z"), PutOf("aa", "new"),
               OpOf(K::kGetRange, "a", "b"), OpOf(K::kDeleteRange, "d", ""), OpOf(K::kGetRange, "", "")};
  core::TxnResult done = Run(s, r);
  REQUIRE(done.results.size() == 9);
  CHECK(Keys(done.results[0]) == Strings{"b", "c"});
  CHECK(Keys(done.results[1]) == Strings{"c", "d", "e"});
  CHECK(done.results[2].items.empty());
  CHECK(done.results[3].deleted == 1);
  CHECK(Keys(done.results[4]) == Strings{"a", "c", "d", "e"});
  CHECK(Keys(done.results[6]) == Strings{"a", "aa"});  // the transaction's own put
  CHECK(done.results[7].deleted == 2);
  CHECK(Keys(done.results[8]) == Strings{"a", "aa", "c"});
  CHECK(ValueOf(s, "b") == "(none)");
  CHECK(ValueOf(s, "e") == "(none)");
  CHECK(s.Get("aa")->revision == done.revision);
  // A limit on a range read.
  r = {};
  TxnOp limited = OpOf(K::kGetRange, "a", "");
  limited.limit = 2;
  r.success = {limited};
  done = Run(s, r);
  CHECK(Keys(done.results[0]) == Strings{"a", "aa"});
  CHECK(done.results[0].more);
  CHECK_FALSE(done.changed);
}

inline void CheckNested(core::KvStore& s) {
  Fill(s);
  const uint64_t before = s.revision();
  // Two levels; the outer success runs, the inner compare fails, the
  // innermost succeeds. Reads see the earlier writes of any level; every
  // write takes the one revision.
  core::TxnRequest innermost;
  innermost.success = {PutOf("n3", "z"), OpOf(K::kGetRange, "n", "o")};
  core::TxnRequest inner;
  inner.compare = {CompareOf("a", T::kVersion, O::kEqual, 7)};
  inner.success = {PutOf("never", "1")};
  inner.failure = {PutOf("n2", "y"), NestedOf(innermost)};
  core::TxnRequest r;
  r.compare = {CompareOf("a", T::kVersion, O::kEqual, 1)};
  r.success = {PutOf("n1", "x"), NestedOf(inner), OpOf(K::kGet, "n3")};
  r.failure = {PutOf("never", "2")};
  core::TxnResult done = Run(s, r);
  CHECK(done.succeeded);
  CHECK(done.revision == before + 1);
  REQUIRE(done.results.size() == 3);
  const core::TxnOpResult& level1 = done.results[1];
  CHECK(level1.kind == K::kTxn);
  CHECK_FALSE(level1.succeeded);
  REQUIRE(level1.results.size() == 2);
  CHECK(level1.results[0].revision == before + 1);
  const core::TxnOpResult& level2 = level1.results[1];
  CHECK(level2.succeeded);
  REQUIRE(level2.results.size() == 2);
  CHECK(Keys(level2.results[1]) == Strings{"n1", "n2", "n3"});
  CHECK(Keys(done.results[2]) == Strings{"n3"});
  CHECK(ValueOf(s, "never") == "(none)");
  CHECK(s.Get("n2")->revision == before + 1);

  // The compares of the whole tree are judged before any op runs: the
  // nested compare does not see the put before it.
  core::TxnRequest sees;
  sees.compare = {CompareOf("z", T::kVersion, O::kEqual, 1)};
  sees.success = {PutOf("zz", "saw z")};
  sees.failure = {PutOf("zz", "did not see z")};
  r = {};
  r.success = {PutOf("z", "1"), NestedOf(sees)};
  done = Run(s, r);
  CHECK_FALSE(done.results[1].succeeded);
  CHECK(ValueOf(s, "zz") == "did not see z");

  // A refusal deep in the tree writes nothing of it.
  core::TxnRequest bad;
  bad.success = {PutOf("l", "v", 424242)};
  r = {};
  r.success = {PutOf("n1", "changed"), NestedOf(bad)};
  auto refused = s.Txn(r);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsNotFound());
  CHECK(refused.error().message().find("424242") != std::string::npos);
  CHECK(ValueOf(s, "n1") == "x");
}

inline uint64_t GrantLease(core::KvStore& s) {
  std::promise<core::Result<core::LeaseInfo>> granted;
  s.LeaseGrantAsync(600, 0, [&](core::Result<core::LeaseInfo> r) { granted.set_value(std::move(r)); });
  auto lease = granted.get_future().get();
  REQUIRE_MESSAGE(lease.has_value(), lease.error().message());
  return lease->id;
}

inline void CheckKeepValueAndLease(core::KvStore& s) {
  const uint64_t lease = GrantLease(s);
  REQUIRE(s.Put("k", "v1", {}, lease).has_value());
  core::TxnRequest r;
  TxnOp keep_lease = PutOf("k", "v2");
  keep_lease.keep_lease = true;
  r.success = {keep_lease};
  Run(s, r);
  CHECK(ValueOf(s, "k") == "v2");
  CHECK(s.Get("k")->meta.lease == lease);
  TxnOp keep_value = PutOf("k", "");
  keep_value.keep_value = true;
  r.success = {keep_value};
  core::TxnResult done = Run(s, r);
  CHECK(ValueOf(s, "k") == "v2");
  CHECK(s.Get("k")->meta.lease == 0);
  CHECK(s.Get("k")->meta.version == 3);
  CHECK(done.results[0].meta.version == 3);
  // A key that does not exist: FailedPrecondition, and nothing written.
  TxnOp missing = PutOf("ghost", "");
  missing.keep_value = true;
  r.success = {PutOf("k", "v3"), missing};
  auto refused = s.Txn(r);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().IsFailedPrecondition());
  CHECK(refused.error().message().find("success[1] (put)") != std::string::npos);
  CHECK(ValueOf(s, "k") == "v2");
}

}  // namespace kvctl::testing::txn_shapes
