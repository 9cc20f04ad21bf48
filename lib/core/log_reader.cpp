#include "lib/core/log_reader.h"

#include <algorithm>

#include <fmt/format.h>

namespace kvctl::core {
namespace {

// Looks for any record that passes both checks and starts at or after
// `from`. Only runs on damage, so a byte-by-byte search is acceptable.
bool AnyValidRecordFrom(std::string_view bytes, size_t from) {
  for (size_t at = from; at + kRecordOverhead <= bytes.size(); ++at) {
    if (ParseRecord(bytes.substr(at)).outcome == ParseOutcome::kOk) return true;
  }
  return false;
}

// Where the zeros at the end of `bytes` begin (bytes.size() if it does not
// end in a zero).
size_t ZeroTailStart(std::string_view bytes) {
  size_t end = bytes.size();
  while (end > 0 && bytes[end - 1] == '\0') --end;
  return end;
}

// Why a sound record does not continue the chain (log_format.h).
std::string ChainBreak(uint64_t revision, uint64_t expected, bool first_in_segment) {
  if (first_in_segment) {
    return fmt::format(
        "the first record holds revision {} but the file is named for revision {} (a renamed "
        "segment, or one from another data dir)",
        revision, expected);
  }
  if (revision < expected) {
    return fmt::format("record revision {} does not increase (the one before is {})", revision,
                       expected - 1);
  }
  return fmt::format("record revision {} follows {}: revisions {} to {} are missing", revision,
                     expected - 1, expected, revision - 1);
}

}  // namespace

Result<SegmentScan> ScanSegment(std::string_view bytes, uint64_t first_revision,
                                const std::function<Status(const LogRecord&)>& on_record) {
  SegmentScan scan;
  scan.last_revision = first_revision - 1;
  if (std::string why = CheckSegmentHeader(bytes); !why.empty()) {
    scan.damage = {true, 0, std::move(why), AnyValidRecordFrom(bytes, 0)};
    return scan;
  }
  // A record never ends in a zero byte but by chance (its last 8 bytes are
  // a checksum), so a record boundary at or past the zero tail's start is
  // the end of what was written. Damage is looked for only before it.
  const size_t zeros_from = std::max(ZeroTailStart(bytes), kSegmentHeaderSize);
  const std::string_view written = bytes.substr(0, zeros_from);
  size_t at = kSegmentHeaderSize;
  std::vector<LogRecord> txn_writes;
  while (at < written.size()) {
    ParsedRecord parsed = ParseRecord(bytes.substr(at));
    if (parsed.outcome != ParseOutcome::kOk) {
      scan.damage.found = true;
      scan.damage.offset = at;
      scan.damage.reason = parsed.why;
      // A record whose sound header says it runs past the end of the file
      // was cut off mid-write: nothing can follow it. Otherwise search on:
      // from the end of a record with a sound header, else from the next byte.
      if (parsed.outcome == ParseOutcome::kBadChecksum) {
        scan.damage.valid_record_after = AnyValidRecordFrom(written, at + parsed.size);
      } else if (parsed.outcome == ParseOutcome::kBadHeader) {
        scan.damage.valid_record_after = AnyValidRecordFrom(written, at + 1);
      }
      break;
    }
    if (const uint64_t expected = scan.last_revision + 1; parsed.record.revision != expected) {
      scan.damage = {true, at, ChainBreak(parsed.record.revision, expected, scan.records == 0), true};
      break;
    }
    if (parsed.record.type == RecordType::kTxn) {
      // A transaction's writes go on as the records they are, one revision.
      DecodeTxnRecord(parsed.record, &txn_writes);
      for (const LogRecord& w : txn_writes) {
        if (Status s = on_record(w); !s.ok()) return s;
      }
    } else if (Status s = on_record(parsed.record); !s.ok()) {
      return s;
    }
    scan.last_revision = parsed.record.revision;
    ++scan.records;
    at += parsed.size;
  }
  // The last record may itself end in zeros, running past zeros_from.
  scan.valid_bytes = scan.damage.found ? scan.damage.offset : std::max(at, kSegmentHeaderSize);
  scan.zero_tail_bytes = bytes.size() - (scan.damage.found ? zeros_from : scan.valid_bytes);
  return scan;
}

}  // namespace kvctl::core
