#include "lib/core/snapshot.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "lib/core/coding.h"

namespace kvctl::core {
namespace {

constexpr uint32_t kSnapshotVersion = 4;      // written: leases, then records in key order, with metadata
constexpr uint32_t kLeaseFreeVersion = 3;     // still read: no leases
constexpr uint32_t kKeyOrderVersion = 2;       // still read: in key order, no metadata
constexpr uint32_t kRevisionOrderVersion = 1;  // still read: records in revision order
// Bytes gathered before each write to the temp file.
constexpr size_t kWriteChunk = 1 << 20;

Status Damaged(const std::string& path, uint64_t offset, std::string_view why) {
  return Status::Corruption(fmt::format(
      "corrupt snapshot: {} at offset {}: {}; a snapshot is only renamed into place once "
      "complete, so this is damage to the disk or the file. Restore the data dir from a backup",
      path, offset, why));
}

// Streams the file through a running XXH3 so the footer can check every byte.
class SnapshotWriter {
 public:
  explicit SnapshotWriter(std::unique_ptr<WritableFile> file)
      : file_(std::move(file)), hash_(XXH3_createState()) {
    XXH3_64bits_reset(hash_);
  }
  ~SnapshotWriter() { XXH3_freeState(hash_); }
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  std::string& buffer() { return buffer_; }
  uint64_t bytes() const { return written_ + buffer_.size(); }

  Status FlushIfFull() { return buffer_.size() >= kWriteChunk ? Flush() : Status::Ok(); }
  Status Flush() {
    XXH3_64bits_update(hash_, buffer_.data(), buffer_.size());
    Status s = file_->Append(buffer_);
    written_ += buffer_.size();
    buffer_.clear();
    return s;
  }
  uint64_t digest() const { return XXH3_64bits_digest(hash_); }
  WritableFile& file() { return *file_; }

 private:
  std::unique_ptr<WritableFile> file_;
  XXH3_state_t* hash_;
  std::string buffer_;
  uint64_t written_ = 0;
};

Status WriteBody(SnapshotWriter& w, uint64_t covered_revision,
                 const std::vector<const SnapshotEntry*>& entries, const std::vector<SnapshotLease>& leases) {
  char header[kSnapshotHeaderSize] = {};
  std::memcpy(header, kSnapshotMagic.data(), kSnapshotMagic.size());
  PutU32(header + 8, kSnapshotVersion);
  PutU64(header + 16, covered_revision);
  PutU64(header + 24, XXH3_64bits(header, 24));
  w.buffer().append(header, sizeof(header));

  for (const SnapshotLease& l : leases) {
    AppendRecord(&w.buffer(), l.revision, RecordType::kLeaseGrant, LeaseGrantKey(l.id), LeaseTtlValue(l.ttl));
  }
  for (const SnapshotEntry* e : entries) {
    AppendRecord(&w.buffer(), e->revision, RecordType::kPut, e->key, e->value,
                 e->meta.version != 0 ? &e->meta : nullptr);
    if (Status s = w.FlushIfFull(); !s.ok()) return s;
  }
  char footer[16] = {};
  std::memcpy(footer, kSnapshotEndMagic.data(), kSnapshotEndMagic.size());
  PutU64(footer + 8, leases.size() + entries.size());
  w.buffer().append(footer, sizeof(footer));
  if (Status s = w.Flush(); !s.ok()) return s;
  char digest[8];
  PutU64(digest, w.digest());
  w.buffer().append(digest, sizeof(digest));
  if (Status s = w.Flush(); !s.ok()) return s;
  if (Status s = w.file().Sync(); !s.ok()) return s;
  return w.file().Close();
}

}  // namespace

std::string SnapshotFileName(uint64_t covered_revision) {
  return RevisionFileName(covered_revision, kSnapshotSuffix);
}

bool ParseSnapshotFileName(std::string_view name, uint64_t* covered_revision) {
  return ParseRevisionFileName(name, kSnapshotSuffix, covered_revision);
}

Result<SnapshotWriteResult> WriteSnapshot(FileSystem& fs, const std::string& dir,
                                          uint64_t covered_revision,
                                          const std::vector<SnapshotEntry>& entries,
                                          const std::vector<SnapshotLease>& leases) {
  std::vector<SnapshotLease> by_id = leases;
  std::sort(by_id.begin(), by_id.end(), [](const SnapshotLease& a, const SnapshotLease& b) { return a.id < b.id; });
  std::vector<const SnapshotEntry*> by_key;
  by_key.reserve(entries.size());
  for (const SnapshotEntry& e : entries) by_key.push_back(&e);
  std::sort(by_key.begin(), by_key.end(),
            [](const SnapshotEntry* a, const SnapshotEntry* b) { return a->key < b->key; });
  auto twice = std::adjacent_find(by_key.begin(), by_key.end(),
                                  [](const SnapshotEntry* a, const SnapshotEntry* b) { return a->key == b->key; });
  if (twice != by_key.end()) {
    return Status::InvalidArgument(
        fmt::format("a snapshot holds one record per key; got two for key \"{}\"", (*twice)->key));
  }

  const std::string path = JoinPath(dir, SnapshotFileName(covered_revision));
  const std::string temp = path + ".tmp";
  Status s;
  uint64_t bytes = 0;
  {
    auto file = fs.OpenAppendable(temp);
    if (!file) return file.error();
    SnapshotWriter writer(std::move(*file));
    s = WriteBody(writer, covered_revision, by_key, by_id);
    bytes = writer.bytes();
  }
  if (s.ok()) s = fs.Rename(temp, path);
  if (!s.ok()) {
    // Best effort: a leftover temp file is also removed at the next start.
    (void)fs.Remove(temp);
    return s;
  }
  if (Status d = fs.SyncDir(dir); !d.ok()) return d;
  return SnapshotWriteResult{path, bytes, leases.size() + entries.size()};
}

Result<SnapshotScan> ScanSnapshot(std::string_view bytes, const std::string& path,
                                  uint64_t named_revision,
                                  const std::function<Status(const LogRecord&)>& on_record) {
  if (bytes.size() < kSnapshotHeaderSize + kSnapshotFooterSize) {
    return Damaged(path, 0, fmt::format("{} bytes is too short for a snapshot", bytes.size()));
  }
  const char* p = bytes.data();
  if (bytes.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return Damaged(path, 0, "not a kvctl snapshot (bad magic)");
  }
  if (GetU64(p + 24) != XXH3_64bits(p, 24)) return Damaged(path, 0, "header checksum mismatch");
  const uint32_t version = GetU32(p + 8);
  if (version != kSnapshotVersion && version != kLeaseFreeVersion && version != kKeyOrderVersion &&
      version != kRevisionOrderVersion) {
    return Damaged(path, 8, fmt::format("unknown snapshot version {}", version));
  }
  const size_t footer_at = bytes.size() - kSnapshotFooterSize;
  if (bytes.substr(footer_at, kSnapshotEndMagic.size()) != kSnapshotEndMagic) {
    return Damaged(path, footer_at, "no end marker (the file is cut short or overwritten)");
  }
  if (GetU64(p + footer_at + 16) != XXH3_64bits(p, footer_at + 16)) {
    return Damaged(path, footer_at + 16, "file checksum mismatch");
  }

  SnapshotScan scan;
  scan.covered_revision = GetU64(p + 16);
  if (scan.covered_revision != named_revision) {
    // The name is what readers chain the segments to (log_format.h): a
    // snapshot renamed to a higher revision would make segments it does not
    // hold look covered, and a lower one would hide revisions.
    return Status::Corruption(fmt::format(
        "corrupt log: {} covers revision {}, but its name says {}: the file was renamed, or "
        "comes from another data dir. kvctl will not start on it: give it back its name ({}), or "
        "restore the data dir from a backup",
        path, scan.covered_revision, named_revision, SnapshotFileName(scan.covered_revision)));
  }
  scan.version = version;
  const bool key_order = version != kRevisionOrderVersion;
  uint64_t last_revision = 0;
  std::string_view last_key;
  uint64_t last_lease = 0;
  uint64_t keys = 0;
  size_t at = kSnapshotHeaderSize;
  while (at < footer_at) {
    // The file checksum above covers every record: checking each again
    // would hash the file twice.
    ParsedRecord parsed = ParseRecord(bytes.substr(at, footer_at - at), RecordChecks::kTrusted);
    if (parsed.outcome != ParseOutcome::kOk) return Damaged(path, at, parsed.why);
    const LogRecord& r = parsed.record;
    if (r.revision == 0 || r.revision > scan.covered_revision) {
      return Damaged(path, at, "record revision is 0 or past the covered revision");
    }
    if (r.type == RecordType::kLeaseGrant) {
      LeaseRecord lease;
      DecodeLeaseRecord(r, &lease);  // ParseRecord checked it
      if (version != kSnapshotVersion || keys > 0 || lease.id <= last_lease) {
        return Damaged(path, at, "a lease grant out of its place (they come first, ids increasing)");
      }
      last_lease = lease.id;
      if (Status s = on_record(r); !s.ok()) return s;
      ++scan.records;
      at += parsed.size;
      continue;
    }
    if (r.type != RecordType::kPut) return Damaged(path, at, "a snapshot holds only PUT and LEASE GRANT records");
    if (key_order ? keys > 0 && r.key <= last_key : r.revision <= last_revision) {
      return Damaged(path, at, key_order ? "record key out of order" : "record revision out of order");
    }
    if (Status s = on_record(r); !s.ok()) return s;
    last_revision = r.revision;
    last_key = r.key;
    ++keys;
    ++scan.records;
    at += parsed.size;
  }
  if (scan.records != GetU64(p + footer_at + 8)) {
    return Damaged(path, footer_at + 8, "record count does not match the footer");
  }
  return scan;
}

}  // namespace kvctl::core
