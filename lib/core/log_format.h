// The byte format of kvctl's transaction log. This comment is the reference.
//
// A data dir holds segment files named by the revision of their first record,
// as 20 decimal digits: 00000000000000000001.log, 00000000000000004097.log, ...
// Sorting the names sorts the log. Every integer is little-endian.
//
// Segment header (16 bytes, once at offset 0):
//    0  8  magic "KVCTLLOG"
//    8  4  format version (3; versions 1 and 2 are still read)
//   12  4  reserved, 0
//
// Then records, back to back, until the end of the file:
//    0  4  header check: low 32 bits of XXH3-64 over bytes [4, 24) of the record
//    4  4  key length k (1 .. 2^32-1)
//    8  4  value length v (0 for a delete)
//   12  1  type: 1 = PUT, 2 = DELETE, 3 = TRANSACTION (below)
//   13  1  metadata length m (0 .. 30): a PUT's key metadata; 0 for a
//          DELETE and a TRANSACTION
//   14  2  reserved, 0
//   16  8  revision (store-wide, strictly increasing through the whole log)
//   24  k  key bytes
// 24+k  m  metadata: three LEB128 varints, the key's create revision, its
//          version and its lease (key_meta.h), as they are after this PUT
// 24+k+m v value bytes
//   ...  8 record check: XXH3-64 over bytes [0, 24+k+m+v), i.e. every byte
//          of the record before it, the header check included
// A record is 32 + k + m + v bytes.
//
// A TRANSACTION record holds every write of one transaction (SPEC §6): two
// or more, all at the record's revision, under its one record check, so a
// crash leaves all of them or none. Its "key" is the list of writes (so k is
// their length, at least 1) and its value is empty (v = 0):
//        varint  n, the number of writes (2 or more)
//   then n times, in the order the transaction gave them:
//        1       type: 1 = PUT, 2 = DELETE
//        varint  key length (at least 1)
//        varint  value length (0 for a DELETE)
//        varint  metadata length (0 .. 30; 0 for a DELETE)
//        bytes   key, metadata (as a PUT record's), value
// Nothing may follow the n-th write. A transaction of one write is a plain
// PUT or DELETE record. Readers hand its writes on as PUT and DELETE
// records that share the revision (LogRecord::txn_writes says how many).
//
// Version 2 is version 3 without TRANSACTION records; version 1 (kvctl
// before key metadata) is version 2 with m always 0. A PUT
// without metadata (any PUT of a version-1 log) gets it on replay: version
// 1 and create revision = its revision when the key did not exist before,
// else the key's create revision and its version + 1; lease 0. A log
// carries the metadata so that a watcher catching up from a segment gets
// each event whole, without replaying what came before it.
//
// Why two checks: the lengths decide where the next record starts, so they
// are never trusted before a check has passed over them (the header check).
// A damaged length is then a checksum failure, never a "record cut off at
// the end of the file" that could be mistaken for a torn write.
//
// Zeros may follow the last record: space preallocated for appends (see
// file_log.h). Where a record would start and only zeros follow to the end
// of the file, the segment ends; a record is never all zeros (its key
// length is at least 1), so none is mistaken for them. Zeros that
// something other than zeros follows are damage like any other bytes.
//
// How damage is read (see log_reader.h): a record cut off at the end of the
// newest segment, or a final stretch that fails its checks with no valid
// record after it, is a torn write left by a crash; any other failure is
// corruption. Segments other than the newest are synced in full before the
// next one is created, so they never legitimately end in a torn write.
//
// The chain (log_chain.h). Every change takes the next revision and is one
// record, so the files of a data dir hold every revision once, with no gap:
// - the snapshot (snapshot.h) named R holds R as its covered revision in its
//   header (0 and no snapshot before the first compaction);
// - the segments after it are named R + 1 (1 without a snapshot), then
//   each one past the last revision of the segment before it;
// - inside a segment, the first record carries the revision its name
//   gives, and each next record the revision after;
// - a snapshot is always followed by a segment: compaction cuts the log
//   (making segment R + 1) before it writes the snapshot;
// - segments named at or below R are left by a crash in mid-compaction and
//   hold nothing the snapshot does not: they are never read, and are
//   removed once the rest has been read and found whole.
// A segment moved away or deleted, a snapshot the segments rely on gone, a
// file renamed or brought in from another data dir all break the chain,
// which every reader (recovery, compaction, replay) checks before it acts:
// corruption, naming the missing revisions and the files around them.
// So is a newest segment of zero bytes: a segment is only renamed into
// place with its header synced, so an empty one was truncated later, not
// left by a crash while it was made.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/key_meta.h"

namespace kvctl::core {

inline constexpr std::string_view kSegmentMagic = "KVCTLLOG";
inline constexpr uint32_t kFormatVersion = 3;           // written
inline constexpr uint32_t kTxnFreeFormatVersion = 2;       // still read
inline constexpr uint32_t kMetadataFreeFormatVersion = 1;  // still read
inline constexpr size_t kMaxRecordMetaSize = 30;  // three varints of at most 10 bytes
inline constexpr size_t kSegmentHeaderSize = 16;
inline constexpr size_t kRecordHeaderSize = 24;
inline constexpr size_t kRecordTrailerSize = 8;
inline constexpr size_t kRecordOverhead = kRecordHeaderSize + kRecordTrailerSize;
inline constexpr std::string_view kSegmentSuffix = ".log";

// kTxn appears only between ParseRecord and DecodeTxnRecord: every other
// reader sees a transaction as its PUT and DELETE records.
enum class RecordType : uint8_t { kPut = 1, kDelete = 2, kTxn = 3 };

// A decoded record; key and value point into the buffer it was parsed from.
struct LogRecord {
  uint64_t revision = 0;
  RecordType type = RecordType::kPut;
  std::string_view key;
  std::string_view value;
  // A PUT's metadata, when the record carries it (has_meta); else it is
  // derived on replay (above).
  bool has_meta = false;
  KeyMeta meta;
  // 0 for a record of its own; n when it is one of the n writes of a
  // TRANSACTION record (all at this revision).
  uint32_t txn_writes = 0;
};

// One write of a transaction, for AppendTxnRecord.
struct TxnWrite {
  RecordType type = RecordType::kPut;
  std::string_view key;
  std::string_view value;
  const KeyMeta* meta = nullptr;  // a PUT's metadata, or null
};

// Appends the encoded segment header to `out`.
void AppendSegmentHeader(std::string* out);
// Checks the header at the start of a segment; empty string when fine, else why not.
std::string CheckSegmentHeader(std::string_view bytes);

// Appends one encoded record to `out`; a PUT with `meta` carries it.
void AppendRecord(std::string* out, uint64_t revision, RecordType type, std::string_view key,
                  std::string_view value, const KeyMeta* meta = nullptr);
// The size of a record without metadata; with it, add EncodedMetaSize.
size_t EncodedRecordSize(size_t key_size, size_t value_size);
// Appends one TRANSACTION record of `writes` (two or more) at `revision`.
void AppendTxnRecord(std::string* out, uint64_t revision, const std::vector<TxnWrite>& writes);
// The writes of a parsed TRANSACTION record, as PUT and DELETE records at
// its revision pointing into the same bytes. ParseRecord has checked that
// they decode, so this only fails on records it did not check.
bool DecodeTxnRecord(const LogRecord& txn, std::vector<LogRecord>* writes);
size_t EncodedMetaSize(const KeyMeta& meta);

enum class ParseOutcome {
  kOk,
  kTruncated,    // fewer bytes than the record needs (header, or the whole record)
  kBadHeader,    // the header check fails, or the header's fields are invalid
  kBadChecksum,  // the header is sound, the record check fails
};

struct ParsedRecord {
  ParseOutcome outcome = ParseOutcome::kTruncated;
  LogRecord record;      // valid when outcome == kOk
  size_t size = 0;       // bytes the record occupies when the header is sound
  const char* why = "";  // for reports: what exactly failed
};

// How much of a record ParseRecord checks. kTrusted skips the two
// checksums, and only the checksums: for bytes a checksum over the whole
// file has verified already (a snapshot).
enum class RecordChecks { kVerify, kTrusted };

// Parses the record at the start of `bytes`.
ParsedRecord ParseRecord(std::string_view bytes, RecordChecks checks = RecordChecks::kVerify);

// Files of a data dir are named by a revision as 20 decimal digits plus a
// suffix, so sorting the names sorts them by revision.
std::string RevisionFileName(uint64_t revision, std::string_view suffix);
bool ParseRevisionFileName(std::string_view name, std::string_view suffix, uint64_t* revision);

// "00000000000000000001.log" for 1; and back (false if `name` is not a segment name).
std::string SegmentFileName(uint64_t first_revision);
bool ParseSegmentFileName(std::string_view name, uint64_t* first_revision);

}  // namespace kvctl::core
