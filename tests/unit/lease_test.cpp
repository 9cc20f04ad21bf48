// Leases in the file store: grant and end as log records, the deletes of a
// lease's keys at one revision, the expiry clock, keepalives, a restart
// that gives every lease its full TTL again, and compaction keeping the
// leases alive (snapshot version 4).
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

#include <fmt/format.h>

#include "lib/core/file_log.h"
#include "lib/core/file_system.h"
#include "lib/core/log_reader.h"
#include "lib/core/store.h"
#include "tests/support/fault_fs.h"
#include "tests/support/open_store.h"
#include "tests/support/segment_records.h"

namespace {

using namespace kvctl;
using namespace std::chrono_literals;
using kvctl::testing::TempDir;

using kvctl::testing::OpenStore;

core::Result<core::LeaseInfo> Grant(core::Store& store, int64_t ttl, uint64_t id = 0) {
  std::promise<core::Result<core::LeaseInfo>> p;
  store.LeaseGrantAsync(ttl, id, [&](core::Result<core::LeaseInfo> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

core::Result<uint64_t> Revoke(core::Store& store, uint64_t id) {
  std::promise<core::Result<uint64_t>> p;
  store.LeaseRevokeAsync(id, [&](core::Result<uint64_t> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

template <typename Pred>
bool Within(std::chrono::milliseconds limit, Pred pred) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

// The log as lines: "REV grant|end TTL" for a lease record, else "REV put|delete KEY txn=N".
std::vector<std::string> ReplayLines(const std::string& dir) {
  std::vector<std::string> keep, lines;
  for (const core::LogRecord& r : kvctl::testing::SegmentRecords(dir, &keep)) {
    core::LeaseRecord lease;
    if (!core::ChangesKey(r.type) && core::DecodeLeaseRecord(r, &lease)) {
      lines.push_back(fmt::format("{} {} {}", r.revision, r.type == core::RecordType::kLeaseGrant ? "grant" : "end",
                                  lease.ttl));
    } else {
      lines.push_back(fmt::format("{} {} {} txn={}", r.revision, r.type == core::RecordType::kPut ? "put" : "delete",
                                  r.key, r.txn_writes));
    }
  }
  return lines;
}

}  // namespace

TEST_CASE("lease records encode their id, TTL and reason, and refuse what is out of range") {
  std::string bytes;
  core::AppendRecord(&bytes, 5, core::RecordType::kLeaseGrant, core::LeaseGrantKey(77), core::LeaseTtlValue(30));
  auto parsed = core::ParseRecord(bytes);
  REQUIRE(parsed.outcome == core::ParseOutcome::kOk);
  core::LeaseRecord lease;
  REQUIRE(core::DecodeLeaseRecord(parsed.record, &lease));
  CHECK(lease.id == 77);
  CHECK(lease.ttl == 30);

  std::string end;
  core::AppendRecord(&end, 6, core::RecordType::kLeaseEnd, core::LeaseEndKey(77, core::LeaseEndReason::kExpired), "");
  parsed = core::ParseRecord(end);
  REQUIRE(parsed.outcome == core::ParseOutcome::kOk);
  REQUIRE(core::DecodeLeaseRecord(parsed.record, &lease));
  CHECK(lease.reason == core::LeaseEndReason::kExpired);

  std::string zero_ttl;
  core::AppendRecord(&zero_ttl, 5, core::RecordType::kLeaseGrant, core::LeaseGrantKey(77), core::LeaseTtlValue(0));
  CHECK(core::ParseRecord(zero_ttl).outcome == core::ParseOutcome::kBadChecksum);
  std::string zero_id;
  core::AppendRecord(&zero_id, 5, core::RecordType::kLeaseGrant, core::LeaseGrantKey(0), core::LeaseTtlValue(5));
  CHECK(core::ParseRecord(zero_id).outcome == core::ParseOutcome::kBadChecksum);
}

TEST_CASE("a revoke deletes every key attached to the lease at one revision, in one record, and stays after a restart") {
  TempDir dir;
  uint64_t id = 0;
  {
    OpenStore s(dir.path());
    auto lease = Grant(s.store, 60);
    REQUIRE(lease.has_value());
    id = lease->id;
    CHECK(id != 0);
    CHECK(s.store.revision() == 1);  // the grant took revision 1
    REQUIRE(s.store.Put("a", "1", {}, id).has_value());
    REQUIRE(s.store.Put("b", "1", {}, id).has_value());
    REQUIRE(s.store.Put("moved", "1", {}, id).has_value());
    REQUIRE(s.store.Put("moved", "1").has_value());  // the same value, off the lease: a change
    CHECK(s.store.Get("moved")->revision == 5);
    REQUIRE(s.store.Put("free", "1").has_value());
    CHECK(s.store.Get("a")->meta.lease == id);

    auto ttl = s.store.LeaseTimeToLive(id);
    REQUIRE(ttl.has_value());
    CHECK(ttl->keys == std::vector<std::string>{"a", "b"});
    CHECK(ttl->ttl == 60);
    CHECK(ttl->remaining > 55);

    CHECK(s.store.Put("c", "1", {}, id + 1).error().IsNotFound());
    auto revoked = Revoke(s.store, id);
    REQUIRE(revoked.has_value());
    CHECK(*revoked == 7);
    CHECK_FALSE(s.store.Get("a").has_value());
    CHECK_FALSE(s.store.Get("b").has_value());
    CHECK(s.store.Get("moved").has_value());
    CHECK(s.store.LeaseTimeToLive(id).error().IsNotFound());
    CHECK(Revoke(s.store, id).error().IsNotFound());
    CHECK(s.store.Put("a", "2", {}, id).error().IsNotFound());
    CHECK(s.store.lease_stats().revoked == 1);
    CHECK(s.store.Close().ok());
  }
  const std::vector<std::string> lines = ReplayLines(dir.path());
  REQUIRE(lines.size() == 9);
  CHECK(lines[0] == "1 grant 60");
  CHECK(lines[6] == "7 end 0");
  CHECK(lines[7] == "7 delete a txn=3");
  CHECK(lines[8] == "7 delete b txn=3");

  OpenStore s(dir.path());
  CHECK(s.store.revision() == 7);
  CHECK(s.store.Leases()->empty());
  CHECK_FALSE(s.store.Get("a").has_value());
  CHECK(s.store.Get("moved")->meta.lease == 0);
}

TEST_CASE("a lease id chosen by the caller is granted once while alive, again after its end, and survives a restart") {
  TempDir dir;
  constexpr uint64_t kChosen = (uint64_t{1} << 62) + 7;  // above the ids the store draws
  {
    OpenStore s(dir.path());
    auto lease = Grant(s.store, 60, kChosen);
    REQUIRE(lease.has_value());
    CHECK(lease->id == kChosen);
    CHECK(s.store.revision() == 1);
    auto again = Grant(s.store, 30, kChosen);
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().code() == core::Code::kFailedPrecondition);
    CHECK(again.error().message().find("already exists") != std::string::npos);
    CHECK(s.store.revision() == 1);  // a refused grant takes no revision
    CHECK(Grant(s.store, 60, uint64_t{1} << 63).error().IsInvalidArgument());
    REQUIRE(s.store.Put("k", "v", {}, kChosen).has_value());
    CHECK(s.store.Close().ok());
  }
  OpenStore s(dir.path());
  CHECK(s.store.Get("k")->meta.lease == kChosen);
  CHECK(s.store.LeaseTimeToLive(kChosen)->ttl == 60);
  CHECK(Grant(s.store, 60, kChosen).error().code() == core::Code::kFailedPrecondition);
  REQUIRE(Revoke(s.store, kChosen).has_value());
  CHECK_FALSE(s.store.Get("k").has_value());
  auto regranted = Grant(s.store, 5, kChosen);
  REQUIRE(regranted.has_value());
  CHECK(s.store.LeaseTimeToLive(kChosen)->ttl == 5);
}

TEST_CASE("a lease not kept alive expires with its keys, and a keepalive holds it") {
  TempDir dir;
  OpenStore s(dir.path());
  auto short_lived = Grant(s.store, 1);
  auto kept = Grant(s.store, 1);
  REQUIRE(short_lived.has_value());
  REQUIRE(kept.has_value());
  REQUIRE(s.store.Put("gone", "1", {}, short_lived->id).has_value());
  REQUIRE(s.store.Put("kept", "1", {}, kept->id).has_value());
  auto watcher = s.store.Watch({"", true}, 0, nullptr);
  REQUIRE(watcher.has_value());
  const auto start = std::chrono::steady_clock::now();
  bool gone = false;
  while (std::chrono::steady_clock::now() - start < 2500ms) {
    CHECK(s.store.LeaseKeepAlive(kept->id).has_value());
    if (!s.store.Get("gone").has_value()) gone = true;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(gone);
  CHECK(s.store.Get("kept").has_value());
  CHECK(s.store.lease_stats().expired == 1);
  CHECK(s.store.lease_stats().keepalives >= 10);
  core::Watcher::Batch batch;
  (*watcher)->Poll(1 << 20, &batch);
  REQUIRE(batch.events.size() == 1);
  CHECK(batch.events[0]->type == core::RecordType::kDelete);
  CHECK(batch.events[0]->key == "gone");
  // Left alone, the other goes too.
  CHECK(Within(3000ms, [&] { return !s.store.Get("kept").has_value(); }));
}

TEST_CASE("a restart gives every lease its full TTL again, and compaction keeps the leases alive") {
  TempDir dir;
  uint64_t id = 0;
  {
    OpenStore s(dir.path());
    auto lease = Grant(s.store, 3);
    REQUIRE(lease.has_value());
    id = lease->id;
    REQUIRE(s.store.Put("k", "v", {}, id).has_value());
    auto ended = Grant(s.store, 100);
    REQUIRE(ended.has_value());
    REQUIRE(Revoke(s.store, ended->id).has_value());
    REQUIRE(s.store.Compact().has_value());  // the grant is only in the snapshot now
    std::this_thread::sleep_for(2000ms);    // most of its TTL spent
    CHECK(s.store.Close().ok());
  }
  OpenStore s(dir.path());
  auto ttl = s.store.LeaseTimeToLive(id);
  REQUIRE(ttl.has_value());
  CHECK(ttl->remaining == 3);
  CHECK(ttl->keys == std::vector<std::string>{"k"});
  CHECK(s.store.Leases()->size() == 1);
  std::this_thread::sleep_for(1500ms);
  CHECK(s.store.Get("k").has_value());  // not early: 1.5 s into a fresh 3 s
  CHECK(Within(3000ms, [&] { return !s.store.Get("k").has_value(); }));
}
