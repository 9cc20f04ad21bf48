// Tests for lib/core/log_reader.h: ScanSegment over whole segments, and how
// it tells a torn tail (nothing valid after the damage) from corruption.
#include "lib/core/log_reader.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace kvctl::core {
namespace {

TEST_SUITE_BEGIN("log_reader");

struct Rec {
  uint64_t revision;
  RecordType type;
  std::string key;
  std::string value;
};

// A segment file: header, then the records; `offsets` gets where each starts.
std::string Segment(const std::vector<Rec>& recs, std::vector<size_t>* offsets = nullptr) {
  std::string out;
  AppendSegmentHeader(&out);
  for (const Rec& r : recs) {
    if (offsets != nullptr) offsets->push_back(out.size());
    AppendRecord(&out, r.revision, r.type, r.key, r.value);
  }
  return out;
}

std::vector<Rec> SomeRecords(uint64_t first_revision, int n) {
  std::vector<Rec> recs;
  for (int i = 0; i < n; ++i) {
    const uint64_t rev = first_revision + static_cast<uint64_t>(i);
    if (i % 4 == 3) {
      recs.push_back({rev, RecordType::kDelete, "key" + std::to_string(i - 1), ""});
    } else {
      recs.push_back({rev, RecordType::kPut, "key" + std::to_string(i),
                      std::string(static_cast<size_t>(i * 7), static_cast<char>('a' + i))});
    }
  }
  return recs;
}

// Scans `bytes`, keeping a copy of every record handed over.
struct Collected {
  std::vector<Rec> records;
  Result<SegmentScan> scan = Status::Corruption("not scanned");
};

Collected Scan(std::string_view bytes, uint64_t first_revision = 1) {
  Collected c;
  c.scan = ScanSegment(bytes, first_revision, [&](const LogRecord& r) {
    c.records.push_back({r.revision, r.type, std::string(r.key), std::string(r.value)});
    return Status::Ok();
  });
  return c;
}

void CheckSameRecords(const std::vector<Rec>& got, const std::vector<Rec>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].revision == want[i].revision);
    CHECK(got[i].type == want[i].type);
    CHECK(got[i].key == want[i].key);
    CHECK(got[i].value == want[i].value);
  }
}

TEST_CASE("a clean segment yields every record in order and all its bytes are valid") {
  const std::vector<Rec> recs = SomeRecords(1, 10);
  const std::string seg = Segment(recs);
  Collected c = Scan(seg);
  REQUIRE(c.scan.has_value());
  CheckSameRecords(c.records, recs);
  CHECK(c.scan->records == recs.size());
  CHECK(c.scan->valid_bytes == seg.size());
  CHECK(c.scan->last_revision == 10);
  CHECK_FALSE(c.scan->damage.found);
  CHECK_FALSE(c.scan->damage.valid_record_after);
}

TEST_CASE("a segment holding only its header is clean and empty") {
  const std::string seg = Segment({});
  Collected c = Scan(seg, 42);
  REQUIRE(c.scan.has_value());
  CHECK(c.records.empty());
  CHECK(c.scan->records == 0);
  CHECK(c.scan->valid_bytes == kSegmentHeaderSize);
  CHECK(c.scan->last_revision == 41);  // nothing read: the one before its first
  CHECK_FALSE(c.scan->damage.found);
}

TEST_CASE("the records chain from the segment's first revision, one revision each") {
  const std::vector<Rec> recs = SomeRecords(6, 3);
  Collected c = Scan(Segment(recs), 6);
  REQUIRE(c.scan.has_value());
  CheckSameRecords(c.records, recs);
  CHECK_FALSE(c.scan->damage.found);
  CHECK(c.scan->last_revision == 8);
}

TEST_CASE("a first record other than the segment's name is damage that is never a torn write") {
  std::vector<size_t> offsets;
  const std::string seg = Segment(SomeRecords(7, 3), &offsets);
  Collected c = Scan(seg, 6);
  REQUIRE(c.scan.has_value());
  CHECK(c.records.empty());
  CHECK(c.scan->damage.found);
  CHECK(c.scan->damage.offset == offsets[0]);
  CHECK(c.scan->damage.valid_record_after);
  CHECK(c.scan->damage.reason.find("named for revision 6") != std::string::npos);
}

TEST_CASE("a revision skipped inside a segment is damage naming the missing revisions") {
  const std::vector<Rec> recs = {{6, RecordType::kPut, "a", "1"},
                                 {7, RecordType::kPut, "b", "2"},
                                 {10, RecordType::kDelete, "a", ""},
                                 {11, RecordType::kPut, "c", "3"}};
  std::vector<size_t> offsets;
  Collected c = Scan(Segment(recs, &offsets), 6);
  REQUIRE(c.scan.has_value());
  CheckSameRecords(c.records, {recs[0], recs[1]});
  CHECK(c.scan->last_revision == 7);
  CHECK(c.scan->damage.found);
  CHECK(c.scan->damage.offset == offsets[2]);
  CHECK(c.scan->damage.valid_record_after);  // the record itself is sound: never a torn tail
  CHECK(c.scan->damage.reason.find("revisions 8 to 9 are missing") != std::string::npos);
}

TEST_CASE("a record cut off at the end is damage with no valid record after it") {
  const std::vector<Rec> recs = SomeRecords(1, 5);
  std::vector<size_t> offsets;
  const std::string whole = Segment(recs, &offsets);
  const size_t last = offsets.back();
  // Every cut inside the last record, from one byte of it to all but one.
  for (size_t len = last + 1; len < whole.size(); ++len) {
    CAPTURE(len);
    Collected c = Scan(std::string_view(whole).substr(0, len));
    REQUIRE(c.scan.has_value());
    CheckSameRecords(c.records, std::vector<Rec>(recs.begin(), recs.end() - 1));
    CHECK(c.scan->records == recs.size() - 1);
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == last);
    CHECK_FALSE(c.scan->damage.reason.empty());
    CHECK_FALSE(c.scan->damage.valid_record_after);
    CHECK(c.scan->valid_bytes == last);
    CHECK(c.scan->last_revision == recs[recs.size() - 2].revision);
  }
}

TEST_CASE("zeros after the last record end the segment cleanly: they are preallocated space") {
  const std::string clean = Segment(SomeRecords(1, 3));
  for (size_t n : {size_t{1}, size_t{7}, size_t{23}, size_t{24}, size_t{32}, size_t{100}, size_t{4096}}) {
    CAPTURE(n);
    Collected c = Scan(clean + std::string(n, '\0'));
    REQUIRE(c.scan.has_value());
    CHECK(c.records.size() == 3);
    CHECK_FALSE(c.scan->damage.found);
    CHECK(c.scan->valid_bytes == clean.size());
    CHECK(c.scan->zero_tail_bytes == n);
  }
  // A header and zeros: no record yet.
  Collected empty = Scan(Segment({}) + std::string(1 << 20, '\0'));
  REQUIRE(empty.scan.has_value());
  CHECK_FALSE(empty.scan->damage.found);
  CHECK(empty.scan->valid_bytes == core::kSegmentHeaderSize);
  CHECK(empty.scan->zero_tail_bytes == 1 << 20);
}

TEST_CASE("a record ending in zero bytes before the zero tail is read whole") {
  // Search for a record whose checksum ends in a zero byte: then its last
  // byte is part of the run of zeros at the end of the file.
  std::vector<Rec> recs;
  std::string seg;
  for (uint64_t rev = 1;; ++rev) {
    recs.push_back(Rec{rev, core::RecordType::kPut, "k" + std::to_string(rev), "v"});
    seg = Segment(recs);
    if (seg.back() == '\0') break;
    recs.clear();
  }
  Collected c = Scan(seg + std::string(64, '\0'), recs[0].revision);
  REQUIRE(c.scan.has_value());
  CHECK(c.records.size() == 1);
  CHECK_FALSE(c.scan->damage.found);
  CHECK(c.scan->valid_bytes == seg.size());
  CHECK(c.scan->zero_tail_bytes == 64);
}

TEST_CASE("a torn record followed by preallocated zeros is damage with no valid record after") {
  const std::vector<Rec> recs = SomeRecords(1, 4);
  const std::string whole = Segment(recs);
  const size_t last = Segment(std::vector<Rec>(recs.begin(), recs.end() - 1)).size();
  for (size_t keep : {size_t{4}, size_t{20}, size_t{30}}) {
    CAPTURE(keep);
    // Only the first `keep` bytes of the last record reached the disk.
    std::string torn = whole.substr(0, last + keep) + std::string(whole.size() - last - keep + 4096, '\0');
    Collected c = Scan(torn);
    REQUIRE(c.scan.has_value());
    CHECK(c.records.size() == 3);
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == last);
    CHECK_FALSE(c.scan->damage.valid_record_after);
  }
}

TEST_CASE("zeros with a valid record after them are corruption, not preallocated space") {
  const std::vector<Rec> recs = SomeRecords(1, 4);
  const std::string whole = Segment(recs);
  const size_t second = Segment(std::vector<Rec>(recs.begin(), recs.begin() + 1)).size();
  const size_t third = Segment(std::vector<Rec>(recs.begin(), recs.begin() + 2)).size();
  std::string holed = whole;
  std::fill(holed.begin() + static_cast<std::ptrdiff_t>(second), holed.begin() + static_cast<std::ptrdiff_t>(third), '\0');
  Collected c = Scan(holed);
  REQUIRE(c.scan.has_value());
  CHECK(c.records.size() == 1);
  CHECK(c.scan->damage.found);
  CHECK(c.scan->damage.offset == second);
  CHECK(c.scan->damage.valid_record_after);
}

TEST_CASE("random garbage appended after the records is damage with no valid record after") {
  const std::string clean = Segment(SomeRecords(1, 3));
  std::mt19937 rng(20240601);
  for (size_t n : {size_t{1}, size_t{5}, size_t{24}, size_t{31}, size_t{64}, size_t{1000}}) {
    std::string garbage(n, '\0');
    for (char& ch : garbage) ch = static_cast<char>(rng() & 0xff);
    CAPTURE(n);
    Collected c = Scan(clean + garbage);
    REQUIRE(c.scan.has_value());
    CHECK(c.records.size() == 3);
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == clean.size());
    CHECK_FALSE(c.scan->damage.valid_record_after);
    CHECK(c.scan->valid_bytes == clean.size());
  }
}

TEST_CASE("a corrupted record followed by good records has a valid record after it") {
  const std::vector<Rec> recs = SomeRecords(1, 6);
  std::vector<size_t> offsets;
  const std::string clean = Segment(recs, &offsets);

  // Damage in the value (record check fails), in the key length (header
  // check fails), and in the header check itself.
  struct Where {
    const char* what;
    size_t at;
  };
  for (Where w : {Where{"value byte", offsets[2] + kRecordHeaderSize + recs[2].key.size()},
                  Where{"key length", offsets[2] + 4}, Where{"header check", offsets[2]},
                  Where{"record check", offsets[3] - 1}}) {
    CAPTURE(w.what);
    std::string bad = clean;
    bad[w.at] = static_cast<char>(bad[w.at] ^ 0x01);
    Collected c = Scan(bad);
    REQUIRE(c.scan.has_value());
    CheckSameRecords(c.records, std::vector<Rec>(recs.begin(), recs.begin() + 2));
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == offsets[2]);
    CHECK_FALSE(c.scan->damage.reason.empty());
    CHECK(c.scan->damage.valid_record_after);
    CHECK(c.scan->valid_bytes == offsets[2]);
    CHECK(c.scan->records == 2);
    CHECK(c.scan->last_revision == recs[1].revision);
  }
}

TEST_CASE("a corrupted last record with nothing after it has no valid record after") {
  const std::vector<Rec> recs = SomeRecords(1, 4);
  std::vector<size_t> offsets;
  std::string bad = Segment(recs, &offsets);
  bad[bad.size() - 3] = static_cast<char>(bad[bad.size() - 3] ^ 0x80);
  Collected c = Scan(bad);
  REQUIRE(c.scan.has_value());
  CHECK(c.records.size() == 3);
  CHECK(c.scan->damage.found);
  CHECK(c.scan->damage.offset == offsets[3]);
  CHECK_FALSE(c.scan->damage.valid_record_after);
  CHECK(c.scan->valid_bytes == offsets[3]);
}

TEST_CASE("a revision that does not increase is damage") {
  SUBCASE("repeated") {
    std::vector<size_t> offsets;
    const std::string seg = Segment({{1, RecordType::kPut, "a", "1"},
                                     {2, RecordType::kPut, "b", "2"},
                                     {2, RecordType::kPut, "c", "3"},
                                     {3, RecordType::kPut, "d", "4"}},
                                    &offsets);
    Collected c = Scan(seg);
    REQUIRE(c.scan.has_value());
    CHECK(c.records.size() == 2);
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == offsets[2]);
    CHECK(c.scan->valid_bytes == offsets[2]);
    CHECK(c.scan->last_revision == 2);
  }
  SUBCASE("going back") {
    std::vector<size_t> offsets;
    const std::string seg = Segment({{5, RecordType::kPut, "a", "1"}, {4, RecordType::kPut, "b", "2"}},
                                    &offsets);
    Collected c = Scan(seg, 5);
    REQUIRE(c.scan.has_value());
    CHECK(c.records.size() == 1);
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == offsets[1]);
    CHECK(c.scan->valid_bytes == offsets[1]);
  }
  SUBCASE("not above the previous segment's last revision") {
    for (uint64_t first : {uint64_t{5}, uint64_t{3}}) {
      CAPTURE(first);
      const std::string seg = Segment({{first, RecordType::kPut, "a", "1"},
                                       {first + 1, RecordType::kPut, "b", "2"}});
      Collected c = Scan(seg, 6);
      REQUIRE(c.scan.has_value());
      CHECK(c.records.empty());
      CHECK(c.scan->damage.found);
      CHECK(c.scan->damage.offset == kSegmentHeaderSize);
      CHECK(c.scan->valid_bytes == kSegmentHeaderSize);
      CHECK(c.scan->records == 0);
    }
  }
}

TEST_CASE("a bad segment header is damage at offset 0 and no record is read") {
  const std::string good = Segment(SomeRecords(1, 3));
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  std::string bad_version = good;
  bad_version[8] = 4;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bad magic", bad_magic},
      {"unknown version", bad_version},
      {"short", good.substr(0, kSegmentHeaderSize - 1)},
      {"empty", ""},
  };
  for (const auto& [what, bytes] : cases) {
    CAPTURE(what);
    Collected c = Scan(bytes);
    REQUIRE(c.scan.has_value());
    CHECK(c.records.empty());
    CHECK(c.scan->records == 0);
    CHECK(c.scan->damage.found);
    CHECK(c.scan->damage.offset == 0);
    CHECK_FALSE(c.scan->damage.reason.empty());
    CHECK(c.scan->valid_bytes == 0);
  }
}

TEST_CASE("an error returned by on_record stops the scan and is returned") {
  const std::string seg = Segment(SomeRecords(1, 5));
  int calls = 0;
  Result<SegmentScan> scan = ScanSegment(seg, 1, [&](const LogRecord& r) {
    ++calls;
    if (r.revision == 2) return Status::IOError("sink is full");
    return Status::Ok();
  });
  REQUIRE_FALSE(scan.has_value());
  CHECK(scan.error().IsIOError());
  CHECK(scan.error().message() == "sink is full");
  CHECK(calls == 2);
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::core
