// KeyTable (the store's in-memory table) and its SlabAllocator: ordered
// iteration, cursors, overwrites that grow and shrink, erase, reuse of
// freed blocks, and agreement with std::map over a long random run.
#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "lib/core/key_table.h"
#include "lib/core/slab_allocator.h"

namespace {

using kvctl::core::KeyTable;
using kvctl::core::SlabAllocator;

struct Owned {
  std::string key;
  std::string value;
  uint64_t revision = 0;
  bool operator==(const Owned&) const = default;
};

std::vector<Owned> ScanAll(const KeyTable& t, std::string_view from = "", bool exclusive = false,
                           size_t limit = SIZE_MAX) {
  std::vector<Owned> out;
  t.Scan(from, exclusive, [&](const KeyTable::Item& item) {
    if (out.size() == limit) return false;
    out.push_back({std::string(item.key), std::string(item.value), item.revision});
    return true;
  });
  return out;
}

}  // namespace

TEST_CASE("key table finds, replaces and erases keys and reports the sizes it replaced") {
  KeyTable t;
  CHECK(t.size() == 0);
  CHECK_FALSE(t.Find("a").has_value());
  CHECK_FALSE(t.Set("a", "one", 1, {}).has_value());
  CHECK(t.Set("b", "", 2, {}) == std::nullopt);  // an empty value is a value
  auto a = t.Find("a");
  REQUIRE(a.has_value());
  CHECK(a->key == "a");
  CHECK(a->value == "one");
  CHECK(a->revision == 1);
  REQUIRE(t.Find("b").has_value());
  CHECK(t.Find("b")->value.empty());

  CHECK(t.Set("a", "a much longer value than before", 3, {}) == std::optional<size_t>(3));
  CHECK(t.Find("a")->value == "a much longer value than before");
  CHECK(t.Find("a")->revision == 3);
  CHECK(t.Set("a", "x", 4, {}) == std::optional<size_t>(31));  // shrinks
  CHECK(t.Find("a")->value == "x");
  CHECK(t.size() == 2);

  CHECK(t.Erase("a") == std::optional<size_t>(1));
  CHECK(t.Erase("a") == std::nullopt);
  CHECK_FALSE(t.Find("a").has_value());
  CHECK(t.size() == 1);
  t.Clear();
  CHECK(t.size() == 0);
  CHECK(ScanAll(t).empty());
}

TEST_CASE("key table keys are binary-safe and ordered bytewise") {
  KeyTable t;
  const std::string nul("a\0b", 3), high("\xff", 1), big(5000, 'v');  // big: past the slab sizes
  t.Set(high, big, 1, {});
  t.Set(nul, std::string("\0\n", 2), 2, {});
  t.Set("a", "plain", 3, {});
  t.Set(std::string(300, 'k'), "long key: a two-byte length", 4, {});
  auto all = ScanAll(t);
  REQUIRE(all.size() == 4);
  CHECK(all[0].key == "a");
  CHECK(all[1].key == nul);
  CHECK(all[1].value == std::string("\0\n", 2));
  CHECK(all[2].key == std::string(300, 'k'));
  CHECK(all[3].key == high);
  CHECK(all[3].value == big);
  CHECK(t.Set(high, "small again", 5, {}) == std::optional<size_t>(5000));
  CHECK(t.Find(high)->value == "small again");
}

TEST_CASE("key table scans from a key inclusively or past it exclusively, stopping when told") {
  KeyTable t;
  for (std::string k : {"app/1", "app/2", "app/3", "b", "ap"}) t.Set(k, "v" + k, 1, {});
  auto from = ScanAll(t, "app/");
  REQUIRE(from.size() == 4);
  CHECK(from[0].key == "app/1");
  CHECK(ScanAll(t, "app/2", false)[0].key == "app/2");
  CHECK(ScanAll(t, "app/2", true)[0].key == "app/3");
  CHECK(ScanAll(t, "app/3", true).size() == 1);  // only "b"
  CHECK(ScanAll(t, "c").empty());
  CHECK(ScanAll(t, "", false, 2).size() == 2);
}

TEST_CASE("key table agrees with std::map over a long random run of sets and erases") {
  std::mt19937_64 rng(42);
  KeyTable t;
  std::map<std::string, std::pair<std::string, uint64_t>> want;
  auto random_key = [&] { return "k" + std::to_string(rng() % 3000); };
  for (uint64_t rev = 1; rev <= 60000; ++rev) {
    const std::string key = random_key();
    if (rng() % 4 == 0) {
      auto it = want.find(key);
      auto erased = t.Erase(key);
      CHECK(erased.has_value() == (it != want.end()));
      if (it != want.end()) {
        CHECK(*erased == it->second.first.size());
        want.erase(it);
      }
    } else {
      // Value sizes across several slab sizes and past the largest.
      const size_t size = rng() % 5 == 0 ? 1000 + rng() % 1500 : rng() % 200;
      std::string value(size, static_cast<char>('a' + rev % 26));
      auto it = want.find(key);
      auto replaced = t.Set(key, value, rev, {});
      CHECK(replaced.has_value() == (it != want.end()));
      if (it != want.end()) CHECK(*replaced == it->second.first.size());
      want[key] = {value, rev};
    }
    if (rev % 10000 == 0) {
      REQUIRE(t.size() == want.size());
      auto all = ScanAll(t);
      auto w = want.begin();
      for (const Owned& o : all) {
        REQUIRE(w != want.end());
        CHECK(o.key == w->first);
        CHECK(o.value == w->second.first);
        CHECK(o.revision == w->second.second);
        ++w;
      }
      CHECK(w == want.end());
      const std::string probe = random_key();
      auto got = t.Find(probe);
      CHECK(got.has_value() == want.contains(probe));
    }
  }
}

TEST_CASE("key table appends keys that arrive in order and still places later ones") {
  KeyTable t;
  for (int i = 0; i < 5000; i += 2) t.Set("key" + std::to_string(100000 + i), "v", i + 1, {});
  t.Set("key100001", "between", 9000, {});  // not past the last key
  t.Set("a", "first", 9001, {});
  auto all = ScanAll(t);
  REQUIRE(all.size() == 2502);
  CHECK(all[0].key == "a");
  CHECK(all[2].key == "key100001");
  for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].key < all[i].key);
}

TEST_CASE("slab allocator packs blocks at 8-byte steps and reuses freed ones") {
  SlabAllocator slabs;
  CHECK(SlabAllocator::Footprint(126) == 128);
  CHECK(SlabAllocator::Footprint(128) == 128);
  CHECK(SlabAllocator::Footprint(1) == 8);
  CHECK(SlabAllocator::Footprint(5000) == 5000);

  std::set<char*> seen;
  char* prev = nullptr;
  for (int i = 0; i < 100; ++i) {
    auto* p = static_cast<char*>(slabs.Allocate(126));
    CHECK(reinterpret_cast<uintptr_t>(p) % 8 == 0);
    if (prev != nullptr) CHECK(p - prev == 128);  // carved back to back, no header
    std::memset(p, i, 126);
    seen.insert(p);
    prev = p;
  }
  CHECK(slabs.chunk_bytes() == SlabAllocator::kChunkBytes);
  slabs.Free(prev, 126);
  CHECK(slabs.free_bytes() == 128);
  CHECK(slabs.Allocate(121) == prev);  // same footprint: the freed block comes back
  CHECK(slabs.free_bytes() == 0);

  void* big = slabs.Allocate(5000);  // from operator new
  std::memset(big, 1, 5000);
  slabs.Free(big, 5000);

  // Filling past a chunk takes a new one and keeps the old chunk's tail.
  for (size_t i = 0; i < SlabAllocator::kChunkBytes / 1000; ++i) slabs.Allocate(1000);
  CHECK(slabs.chunk_bytes() == 2 * SlabAllocator::kChunkBytes);

  SlabAllocator moved(std::move(slabs));
  CHECK(moved.chunk_bytes() == 2 * SlabAllocator::kChunkBytes);
  CHECK(slabs.chunk_bytes() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty and usable
  CHECK(slabs.Allocate(16) != nullptr);
}
