// RangeAt: what a range held at a past revision, reconstructed from the
// file store's retained history, or refused as compacted; never the
// current data as the past.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "lib/core/range_history.h"
#include "tests/support/fault_fs.h"
#include "tests/support/open_store.h"

namespace {

using namespace kvctl;
using kvctl::testing::OpenStore;
using kvctl::testing::TempDir;

// "key=value@mod/create/version" for each key, in order.
std::vector<std::string> Shown(const core::PastRange& past) {
  std::vector<std::string> out;
  for (const core::ListItem& it : past.items) {
    out.push_back(it.key + "=" + it.value + "@" + std::to_string(it.revision) + "/" +
                  std::to_string(it.meta.create_revision) + "/" + std::to_string(it.meta.version));
  }
  return out;
}

using Keys = std::vector<std::string>;

}  // namespace

TEST_CASE(
    "a past range shows each key's value, deletion and re-creation as of "
    "that revision") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Put("a", "a1").has_value());  // 1
  REQUIRE(s.store.Put("b", "b1").has_value());  // 2
  REQUIRE(s.store.Put("a", "a2").has_value());  // 3
  REQUIRE(s.store.Delete("b").has_value());     // 4
  REQUIRE(s.store.Put("b", "b2").has_value());  // 5
  REQUIRE(s.store.Put("c", "c1").has_value());  // 6
  const core::KeyRange all{"a", "z"};

  auto at = [&](const core::KeyRange& range, uint64_t revision) {
    auto past = core::RangeAt(s.store, range, revision, false);
    REQUIRE(past.has_value());
    CHECK(past->read_revision == 6);
    return Shown(*past);
  };
  CHECK(at(all, 0) == Keys{});
  CHECK(at(all, 1) == Keys{"a=a1@1/1/1"});
  CHECK(at(all, 2) == Keys{"a=a1@1/1/1", "b=b1@2/2/1"});
  CHECK(at(all, 3) == Keys{"a=a2@3/1/2", "b=b1@2/2/1"});
  CHECK(at(all, 4) == Keys{"a=a2@3/1/2"});
  CHECK(at(all, 5) == Keys{"a=a2@3/1/2", "b=b2@5/5/1"});
  CHECK(at(all, 6) == Keys{"a=a2@3/1/2", "b=b2@5/5/1", "c=c1@6/6/1"});
  // One key, a range whose common prefix covers keys outside it, and
  // "\0" (every key from `key` on).
  CHECK(at({"b", ""}, 2) == Keys{"b=b1@2/2/1"});
  CHECK(at({"b", ""}, 4) == Keys{});
  CHECK(at({"b", "c"}, 3) == Keys{"b=b1@2/2/1"});
  CHECK(at({"b", std::string(1, '\0')}, 6) == Keys{"b=b2@5/5/1", "c=c1@6/6/1"});
  CHECK(at({"b", std::string(1, '\0')}, 2) == Keys{"b=b1@2/2/1"});

  auto keys_only = core::RangeAt(s.store, all, 2, true);
  REQUIRE(keys_only.has_value());
  CHECK(Shown(*keys_only) == Keys{"a=@1/1/1", "b=@2/2/1"});

  auto future = core::RangeAt(s.store, all, 7, false);
  REQUIRE_FALSE(future.has_value());
  CHECK(future.error().IsInvalidArgument());
}

TEST_CASE(
    "a past range whose state is older than the retained history is "
    "refused as compacted") {
  TempDir dir;
  OpenStore s(dir.path());
  REQUIRE(s.store.Put("a", "a1").has_value());  // 1
  REQUIRE(s.store.Put("b", "b1").has_value());  // 2
  REQUIRE(s.store.Compact().has_value());       // no history is retained: the floor is 3
  REQUIRE(s.store.HistoryFloor() == 3);
  REQUIRE(s.store.Put("a", "a2").has_value());  // 3
  REQUIRE(s.store.Put("c", "c1").has_value());  // 4

  // a's value at 2 is only in the snapshot, not in any event: refused.
  auto changed = core::RangeAt(s.store, {"a", ""}, 2, false);
  REQUIRE_FALSE(changed.has_value());
  CHECK(changed.error().IsCompacted());
  auto in_range = core::RangeAt(s.store, {"a", "z"}, 3, false);
  REQUIRE(in_range.has_value());  // a's event at 3 is retained; c did not exist yet
  CHECK(Shown(*in_range) == Keys{"a=a2@3/1/2", "b=b1@2/2/1"});
  // b did not change since: its value now is its value then.
  auto unchanged = core::RangeAt(s.store, {"b", ""}, 2, false);
  REQUIRE(unchanged.has_value());
  CHECK(Shown(*unchanged) == Keys{"b=b1@2/2/1"});
  // c was created after 2: absent then, whatever came before the history.
  auto created = core::RangeAt(s.store, {"c", ""}, 2, false);
  REQUIRE(created.has_value());
  CHECK(created->items.empty());
}

TEST_CASE("a past range is reconstructed from the log after a restart") {
  TempDir dir;
  {
    OpenStore s(dir.path());
    REQUIRE(s.store.Put("k", "1").has_value());  // 1
    REQUIRE(s.store.Put("k", "2").has_value());  // 2
    REQUIRE(s.store.Delete("k").has_value());    // 3
    REQUIRE(s.store.Close().ok());
  }
  OpenStore s(dir.path());
  auto past = core::RangeAt(s.store, {"k", ""}, 1, false);
  REQUIRE(past.has_value());
  CHECK(Shown(*past) == Keys{"k=1@1/1/1"});
  auto now = core::RangeAt(s.store, {"k", ""}, 3, false);
  REQUIRE(now.has_value());
  CHECK(now->items.empty());
}
