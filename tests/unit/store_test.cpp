// Store: revisions, idempotence, conditional writes, listing, group commit,
// read-committed visibility, and behaviour when the log fails.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <vector>

#include "lib/core/file_log.h"
#include "lib/core/store.h"
#include "tests/support/fault_fs.h"
#include "tests/support/open_store.h"

namespace {

using namespace kvctl;
using namespace std::chrono_literals;
using kvctl::testing::FaultFs;
using kvctl::testing::TempDir;

using kvctl::testing::OpenStore;
using kvctl::testing::WithSyncInterval;

// Waits (bounded) until `pred` holds; false if it never did.
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

}  // namespace

TEST_CASE("every change takes the next store-wide revision and keys report their last change") {
  TempDir dir;
  OpenStore s(dir.path());
  auto a = s.store.Put("a", "1");
  auto b = s.store.Put("b", "1");
  auto a2 = s.store.Put("a", "2");
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  REQUIRE(a2.has_value());
  CHECK(a->revision == 1);
  CHECK(a->created);
  CHECK(b->revision == 2);
  CHECK(a2->revision == 3);
  CHECK_FALSE(a2->created);
  CHECK(s.store.Get("a")->revision == 3);
  CHECK(s.store.Get("a")->value == "2");
  auto d = s.store.Delete("b");
  REQUIRE(d.has_value());
  CHECK(d->existed);
  CHECK(d->revision == 4);
  CHECK(s.store.Get("b").error().IsNotFound());
  CHECK(s.store.revision() == 4);
}

TEST_CASE("a PUT of the held value and a DELETE of a missing key change nothing and write nothing") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Put("k", "v").has_value());
  const uint64_t appends = s.log->stats().appends;
  const uint64_t bytes = s.log->stats().bytes;

  auto same = s.store.Put("k", "v");
  REQUIRE(same.has_value());
  CHECK(same->revision == 1);
  CHECK_FALSE(same->changed);
  auto missing = s.store.Delete("nope");
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->existed);

  CHECK(s.store.revision() == 1);
  CHECK(s.log->stats().appends == appends);
  CHECK(s.log->stats().bytes == bytes);
  CHECK(s.store.Put("new", "x")->revision == 2);
}

TEST_CASE("conditional writes apply only when their condition holds") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Put("k", "v1").has_value());  // revision 1

  core::Precondition wrong;
  wrong.if_revision = 7;
  CHECK(s.store.Put("k", "v2", wrong).error().IsFailedPrecondition());
  CHECK(s.store.Delete("k", wrong).error().IsFailedPrecondition());
  CHECK(s.store.Get("k")->value == "v1");

  core::Precondition right;
  right.if_revision = 1;
  CHECK(s.store.Put("k", "v2", right)->revision == 2);

  core::Precondition create_only;
  create_only.create_only = true;
  CHECK(s.store.Put("k", "v3", create_only).error().IsFailedPrecondition());
  CHECK(s.store.Put("fresh", "x", create_only)->created);

  core::Precondition absent;
  absent.if_revision = 0;  // revision 0: only if the key does not exist
  CHECK(s.store.Put("k", "v3", absent).error().IsFailedPrecondition());
  CHECK(s.store.Put("other", "x", absent)->created);

  core::Precondition exists;
  exists.must_exist = true;
  CHECK(s.store.Put("ghost", "x", exists).error().IsFailedPrecondition());
  CHECK(s.store.Get("ghost").error().IsNotFound());
  CHECK(s.store.Put("k", "v4", exists).has_value());

  // A failed condition writes nothing.
  CHECK(s.store.revision() == 5);
}

TEST_CASE("listing walks keys in byte order under a prefix with an exclusive cursor") {
  TempDir dir;
  OpenStore s(dir.path());
  for (const char* k : {"a", "a/1", "a/2", "a/3", "a0", "b", "a/\xff"}) REQUIRE(s.store.Put(k, k).has_value());

  core::ListOptions opts;
  opts.prefix = "a/";
  opts.limit = 2;
  std::vector<std::string> keys;
  for (int guard = 0; guard < 10; ++guard) {
    core::ListPage page = s.store.List(opts);
    for (const auto& item : page.items) keys.push_back(item.key);
    if (!page.next) break;
    opts.after = page.next;
  }
  CHECK(keys == std::vector<std::string>{"a/1", "a/2", "a/3", "a/\xff"});

  opts = {};
  opts.keys_only = true;
  core::ListPage all = s.store.List(opts);
  CHECK(all.items.size() == 7);
  CHECK_FALSE(all.next.has_value());
  CHECK(all.items.front().value.empty());
}

TEST_CASE("writers that arrive during a sync share the next one (group commit)") {
  TempDir dir;
  FaultFs fs;
  OpenStore s(dir.path(), &fs);
  const uint64_t batches_before = s.store.stats().commit_batches;

  fs.HoldSyncs();
  auto first = std::async(std::launch::async, [&] { return s.store.Put("first", "1"); });
  REQUIRE(Eventually([&] { return fs.SyncsWaiting() == 1; }));

  // While that sync is held, ten more writers queue up.
  std::vector<std::future<core::Result<core::PutOutcome>>> rest;
  for (int i = 0; i < 10; ++i) {
    rest.push_back(std::async(std::launch::async, [&, i] { return s.store.Put("k" + std::to_string(i), "v"); }));
  }
  REQUIRE(Eventually([&] { return s.store.stats().revision == 0 && fs.SyncsWaiting() == 1; }));
  std::this_thread::sleep_for(50ms);  // let all ten reach the queue; correctness does not depend on it
  fs.ReleaseSyncs();

  REQUIRE(first.get().has_value());
  std::set<uint64_t> revisions;
  for (auto& f : rest) {
    auto r = f.get();
    REQUIRE(r.has_value());
    revisions.insert(r->revision);
  }
  CHECK(revisions.size() == 10);
  // One batch for the first writer, and at most a couple for the other ten.
  const uint64_t batches = s.store.stats().commit_batches - batches_before;
  CHECK(batches < 11);
  CHECK(s.store.stats().committed_changes == 11);
}

TEST_CASE("readers never wait for the log and never see a write before it is durable") {
  TempDir dir;
  FaultFs fs;
  OpenStore s(dir.path(), &fs);
  REQUIRE(s.store.Put("k", "old").has_value());

  fs.HoldSyncs();
  auto writer = std::async(std::launch::async, [&] { return s.store.Put("k", "new"); });
  REQUIRE(Eventually([&] { return fs.SyncsWaiting() == 1; }));

  // The write is stuck in its sync: reads answer at once, with the old value.
  auto read = std::async(std::launch::async, [&] { return s.store.Get("k"); });
  REQUIRE(read.wait_for(5s) == std::future_status::ready);
  CHECK(read.get()->value == "old");
  CHECK(s.store.List({}).items.at(0).value == "old");

  fs.ReleaseSyncs();
  REQUIRE(writer.get().has_value());
  CHECK(s.store.Get("k")->value == "new");
}

TEST_CASE("an answer resting on a change still in flight waits until it is durable") {
  TempDir dir;
  FaultFs fs;
  OpenStore s(dir.path(), &fs);
  fs.HoldSyncs();
  auto put = std::async(std::launch::async, [&] { return s.store.Put("k", "v"); });
  REQUIRE(Eventually([&] { return fs.SyncsWaiting() == 1; }));
  // The same value again is "unchanged", but it must not be acknowledged
  // before the first write is on disk.
  auto again = std::async(std::launch::async, [&] { return s.store.Put("k", "v"); });
  CHECK(again.wait_for(100ms) == std::future_status::timeout);
  fs.ReleaseSyncs();
  REQUIRE(put.get().has_value());
  auto r = again.get();
  REQUIRE(r.has_value());
  CHECK_FALSE(r->changed);
  CHECK(r->revision == 1);
}

TEST_CASE("a failed fsync is never acknowledged, writes are refused after it, reads go on") {
  TempDir dir;
  FaultFs fs;
  OpenStore s(dir.path(), &fs);
  REQUIRE(s.store.Put("kept", "1").has_value());
  fs.FailSyncs(true);

  auto failed = s.store.Put("lost", "2");
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().IsUnavailable());
  CHECK(failed.error().message().find("fdatasync") != std::string::npos);
  CHECK(s.store.Get("lost").error().IsNotFound());

  fs.FailSyncs(false);
  auto later = s.store.Put("later", "3");
  REQUIRE_FALSE(later.has_value());
  CHECK(later.error().IsUnavailable());
  CHECK(s.store.Delete("kept").error().IsUnavailable());
  CHECK_FALSE(s.store.Writable().ok());
  CHECK(s.store.Writable().message().find("fdatasync") != std::string::npos);
  CHECK(s.store.Get("kept")->value == "1");
  CHECK_FALSE(s.store.Close().ok());
}

TEST_CASE("a full disk is never acknowledged, and a restart recovers what was") {
  TempDir dir;
  FaultFs fs;
  {
    OpenStore s(dir.path(), &fs);
    REQUIRE(s.store.Put("kept", "1").has_value());
    fs.FailWritesAfter(5);
    auto r = s.store.Put("big", std::string(1000, 'x'));
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message().find("No space") != std::string::npos);
    CHECK(s.store.Get("big").error().IsNotFound());
  }
  OpenStore again(dir.path());
  CHECK(again.store.Get("kept")->value == "1");
  CHECK(again.store.Get("big").error().IsNotFound());
  CHECK(again.store.Put("next", "n")->revision == 2);
}

TEST_CASE("revisions and data survive a restart") {
  TempDir dir;
  {
    OpenStore s(dir.path());
    for (int i = 0; i < 50; ++i) REQUIRE(s.store.Put("k" + std::to_string(i % 10), std::to_string(i)).has_value());
    REQUIRE(s.store.Delete("k3").has_value());
    REQUIRE(s.store.Close().ok());
  }
  OpenStore s(dir.path());
  CHECK(s.store.revision() == 51);
  CHECK(s.store.Get("k3").error().IsNotFound());
  CHECK(s.store.Get("k9")->value == "49");
  CHECK(s.store.Get("k9")->revision == 50);
  CHECK(s.store.Put("k0", "new")->revision == 52);
}

TEST_CASE("concurrent writers each get distinct revisions and all survive a restart") {
  TempDir dir;
  constexpr int kThreads = 8, kEach = 200;
  {
    OpenStore s(dir.path());
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          if (!s.store.Put("t" + std::to_string(t) + "/" + std::to_string(i), std::to_string(i)).has_value()) ++failures;
        }
      });
    }
    for (auto& th : threads) th.join();
    CHECK(failures == 0);
    CHECK(s.store.revision() == kThreads * kEach);
    CHECK(s.store.stats().keys == kThreads * kEach);
  }
  OpenStore s(dir.path());
  CHECK(s.store.stats().keys == kThreads * kEach);
  CHECK(s.store.Get("t7/199")->value == "199");
}

TEST_CASE("fsync=interval syncs in the background") {
  TempDir dir;
  FaultFs fs;
  OpenStore s(dir.path(), &fs, core::FsyncPolicy::kInterval, 20ms);
  const uint64_t syncs_before = fs.sync_count();
  REQUIRE(s.store.Put("k", "v").has_value());
  CHECK(Eventually([&] { return s.store.stats().interval_syncs > 0; }));
  CHECK(fs.sync_count() > syncs_before);
}

TEST_CASE("writes after Close are refused") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Close().ok());
  CHECK(s.store.Put("k", "v").error().IsUnavailable());
}

namespace {

// Waits (bounded) for an async write's answer.
template <typename T>
T Await(std::future<T>& answer) {
  REQUIRE(answer.wait_for(10s) == std::future_status::ready);
  return answer.get();
}

}  // namespace

TEST_CASE("async writes answer once durable, like their blocking twins, and at once when nothing waits") {
  TempDir dir;
  OpenStore s(dir.path());
  std::promise<core::Result<core::PutOutcome>> put_done;
  auto put_answer = put_done.get_future();
  s.store.PutAsync("a", "1", {}, 0, [&](core::Result<core::PutOutcome> r) { put_done.set_value(std::move(r)); });
  auto put = Await(put_answer);
  REQUIRE(put.has_value());
  CHECK(put->created);
  CHECK(put->revision == 1);
  CHECK(s.store.Get("a")->value == "1");  // durable and visible by the time of the answer

  // A failed condition answers on the calling thread, before PutAsync returns.
  bool answered = false;
  core::Precondition create_only;
  create_only.create_only = true;
  s.store.PutAsync("a", "2", create_only, 0, [&](core::Result<core::PutOutcome> r) {
    answered = true;
    CHECK(r.error().IsFailedPrecondition());
  });
  CHECK(answered);

  std::promise<core::Result<core::DeleteOutcome>> del_done;
  auto del_answer = del_done.get_future();
  s.store.DeleteAsync("a", {}, [&](core::Result<core::DeleteOutcome> r) { del_done.set_value(std::move(r)); });
  auto del = Await(del_answer);
  REQUIRE(del.has_value());
  CHECK(del->existed);
  CHECK(del->revision == 2);
  CHECK(s.store.Get("a").error().IsNotFound());
}

TEST_CASE("an async write whose fsync fails is answered Unavailable, never acknowledged") {
  TempDir dir;
  FaultFs fs;
  OpenStore s(dir.path(), &fs);
  fs.FailSyncs(true);
  std::promise<core::Result<core::PutOutcome>> done;
  auto answer = done.get_future();
  s.store.PutAsync("lost", "x", {}, 0, [&](core::Result<core::PutOutcome> r) { done.set_value(std::move(r)); });
  auto put = Await(answer);
  REQUIRE_FALSE(put.has_value());
  CHECK(put.error().IsUnavailable());
  CHECK(s.store.Get("lost").error().IsNotFound());
  bool refused = false;
  s.store.PutAsync("later", "y", {}, 0, [&](core::Result<core::PutOutcome> r) { refused = r.error().IsUnavailable(); });
  CHECK(refused);
  CHECK_FALSE(s.store.Close().ok());
}
