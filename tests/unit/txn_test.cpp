// Transactions in the core: the TRANSACTION record (one record, one
// checksum, cut anywhere = none of it), the rules every backend shares
// (ValidateTxn, CompareHolds), and the file store's Txn: compares, branches,
// one revision for every write, idempotence, gets that see the
// transaction's own writes, recovery, compaction and the watch events.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "lib/core/file_log.h"
#include "lib/core/file_system.h"
#include "lib/core/log_reader.h"
#include "lib/core/store.h"
#include "tests/support/fault_fs.h"
#include "tests/support/open_store.h"
#include "tests/support/segment_records.h"
#include "tests/support/txn_shapes.h"

namespace {

using namespace kvctl;
using namespace std::chrono_literals;
using core::TxnCompare;
using core::TxnOp;
using kvctl::testing::TempDir;

using kvctl::testing::OpenStore;

TxnOp Put(std::string key, std::string value) {
  TxnOp op;
  op.kind = TxnOp::Kind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  return op;
}

TxnOp Op(TxnOp::Kind kind, std::string key, size_t limit = 0) {
  TxnOp op;
  op.kind = kind;
  op.key = std::move(key);
  op.limit = limit;
  return op;
}

TxnCompare Cmp(std::string key, TxnCompare::Target target, TxnCompare::Op op, uint64_t number,
               std::string value = {}) {
  return {std::move(key), target, op, std::move(value), number, std::nullopt};
}

using kvctl::testing::SegmentRecords;

}  // namespace

TEST_CASE("a transaction record holds every write under one checksum, and any cut of it is a torn write") {
  const core::KeyMeta meta{7, 2, 0};
  std::string bytes;
  core::AppendSegmentHeader(&bytes);
  core::AppendRecord(&bytes, 9, core::RecordType::kPut, "before", "x", nullptr);
  const size_t txn_at = bytes.size();
  core::AppendTxnRecord(&bytes, 10,
                        {{core::RecordType::kPut, "a", "1", &meta},
                         {core::RecordType::kDelete, "b", "", nullptr},
                         {core::RecordType::kPut, "c", "three", nullptr}});
  std::vector<core::LogRecord> seen;
  auto scan = core::ScanSegment(bytes, 9, [&](const core::LogRecord& r) {
    seen.push_back(r);
    return core::Status::Ok();
  });
  REQUIRE(scan.has_value());
  CHECK_FALSE(scan->damage.found);
  CHECK(scan->records == 2);
  CHECK(scan->last_revision == 10);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0].txn_writes == 0);
  for (size_t i = 1; i < 4; ++i) {
    CHECK(seen[i].revision == 10);
    CHECK(seen[i].txn_writes == 3);
  }
  CHECK(seen[1].key == "a");
  CHECK(seen[1].value == "1");
  CHECK(seen[1].has_meta);
  CHECK(seen[1].meta == meta);
  CHECK(seen[2].type == core::RecordType::kDelete);
  CHECK(seen[2].key == "b");
  CHECK(seen[3].value == "three");
  CHECK_FALSE(seen[3].has_meta);

  // Cut anywhere inside it: the writes before it only, and a torn tail.
  for (size_t cut = txn_at + 1; cut < bytes.size(); ++cut) {
    size_t writes = 0;
    auto torn = core::ScanSegment(std::string_view(bytes).substr(0, cut), 9, [&](const core::LogRecord&) {
      ++writes;
      return core::Status::Ok();
    });
    REQUIRE(torn.has_value());
    CHECK(writes == 1);
    CHECK(torn->damage.found);
    CHECK_FALSE(torn->damage.valid_record_after);
    CHECK(torn->valid_bytes == txn_at);
  }
  // A changed byte anywhere in it is damage, and none of its writes is read.
  for (size_t at = txn_at; at < bytes.size(); ++at) {
    std::string bad = bytes;
    bad[at] ^= 0x20;
    size_t writes = 0;
    auto damaged = core::ScanSegment(bad, 9, [&](const core::LogRecord&) {
      ++writes;
      return core::Status::Ok();
    });
    REQUIRE(damaged.has_value());
    CHECK(damaged->damage.found);
    CHECK(writes == 1);
  }
}

TEST_CASE("a transaction record whose writes do not decode is refused even with sound checksums") {
  // One write only: a transaction record holds two or more.
  std::string bytes;
  core::AppendSegmentHeader(&bytes);
  core::AppendTxnRecord(&bytes, 1, {{core::RecordType::kPut, "a", "1", nullptr}});
  auto parsed = core::ParseRecord(std::string_view(bytes).substr(core::kSegmentHeaderSize));
  CHECK(parsed.outcome == core::ParseOutcome::kBadChecksum);
  CHECK(std::string(parsed.why).find("count") != std::string::npos);
}

TEST_CASE("ValidateTxn refuses too many ops, empty keys and a key written twice, naming the op") {
  core::TxnRequest r;
  r.success = {Put("a", "1"), Put("a", "2")};
  auto s = core::ValidateTxn(r, 128, 100, 100);
  CHECK(s.IsInvalidArgument());
  CHECK(s.message().find("success[1] (put)") != std::string::npos);
  CHECK(s.message().find("success[0] (put)") != std::string::npos);

  r.success = {Op(TxnOp::Kind::kDeletePrefix, "app/"), Put("app/x", "1")};
  CHECK(core::ValidateTxn(r, 128, 100, 100).IsInvalidArgument());
  r.success = {Put("app/x", "1"), Op(TxnOp::Kind::kDeletePrefix, "app/")};
  CHECK(core::ValidateTxn(r, 128, 100, 100).IsInvalidArgument());
  // Reads of a key written, and writes in different branches, are fine.
  r.success = {Put("a", "1"), Op(TxnOp::Kind::kGet, "a"), Op(TxnOp::Kind::kGetPrefix, "")};
  r.failure = {Put("a", "2")};
  CHECK(core::ValidateTxn(r, 128, 100, 100).ok());
  CHECK(core::ValidateTxn(r, 3, 100, 100).message().find("limits.max_txn_ops = 3") != std::string::npos);

  r = {};
  r.failure = {Op(TxnOp::Kind::kDelete, "")};
  CHECK(core::ValidateTxn(r, 128, 100, 100).message().find("failure[0] (delete): the key is empty") !=
        std::string::npos);
  r = {};
  r.success = {Put("a", std::string(101, 'v'))};
  CHECK(core::ValidateTxn(r, 128, 100, 100).message().find("limits.max_value_bytes") != std::string::npos);
}

TEST_CASE("compares follow etcd: a missing key has zero metadata and fails every value compare") {
  const core::TxnKeyState missing;
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kVersion, TxnCompare::Op::kEqual, 0), missing));
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kCreateRevision, TxnCompare::Op::kEqual, 0), missing));
  CHECK_FALSE(core::CompareHolds(Cmp("k", TxnCompare::Target::kValue, TxnCompare::Op::kNotEqual, 0, "x"), missing));
  const std::string value = "b";
  const core::TxnKeyState live{value, 12, {10, 3, 0}};
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kValue, TxnCompare::Op::kGreater, 0, "a"), live));
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kValue, TxnCompare::Op::kLess, 0, "c"), live));
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kRevision, TxnCompare::Op::kEqual, 12), live));
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kCreateRevision, TxnCompare::Op::kLess, 11), live));
  CHECK(core::CompareHolds(Cmp("k", TxnCompare::Target::kVersion, TxnCompare::Op::kNotEqual, 2), live));
  CHECK_FALSE(core::CompareHolds(Cmp("k", TxnCompare::Target::kLease, TxnCompare::Op::kGreater, 0), live));
}

TEST_CASE("a transaction's writes take one revision, one log record, and survive a restart and a compaction") {
  TempDir dir;
  {
    OpenStore s(dir.path());
    REQUIRE(s.store.Put("counter", "1").has_value());  // revision 1
    REQUIRE(s.store.Put("gone", "x").has_value());     // revision 2

    core::TxnRequest r;
    r.compare = {Cmp("counter", TxnCompare::Target::kValue, TxnCompare::Op::kEqual, 0, "1"),
                 Cmp("counter", TxnCompare::Target::kVersion, TxnCompare::Op::kEqual, 1)};
    r.success = {Put("counter", "2"), Put("other", "o"), Op(TxnOp::Kind::kDelete, "gone"),
                 Op(TxnOp::Kind::kGet, "counter"), Op(TxnOp::Kind::kGetPrefix, "")};
    r.failure = {Op(TxnOp::Kind::kGet, "counter")};
    auto done = s.store.Txn(r);
    REQUIRE(done.has_value());
    CHECK(done->succeeded);
    CHECK(done->changed);
    CHECK(done->revision == 3);
    REQUIRE(done->results.size() == 5);
    CHECK(done->results[0].revision == 3);
    CHECK(done->results[0].meta == core::KeyMeta{1, 2, 0});
    CHECK(done->results[1].created);
    CHECK(done->results[2].deleted == 1);
    // Gets see the transaction's own writes.
    REQUIRE(done->results[3].items.size() == 1);
    CHECK(done->results[3].items[0].value == "2");
    CHECK(done->results[3].items[0].revision == 3);
    REQUIRE(done->results[4].items.size() == 2);
    CHECK(done->results[4].items[0].key == "counter");
    CHECK(done->results[4].items[1].key == "other");
    CHECK(s.store.revision() == 3);
    CHECK(s.store.Get("other")->revision == 3);
    CHECK_FALSE(s.store.Get("gone").has_value());

    // The same again: the compare fails now; the failure branch reads.
    auto again = s.store.Txn(r);
    REQUIRE(again.has_value());
    CHECK_FALSE(again->succeeded);
    CHECK_FALSE(again->changed);
    CHECK(again->revision == 3);
    REQUIRE(again->results.size() == 1);
    CHECK(again->results[0].items.at(0).value == "2");

    // Writes that change nothing take no revision.
    core::TxnRequest same;
    same.success = {Put("counter", "2"), Put("other", "o"), Op(TxnOp::Kind::kDelete, "gone")};
    auto idle = s.store.Txn(same);
    REQUIRE(idle.has_value());
    CHECK(idle->succeeded);
    CHECK_FALSE(idle->changed);
    CHECK(idle->revision == 3);
    CHECK(s.store.revision() == 3);

    // A put naming a lease: none exist.
    core::TxnRequest leased;
    leased.success = {Put("l", "1")};
    leased.success[0].lease = 5;
    CHECK(s.store.Txn(leased).error().IsNotFound());
    CHECK(s.store.Close().ok());
  }
  std::vector<std::string> keep;
  const auto records = SegmentRecords(dir.path(), &keep);
  REQUIRE(records.size() == 5);  // two PUTs, then the transaction's three writes
  CHECK(records[2].revision == 3);
  CHECK(records[2].txn_writes == 3);
  CHECK(records[4].type == core::RecordType::kDelete);

  {
    OpenStore s(dir.path());
    CHECK(s.store.revision() == 3);
    CHECK(s.store.Get("counter")->value == "2");
    CHECK(s.store.Get("counter")->meta == core::KeyMeta{1, 2, 0});
    CHECK(s.store.Get("other")->revision == 3);
    CHECK_FALSE(s.store.Get("gone").has_value());
    REQUIRE(s.store.Put("after", "a").has_value());
    CHECK(s.store.Get("after")->revision == 4);
    auto compacted = s.store.Compact();
    REQUIRE(compacted.has_value());
    CHECK(s.store.Close().ok());
  }
  OpenStore s(dir.path());
  CHECK(s.store.revision() == 4);
  CHECK(s.store.Get("other")->revision == 3);
  CHECK(s.store.Get("counter")->meta == core::KeyMeta{1, 2, 0});
}

TEST_CASE("a delete of a prefix in a transaction deletes every key under it, pending ones included, at one revision") {
  TempDir dir;
  OpenStore s(dir.path());
  for (int i = 0; i < 5; ++i) REQUIRE(s.store.Put("app/" + std::to_string(i), "v").has_value());
  REQUIRE(s.store.Put("apple", "v").has_value());
  std::vector<std::shared_ptr<const core::WatchEvent>> events;
  auto watcher = s.store.Watch({"app/", true}, 0, nullptr);
  REQUIRE(watcher.has_value());

  core::TxnRequest r;
  r.success = {Op(TxnOp::Kind::kDeletePrefix, "app/"), Put("flag", "deleted")};
  auto done = s.store.Txn(r);
  REQUIRE(done.has_value());
  CHECK(done->results[0].deleted == 5);
  CHECK(done->revision == 7);
  CHECK(s.store.List({.prefix = "app/"}).items.empty());
  CHECK(s.store.Get("apple").has_value());

  core::Watcher::Batch batch;
  for (int i = 0; i < 100 && batch.events.size() < 5; ++i) {
    core::Watcher::Batch more;
    (*watcher)->Poll(1 << 20, &more);
    batch.events.insert(batch.events.end(), more.events.begin(), more.events.end());
    if (batch.events.size() < 5) std::this_thread::sleep_for(10ms);
  }
  REQUIRE(batch.events.size() == 5);
  for (const auto& e : batch.events) {
    CHECK(e->revision == 7);
    CHECK(e->type == core::RecordType::kDelete);
  }
  // A second delete of the prefix finds nothing: no revision.
  auto again = s.store.Txn(r);
  REQUIRE(again.has_value());
  CHECK(again->results[0].deleted == 0);
  CHECK_FALSE(again->changed);
}

TEST_CASE("concurrent compare-and-increment transactions lose no increment") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Put("n", "0").has_value());
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        const auto cur = s.store.Get("n");
        core::TxnRequest r;
        r.compare = {Cmp("n", TxnCompare::Target::kRevision, TxnCompare::Op::kEqual, cur->revision)};
        r.success = {Put("n", std::to_string(std::stoi(cur->value) + 1))};
        auto done = s.store.Txn(r);
        if (done.has_value() && done->succeeded) ++succeeded;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(succeeded.load() > 0);
  CHECK(s.store.Get("n")->value == std::to_string(succeeded.load()));
}

TEST_CASE("a log whose newest segment is of the format before transactions goes on in a new segment") {
  TempDir dir;
  std::string old;
  core::AppendSegmentHeader(&old);
  old[8] = static_cast<char>(core::kTxnFreeFormatVersion);
  core::AppendRecord(&old, 1, core::RecordType::kPut, "a", "1", nullptr);
  core::AppendRecord(&old, 2, core::RecordType::kPut, "b", "2", nullptr);
  REQUIRE(core::PosixFileSystem().WriteFile(dir.path() + "/" + core::SegmentFileName(1), old).ok());
  {
    OpenStore s(dir.path());
    CHECK(s.store.Get("b")->revision == 2);
    core::TxnRequest r;
    r.success = {Put("a", "x"), Put("b", "y")};
    REQUIRE(s.store.Txn(r).has_value());
    CHECK(s.store.Close().ok());
  }
  // The old segment is as it was; the transaction is in a segment of this format.
  auto first = core::PosixFileSystem().ReadFile(dir.path() + "/" + core::SegmentFileName(1));
  REQUIRE(first.has_value());
  CHECK(*first == old);
  auto second = core::PosixFileSystem().ReadFile(dir.path() + "/" + core::SegmentFileName(3));
  REQUIRE(second.has_value());
  CHECK(static_cast<uint32_t>((*second)[8]) == core::kFormatVersion);
  OpenStore s(dir.path());
  CHECK(s.store.Get("a")->value == "x");
  CHECK(s.store.Get("b")->revision == 3);
}

namespace {

core::TxnRequest Branches(std::vector<TxnOp> success, std::vector<TxnOp> failure = {}) {
  core::TxnRequest r;
  r.success = std::move(success);
  r.failure = std::move(failure);
  return r;
}

bool WritesTwice(const core::TxnRequest& r) {
  const core::Status s = core::ValidateTxn(r, 128, 100, 100);
  return !s.ok() && s.message().find("a transaction writes each key once") != std::string::npos;
}

}  // namespace

TEST_CASE("ValidateTxn follows etcd's duplicate-key rule through nested transactions, and bounds depth and ops") {
  using kvctl::testing::txn_shapes::NestedOf;
  using kvctl::testing::txn_shapes::OpOf;
  using K = TxnOp::Kind;
  // A put and a nested put of one key, either order; a put under a nested
  // delete, a nested put under a delete.
  CHECK(WritesTwice(Branches({Put("k", "1"), NestedOf(Branches({Put("k", "2")}))})));
  CHECK(WritesTwice(Branches({NestedOf(Branches({}, {Put("k", "2")})), Put("k", "1")})));
  CHECK(WritesTwice(Branches({Put("b", "1"), NestedOf(Branches({OpOf(K::kDeleteRange, "a", "c")}))})));
  CHECK(WritesTwice(Branches({OpOf(K::kDeleteRange, "a", "c"), NestedOf(Branches({}, {Put("b", "2")}))})));
  CHECK(WritesTwice(Branches({OpOf(K::kDeleteRange, "a", ""), Put("zzz", "1")})));  // to the last key
  // kvctl, unlike etcd 3.4, also refuses a nested delete of what an
  // earlier nested transaction puts (the key would be written twice).
  CHECK(WritesTwice(Branches({NestedOf(Branches({Put("b", "1")})), NestedOf(Branches({OpOf(K::kDelete, "b")}))})));
  // Taken: a put in both branches of one nested transaction, overlapping
  // deletes, a put beside a delete range that does not hold it, and the
  // two branches of the top.
  CHECK(core::ValidateTxn(Branches({NestedOf(Branches({Put("b", "1")}, {Put("b", "2")}))}), 128, 100, 100).ok());
  CHECK(core::ValidateTxn(Branches({OpOf(K::kDeleteRange, "a", "c"), OpOf(K::kDelete, "b"),
                                    OpOf(K::kDeletePrefix, "")}),
                          128, 100, 100)
            .ok());
  CHECK(core::ValidateTxn(Branches({OpOf(K::kDeleteRange, "a", "c"), Put("c", "1")}), 128, 100, 100).ok());
  CHECK(core::ValidateTxn(Branches({Put("k", "1")}, {Put("k", "2")}), 128, 100, 100).ok());
  // The message names both ops, nested ones by their path.
  const core::Status s = core::ValidateTxn(Branches({Put("k", "1"), NestedOf(Branches({}, {Put("k", "2")}))}), 128, 100, 100);
  CHECK(s.message().find("success[1].failure[0] (put)") != std::string::npos);
  CHECK(s.message().find("success[0] (put)") != std::string::npos);

  // limits.max_txn_ops counts every op of the tree.
  core::TxnRequest inner = Branches({Put("x", "1"), Put("y", "1")});
  core::TxnRequest outer = Branches({NestedOf(inner)}, {NestedOf(inner)});
  CHECK(core::ValidateTxn(outer, 6, 100, 100).ok());
  CHECK(core::ValidateTxn(outer, 5, 100, 100).message().find("has 6 compares and ops, over limits.max_txn_ops = 5") !=
        std::string::npos);
  // Nesting deeper than kMaxTxnDepth.
  core::TxnRequest deep = Branches({Put("x", "1")});
  for (size_t i = 1; i < core::kMaxTxnDepth; ++i) deep = Branches({NestedOf(deep)});
  CHECK(core::ValidateTxn(deep, 1000, 100, 100).ok());
  deep = Branches({NestedOf(deep)});
  CHECK(core::ValidateTxn(deep, 1000, 100, 100).message().find("nest more than 32 deep") != std::string::npos);
  // A nested op's empty key names its place.
  CHECK(core::ValidateTxn(Branches({NestedOf(Branches({Put("", "1")}))}), 128, 100, 100).message().find(
            "success[0].success[0] (put): the key is empty") != std::string::npos);
}

TEST_CASE("the file store judges a compare over a range by every key in it, and an empty range as a missing key") {
  TempDir dir;
  OpenStore s(dir.path());
  kvctl::testing::txn_shapes::CheckRangeCompares(s.store);
}

TEST_CASE("the file store reads and deletes any range in a transaction, seeing the transaction's own writes") {
  TempDir dir;
  OpenStore s(dir.path());
  kvctl::testing::txn_shapes::CheckRangeOps(s.store);
}

TEST_CASE("the file store runs nested transactions at one revision, every compare judged before any op") {
  TempDir dir;
  OpenStore s(dir.path());
  kvctl::testing::txn_shapes::CheckNested(s.store);
}

TEST_CASE("the file store's transaction put keeps a key's value or lease, and refuses a key that does not exist") {
  TempDir dir;
  OpenStore s(dir.path());
  kvctl::testing::txn_shapes::CheckKeepValueAndLease(s.store);
}
