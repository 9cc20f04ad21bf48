#include "lib/core/log_format.h"

#include <xxhash.h>

#include <cstring>

#include <fmt/format.h>

#include "lib/core/coding.h"

namespace kvctl::core {
namespace {

uint32_t HeaderCheck(const char* record) {
  return static_cast<uint32_t>(XXH3_64bits(record + 4, kRecordHeaderSize - 4));
}

}  // namespace

void AppendSegmentHeader(std::string* out) {
  char header[kSegmentHeaderSize] = {};
  std::memcpy(header, kSegmentMagic.data(), kSegmentMagic.size());
  PutU32(header + 8, kFormatVersion);
  out->append(header, sizeof(header));
}

std::string CheckSegmentHeader(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) {
    return fmt::format("segment header is {} bytes, needs {}", bytes.size(), kSegmentHeaderSize);
  }
  if (bytes.substr(0, kSegmentMagic.size()) != kSegmentMagic) {
    return "not a kvctl log segment (bad magic)";
  }
  uint32_t version = GetU32(bytes.data() + 8);
  if (version != kFormatVersion && version != kTxnFreeFormatVersion && version != kMetadataFreeFormatVersion) {
    return fmt::format("log format version {} is not supported (this kvctl reads {} to {}): a newer kvctl wrote it",
                       version, kMetadataFreeFormatVersion, kFormatVersion);
  }
  return "";
}

size_t EncodedRecordSize(size_t key_size, size_t value_size) {
  return kRecordOverhead + key_size + value_size;
}

size_t EncodedMetaSize(const KeyMeta& meta) {
  return VarintSize(meta.create_revision) + VarintSize(meta.version) + VarintSize(meta.lease);
}

void AppendRecord(std::string* out, uint64_t revision, RecordType type, std::string_view key,
                  std::string_view value, const KeyMeta* meta) {
  if (type != RecordType::kPut) meta = nullptr;
  const size_t meta_size = meta != nullptr ? EncodedMetaSize(*meta) : 0;
  const size_t start = out->size();
  out->resize(start + EncodedRecordSize(key.size(), value.size()) + meta_size);
  char* p = out->data() + start;
  PutU32(p + 4, static_cast<uint32_t>(key.size()));
  PutU32(p + 8, static_cast<uint32_t>(value.size()));
  p[12] = static_cast<char>(type);
  p[13] = static_cast<char>(meta_size);
  p[14] = p[15] = 0;
  PutU64(p + 16, revision);
  PutU32(p, HeaderCheck(p));
  char* at = p + kRecordHeaderSize;
  std::memcpy(at, key.data(), key.size());
  at += key.size();
  if (meta != nullptr) at = PutVarint(PutVarint(PutVarint(at, meta->create_revision), meta->version), meta->lease);
  if (!value.empty()) std::memcpy(at, value.data(), value.size());
  const size_t body = kRecordHeaderSize + key.size() + meta_size + value.size();
  PutU64(p + body, XXH3_64bits(p, body));
}

void AppendTxnRecord(std::string* out, uint64_t revision, const std::vector<TxnWrite>& writes) {
  size_t payload = VarintSize(writes.size());
  for (const TxnWrite& w : writes) {
    const size_t meta = w.type == RecordType::kPut && w.meta != nullptr ? EncodedMetaSize(*w.meta) : 0;
    payload += 1 + VarintSize(w.key.size()) + VarintSize(w.value.size()) + VarintSize(meta) + w.key.size() + meta +
               w.value.size();
  }
  const size_t start = out->size();
  out->resize(start + EncodedRecordSize(payload, 0));
  char* p = out->data() + start;
  PutU32(p + 4, static_cast<uint32_t>(payload));
  PutU32(p + 8, 0);
  p[12] = static_cast<char>(RecordType::kTxn);
  p[13] = p[14] = p[15] = 0;
  PutU64(p + 16, revision);
  PutU32(p, HeaderCheck(p));
  char* at = PutVarint(p + kRecordHeaderSize, writes.size());
  for (const TxnWrite& w : writes) {
    const bool put = w.type == RecordType::kPut;
    const size_t meta = put && w.meta != nullptr ? EncodedMetaSize(*w.meta) : 0;
    *at++ = static_cast<char>(w.type);
    at = PutVarint(PutVarint(PutVarint(at, w.key.size()), put ? w.value.size() : 0), meta);
    std::memcpy(at, w.key.data(), w.key.size());
    at += w.key.size();
    if (meta > 0) at = PutVarint(PutVarint(PutVarint(at, w.meta->create_revision), w.meta->version), w.meta->lease);
    if (put && !w.value.empty()) {
      std::memcpy(at, w.value.data(), w.value.size());
      at += w.value.size();
    }
  }
  const size_t body = kRecordHeaderSize + payload;
  PutU64(p + body, XXH3_64bits(p, body));
}

namespace {

// Checks a key's metadata as a PUT record's: exactly three varints, a
// create revision no later than `revision`, a version from 1.
bool ParseMeta(const char* at, const char* end, uint64_t revision, KeyMeta* m) {
  at = GetVarintChecked(at, end, &m->create_revision);
  if (at != nullptr) at = GetVarintChecked(at, end, &m->version);
  if (at != nullptr) at = GetVarintChecked(at, end, &m->lease);
  return at == end && m->create_revision != 0 && m->create_revision <= revision && m->version != 0;
}

// Decodes (or, with `writes` null, only checks) a TRANSACTION record's
// writes; the bytes passed the record check, but are judged all the same.
const char* DecodeTxnWrites(const LogRecord& txn, std::vector<LogRecord>* writes) {
  const char* at = txn.key.data();
  const char* const end = at + txn.key.size();
  uint64_t n = 0;
  at = GetVarintChecked(at, end, &n);
  if (at == nullptr || n < 2 || n > txn.key.size()) return "transaction record has an invalid count of writes";
  for (uint64_t i = 0; i < n; ++i) {
    if (at == end) return "transaction record ends before its last write";
    const auto type = static_cast<uint8_t>(*at++);
    uint64_t key_size = 0, value_size = 0, meta_size = 0;
    at = GetVarintChecked(at, end, &key_size);
    if (at != nullptr) at = GetVarintChecked(at, end, &value_size);
    if (at != nullptr) at = GetVarintChecked(at, end, &meta_size);
    if (at == nullptr || (type != 1 && type != 2) || key_size == 0 || meta_size > kMaxRecordMetaSize ||
        (type == 2 && (value_size != 0 || meta_size != 0))) {
      return "transaction record has a write with invalid fields";
    }
    if (static_cast<uint64_t>(end - at) < key_size + meta_size + value_size) {
      return "transaction record's write runs past its end";
    }
    LogRecord w;
    w.revision = txn.revision;
    w.type = static_cast<RecordType>(type);
    w.key = std::string_view(at, key_size);
    at += key_size;
    if (meta_size > 0) {
      if (!ParseMeta(at, at + meta_size, txn.revision, &w.meta)) return "transaction record has invalid metadata";
      w.has_meta = true;
      at += meta_size;
    }
    w.value = std::string_view(at, value_size);
    at += value_size;
    w.txn_writes = static_cast<uint32_t>(n);
    if (writes != nullptr) writes->push_back(w);
  }
  if (at != end) return "transaction record has bytes after its last write";
  return nullptr;
}

}  // namespace

bool DecodeTxnRecord(const LogRecord& txn, std::vector<LogRecord>* writes) {
  writes->clear();
  if (txn.type != RecordType::kTxn) return false;
  return DecodeTxnWrites(txn, writes) == nullptr;
}

ParsedRecord ParseRecord(std::string_view bytes, RecordChecks checks) {
  ParsedRecord r;
  if (bytes.size() < kRecordHeaderSize) {
    r.why = "record header cut off";
    return r;
  }
  const char* p = bytes.data();
  const bool verify = checks == RecordChecks::kVerify;
  if (verify && GetU32(p) != HeaderCheck(p)) {
    r.outcome = ParseOutcome::kBadHeader;
    r.why = "record header fails its checksum";
    return r;
  }
  const uint32_t key_size = GetU32(p + 4);
  const uint32_t value_size = GetU32(p + 8);
  const auto type = static_cast<uint8_t>(p[12]);
  const auto meta_size = static_cast<uint8_t>(p[13]);
  if ((type != 1 && type != 2 && type != 3) || p[14] != 0 || p[15] != 0 || key_size == 0 ||
      (type != 1 && (value_size != 0 || meta_size != 0)) || meta_size > kMaxRecordMetaSize) {
    r.outcome = ParseOutcome::kBadHeader;
    r.why = "record header has invalid fields";
    return r;
  }
  r.size = EncodedRecordSize(key_size, value_size) + meta_size;
  if (bytes.size() < r.size) {
    r.outcome = ParseOutcome::kTruncated;
    r.why = "record cut off";
    return r;
  }
  const size_t body = r.size - kRecordTrailerSize;
  if (verify && GetU64(p + body) != XXH3_64bits(p, body)) {
    r.outcome = ParseOutcome::kBadChecksum;
    r.why = "record fails its checksum";
    return r;
  }
  r.record.revision = GetU64(p + 16);
  r.record.type = static_cast<RecordType>(type);
  r.record.key = bytes.substr(kRecordHeaderSize, key_size);
  r.record.value = bytes.substr(kRecordHeaderSize + key_size + meta_size, value_size);
  if (meta_size > 0) {
    // Checked like the rest: sound framing with unsound contents is damage.
    const char* at = p + kRecordHeaderSize + key_size;
    if (!ParseMeta(at, at + meta_size, r.record.revision, &r.record.meta)) {
      r.outcome = ParseOutcome::kBadChecksum;
      r.why = "record metadata is invalid";
      return r;
    }
    r.record.has_meta = true;
  }
  if (r.record.type == RecordType::kTxn) {
    if (const char* why = DecodeTxnWrites(r.record, nullptr)) {
      r.outcome = ParseOutcome::kBadChecksum;
      r.why = why;
      return r;
    }
  }
  r.outcome = ParseOutcome::kOk;
  return r;
}

std::string RevisionFileName(uint64_t revision, std::string_view suffix) {
  return fmt::format("{:020}{}", revision, suffix);
}

bool ParseRevisionFileName(std::string_view name, std::string_view suffix, uint64_t* revision) {
  if (name.size() != 20 + suffix.size() || !name.ends_with(suffix)) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(name[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *revision = v;
  return true;
}

std::string SegmentFileName(uint64_t first_revision) {
  return RevisionFileName(first_revision, kSegmentSuffix);
}

bool ParseSegmentFileName(std::string_view name, uint64_t* first_revision) {
  return ParseRevisionFileName(name, kSegmentSuffix, first_revision);
}

}  // namespace kvctl::core
