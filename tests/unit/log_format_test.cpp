// Tests for lib/core/log_format.h: the record and segment header encodings
// and segment file names, checked against the format the header documents.
#include "lib/core/log_format.h"

#include <doctest/doctest.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvctl::core {
namespace {

TEST_SUITE_BEGIN("log_format");

std::string Encode(uint64_t revision, RecordType type, std::string_view key, std::string_view value) {
  std::string out;
  AppendRecord(&out, revision, type, key, value);
  return out;
}

uint32_t ReadU32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
  return v;
}

uint64_t ReadU64(std::string_view b, size_t at) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + static_cast<size_t>(i)]);
  return v;
}

void WriteU32(std::string* b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) (*b)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

void WriteU64(std::string* b, size_t at, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) (*b)[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Builds a record byte by byte from the documented layout, with both checks
// valid, so that header fields the writer would never produce can be tried.
std::string Forge(uint32_t key_len, uint32_t value_len, uint8_t type, std::string_view reserved,
                  uint64_t revision, std::string_view key, std::string_view value) {
  std::string b(kRecordHeaderSize, '\0');
  WriteU32(&b, 4, key_len);
  WriteU32(&b, 8, value_len);
  b[12] = static_cast<char>(type);
  for (size_t i = 0; i < 3; ++i) b[13 + i] = reserved[i];
  WriteU64(&b, 16, revision);
  WriteU32(&b, 0, static_cast<uint32_t>(XXH3_64bits(b.data() + 4, kRecordHeaderSize - 4)));
  b.append(key);
  b.append(value);
  const size_t body = b.size();
  b.append(8, '\0');
  WriteU64(&b, body, XXH3_64bits(b.data(), body));
  return b;
}

TEST_CASE("a PUT record round-trips its revision, type, key and value bytes") {
  struct Case {
    std::string name;
    uint64_t revision;
    std::string key;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"plain", 1, "k", "v"},
      {"NUL bytes", 7, std::string("a\0b", 3), std::string("\0\0x\0", 4)},
      {"0xff bytes", 8, "\xff\xfe", "\xff\xff\xff"},
      {"newlines", 9, "line\nkey", "one\ntwo\r\n"},
      {"empty value", 10, "empty", ""},
      {"64 KiB value", 11, "big", std::string(64 * 1024, '\xa5')},
      {"largest revision", UINT64_MAX, "max", "m"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const std::string bytes = Encode(c.revision, RecordType::kPut, c.key, c.value);
    const ParsedRecord parsed = ParseRecord(bytes);
    REQUIRE(parsed.outcome == ParseOutcome::kOk);
    CHECK(parsed.size == bytes.size());
    CHECK(parsed.record.revision == c.revision);
    CHECK(parsed.record.type == RecordType::kPut);
    CHECK(parsed.record.key == c.key);
    CHECK(parsed.record.value == c.value);
  }
}

TEST_CASE("a DELETE record round-trips with an empty value") {
  const std::string bytes = Encode(42, RecordType::kDelete, "gone", "");
  const ParsedRecord parsed = ParseRecord(bytes);
  REQUIRE(parsed.outcome == ParseOutcome::kOk);
  CHECK(parsed.record.revision == 42);
  CHECK(parsed.record.type == RecordType::kDelete);
  CHECK(parsed.record.key == "gone");
  CHECK(parsed.record.value.empty());
  CHECK(parsed.size == bytes.size());
}

TEST_CASE("the parsed key and value point into the parsed buffer") {
  const std::string bytes = Encode(3, RecordType::kPut, "key", "value");
  const ParsedRecord parsed = ParseRecord(bytes);
  REQUIRE(parsed.outcome == ParseOutcome::kOk);
  CHECK(parsed.record.key.data() == bytes.data() + kRecordHeaderSize);
  CHECK(parsed.record.value.data() == bytes.data() + kRecordHeaderSize + 3);
}

TEST_CASE("a record is encoded exactly as the format comment lays it out") {
  const std::string key = "key";
  const std::string value = "value!";
  const std::string b = Encode(0x0102030405060708ull, RecordType::kPut, key, value);
  REQUIRE(b.size() == 32 + key.size() + value.size());
  CHECK(ReadU32(b, 0) == static_cast<uint32_t>(XXH3_64bits(b.data() + 4, 20)));
  CHECK(ReadU32(b, 4) == key.size());
  CHECK(ReadU32(b, 8) == value.size());
  CHECK(static_cast<uint8_t>(b[12]) == 1);
  CHECK(b.substr(13, 3) == std::string(3, '\0'));
  CHECK(ReadU64(b, 16) == 0x0102030405060708ull);
  CHECK(static_cast<uint8_t>(b[16]) == 0x08);  // little-endian: low byte first
  CHECK(b.substr(24, key.size()) == key);
  CHECK(b.substr(24 + key.size(), value.size()) == value);
  const size_t body = 24 + key.size() + value.size();
  CHECK(ReadU64(b, body) == XXH3_64bits(b.data(), body));

  const std::string d = Encode(5, RecordType::kDelete, "k", "");
  CHECK(static_cast<uint8_t>(d[12]) == 2);
}

TEST_CASE("AppendRecord appends after what the buffer already holds") {
  std::string buf = "prefix";
  AppendRecord(&buf, 1, RecordType::kPut, "a", "1");
  AppendRecord(&buf, 2, RecordType::kPut, "bb", "22");
  CHECK(buf.substr(0, 6) == "prefix");
  const ParsedRecord first = ParseRecord(std::string_view(buf).substr(6));
  REQUIRE(first.outcome == ParseOutcome::kOk);
  CHECK(first.record.key == "a");
  const ParsedRecord second = ParseRecord(std::string_view(buf).substr(6 + first.size));
  REQUIRE(second.outcome == ParseOutcome::kOk);
  CHECK(second.record.revision == 2);
  CHECK(second.record.key == "bb");
  CHECK(6 + first.size + second.size == buf.size());
}

TEST_CASE("EncodedRecordSize matches the bytes AppendRecord writes") {
  CHECK(kRecordOverhead == 32);
  for (size_t k : {size_t{1}, size_t{2}, size_t{17}, size_t{1024}}) {
    for (size_t v : {size_t{0}, size_t{1}, size_t{255}, size_t{65536}}) {
      CAPTURE(k);
      CAPTURE(v);
      const std::string bytes = Encode(1, RecordType::kPut, std::string(k, 'k'), std::string(v, 'v'));
      CHECK(EncodedRecordSize(k, v) == bytes.size());
      CHECK(EncodedRecordSize(k, v) == 32 + k + v);
    }
  }
}

TEST_CASE("a flipped bit at every byte offset of a record makes it fail its checks") {
  const std::vector<std::string> records = {
      Encode(123456789, RecordType::kPut, "some/key", std::string("val\0ue\xff", 7)),
      Encode(2, RecordType::kDelete, "k", ""),
      Encode(3, RecordType::kPut, "e", ""),
  };
  for (const std::string& good : records) {
    REQUIRE(ParseRecord(good).outcome == ParseOutcome::kOk);
    for (size_t at = 0; at < good.size(); ++at) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string bad = good;
        bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
        const ParsedRecord parsed = ParseRecord(bad);
        CAPTURE(at);
        CAPTURE(bit);
        CHECK(parsed.outcome != ParseOutcome::kOk);
        // A damaged header is never taken for a record cut off at the end.
        if (at < kRecordHeaderSize) CHECK(parsed.outcome == ParseOutcome::kBadHeader);
        if (at >= kRecordHeaderSize) CHECK(parsed.outcome == ParseOutcome::kBadChecksum);
      }
    }
  }
}

TEST_CASE("a record cut at every shorter length is truncated, never ok") {
  const std::string good = Encode(9, RecordType::kPut, "key", "a value of some length");
  for (size_t len = 0; len < good.size(); ++len) {
    CAPTURE(len);
    const ParsedRecord parsed = ParseRecord(std::string_view(good).substr(0, len));
    CHECK(parsed.outcome != ParseOutcome::kOk);
    // Short of a header, or a whole, sound header whose record runs past the end.
    CHECK(parsed.outcome == ParseOutcome::kTruncated);
    if (len >= kRecordHeaderSize) CHECK(parsed.size == good.size());
  }
}

TEST_CASE("bytes after a whole record do not change how it parses") {
  const std::string good = Encode(4, RecordType::kPut, "k", "v");
  const ParsedRecord parsed = ParseRecord(good + std::string(100, '\0'));
  REQUIRE(parsed.outcome == ParseOutcome::kOk);
  CHECK(parsed.size == good.size());
  CHECK(parsed.record.value == "v");
}

TEST_CASE("a header with a valid check but invalid fields is a bad header") {
  const std::string zeros(3, '\0');
  // The forging helper itself makes parseable records.
  REQUIRE(ParseRecord(Forge(1, 1, 1, zeros, 5, "k", "v")).outcome == ParseOutcome::kOk);
  REQUIRE(ParseRecord(Forge(1, 0, 2, zeros, 5, "k", "")).outcome == ParseOutcome::kOk);

  SUBCASE("unknown type 0") { CHECK(ParseRecord(Forge(1, 1, 0, zeros, 5, "k", "v")).outcome == ParseOutcome::kBadHeader); }
  SUBCASE("unknown type 3") { CHECK(ParseRecord(Forge(1, 1, 3, zeros, 5, "k", "v")).outcome == ParseOutcome::kBadHeader); }
  SUBCASE("reserved bytes not zero") {
    CHECK(ParseRecord(Forge(1, 1, 1, std::string("\0\0\1", 3), 5, "k", "v")).outcome ==
          ParseOutcome::kBadHeader);
    CHECK(ParseRecord(Forge(1, 1, 1, std::string("\0\1\0", 3), 5, "k", "v")).outcome ==
          ParseOutcome::kBadHeader);
  }
  SUBCASE("metadata on a delete, or longer than three varints can be") {
    CHECK(ParseRecord(Forge(1, 0, 2, std::string("\3\0\0", 3), 5, "k", "")).outcome ==
          ParseOutcome::kBadHeader);
    CHECK(ParseRecord(Forge(1, 1, 1, std::string("\x1f\0\0", 3), 5, "k", "v")).outcome ==
          ParseOutcome::kBadHeader);
  }
  SUBCASE("empty key") { CHECK(ParseRecord(Forge(0, 1, 1, zeros, 5, "", "v")).outcome == ParseOutcome::kBadHeader); }
  SUBCASE("delete with a value") {
    CHECK(ParseRecord(Forge(1, 1, 2, zeros, 5, "k", "v")).outcome == ParseOutcome::kBadHeader);
  }
}

TEST_CASE("a good segment header passes its check") {
  std::string header;
  AppendSegmentHeader(&header);
  REQUIRE(header.size() == kSegmentHeaderSize);
  CHECK(header.substr(0, 8) == "KVCTLLOG");
  CHECK(ReadU32(header, 8) == kFormatVersion);
  CHECK(ReadU32(header, 12) == 0);
  CHECK(CheckSegmentHeader(header).empty());
  // Records after the header do not matter to the header check.
  AppendRecord(&header, 1, RecordType::kPut, "k", "v");
  CHECK(CheckSegmentHeader(header).empty());
}

TEST_CASE("a segment header with bad magic, an unknown version or too few bytes fails its check") {
  std::string good;
  AppendSegmentHeader(&good);

  SUBCASE("bad magic") {
    for (size_t at = 0; at < kSegmentMagic.size(); ++at) {
      std::string bad = good;
      bad[at] = static_cast<char>(bad[at] ^ 0x20);
      CAPTURE(at);
      CHECK_FALSE(CheckSegmentHeader(bad).empty());
    }
  }
  SUBCASE("unknown version") {
    for (uint32_t version : {0u, 4u, 0x01000000u}) {
      std::string bad = good;
      WriteU32(&bad, 8, version);
      CAPTURE(version);
      const std::string why = CheckSegmentHeader(bad);
      CHECK_FALSE(why.empty());
      CHECK(why.find("version") != std::string::npos);
    }
  }
  SUBCASE("short") {
    for (size_t len = 0; len < kSegmentHeaderSize; ++len) {
      CAPTURE(len);
      CHECK_FALSE(CheckSegmentHeader(std::string_view(good).substr(0, len)).empty());
    }
  }
}

TEST_CASE("segment file names are 20 digits and parse back to the revision") {
  CHECK(SegmentFileName(1) == "00000000000000000001.log");
  CHECK(SegmentFileName(4097) == "00000000000000004097.log");
  CHECK(SegmentFileName(0) == "00000000000000000000.log");
  CHECK(SegmentFileName(UINT64_MAX) == "18446744073709551615.log");
  for (uint64_t rev : {uint64_t{0}, uint64_t{1}, uint64_t{9}, uint64_t{10}, uint64_t{4097},
                       uint64_t{1} << 40, UINT64_MAX - 1, UINT64_MAX}) {
    CAPTURE(rev);
    const std::string name = SegmentFileName(rev);
    CHECK(name.size() == 24);
    uint64_t back = 12345;
    REQUIRE(ParseSegmentFileName(name, &back));
    CHECK(back == rev);
  }
}

TEST_CASE("names that are not segment names are rejected") {
  const std::vector<std::string> bad = {
      "",
      "1.log",
      "0000000000000000000a.log",
      "000000000000000000001.log",  // 21 digits
      "0000000000000000001.log",    // 19 digits
      "00000000000000000001",       // no suffix
      "00000000000000000001.lo",
      "00000000000000000001.LOG",
      "00000000000000000001.txt",
      "00000000000000000001.log.broken-16-1700000000",
      "0000000000000000001.logx",
      "-0000000000000000001.log",
      " 0000000000000000001.log",
      "18446744073709551616.log",  // UINT64_MAX + 1
      "99999999999999999999.log",
      "LOCK",
  };
  for (const std::string& name : bad) {
    CAPTURE(name);
    uint64_t rev = 777;
    CHECK_FALSE(ParseSegmentFileName(name, &rev));
    CHECK(rev == 777);  // untouched on failure
  }
}

TEST_CASE("sorting segment names lexically sorts them by revision") {
  std::vector<uint64_t> revs = {10, 9, 1, 100, 4097, 99, 1000000, UINT64_MAX, 0, 11, 101, 1ull << 63};
  std::vector<std::string> names;
  for (uint64_t r : revs) names.push_back(SegmentFileName(r));
  std::sort(revs.begin(), revs.end());
  std::sort(names.begin(), names.end());
  REQUIRE(names.size() == revs.size());
  for (size_t i = 0; i < names.size(); ++i) {
    uint64_t parsed = 0;
    REQUIRE(ParseSegmentFileName(names[i], &parsed));
    CHECK(parsed == revs[i]);
  }
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::core

namespace kvctl::core {
namespace {

TEST_CASE("a PUT record carries the key's metadata, a DELETE none") {
  const KeyMeta meta{3, 7, 1ull << 40};
  std::string bytes;
  AppendRecord(&bytes, 9, RecordType::kPut, "key", "value", &meta);
  CHECK(bytes.size() == EncodedRecordSize(3, 5) + EncodedMetaSize(meta));
  CHECK(static_cast<uint8_t>(bytes[13]) == EncodedMetaSize(meta));
  ParsedRecord parsed = ParseRecord(bytes);
  REQUIRE(parsed.outcome == ParseOutcome::kOk);
  CHECK(parsed.size == bytes.size());
  CHECK(parsed.record.has_meta);
  CHECK(parsed.record.meta == meta);
  CHECK(parsed.record.key == "key");
  CHECK(parsed.record.value == "value");

  std::string deleted;
  AppendRecord(&deleted, 10, RecordType::kDelete, "key", "", &meta);
  ParsedRecord del = ParseRecord(deleted);
  REQUIRE(del.outcome == ParseOutcome::kOk);
  CHECK_FALSE(del.record.has_meta);
  CHECK(deleted.size() == EncodedRecordSize(3, 0));

  std::string bare;
  AppendRecord(&bare, 11, RecordType::kPut, "key", "v");
  ParsedRecord old = ParseRecord(bare);
  REQUIRE(old.outcome == ParseOutcome::kOk);
  CHECK_FALSE(old.record.has_meta);  // as a version-1 log holds it: derived on replay
}

TEST_CASE("metadata that cannot be is damage, even under a good checksum") {
  // Bytes 24.. of the record are the key, then the metadata; forge a record
  // whose metadata is `meta_bytes`, with every checksum right.
  auto forged = [](std::string_view meta_bytes, uint64_t revision) {
    std::string b(kRecordHeaderSize, '\0');
    WriteU32(&b, 4, 1);
    WriteU32(&b, 8, 1);
    b[12] = 1;
    b[13] = static_cast<char>(meta_bytes.size());
    WriteU64(&b, 16, revision);
    WriteU32(&b, 0, static_cast<uint32_t>(XXH3_64bits(b.data() + 4, kRecordHeaderSize - 4)));
    b.append("k").append(meta_bytes).append("v");
    const size_t body = b.size();
    b.append(8, '\0');
    WriteU64(&b, body, XXH3_64bits(b.data(), body));
    return b;
  };
  CHECK(ParseRecord(forged(std::string("\5\1\0", 3), 5)).outcome == ParseOutcome::kOk);
  CHECK(ParseRecord(forged(std::string("\6\1\0", 3), 5)).outcome != ParseOutcome::kOk);  // created later
  CHECK(ParseRecord(forged(std::string("\0\1\0", 3), 5)).outcome != ParseOutcome::kOk);  // created at 0
  CHECK(ParseRecord(forged(std::string("\5\0\0", 3), 5)).outcome != ParseOutcome::kOk);  // version 0
  CHECK(ParseRecord(forged(std::string("\5\1", 2), 5)).outcome != ParseOutcome::kOk);    // two varints
  CHECK(ParseRecord(forged(std::string("\5\1\0\0", 4), 5)).outcome != ParseOutcome::kOk);  // four
  CHECK(ParseRecord(forged(std::string("\5\1\x80", 3), 5)).outcome != ParseOutcome::kOk);  // cut varint
}

TEST_CASE("a version-1 segment header still passes: its records are read, their metadata derived") {
  std::string header;
  AppendSegmentHeader(&header);
  WriteU32(&header, 8, kMetadataFreeFormatVersion);
  CHECK(CheckSegmentHeader(header).empty());
}

}  // namespace
}  // namespace kvctl::core
