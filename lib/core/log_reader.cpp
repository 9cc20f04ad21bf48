#include "lib/core/log_reader.h"

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

}  // namespace

Result<SegmentScan> ScanSegment(std::string_view bytes, uint64_t after_revision,
                                const std::function<Status(const LogRecord&)>& on_record) {
  SegmentScan scan;
  scan.last_revision = after_revision;
  if (std::string why = CheckSegmentHeader(bytes); !why.empty()) {
    scan.damage = {true, 0, std::move(why), AnyValidRecordFrom(bytes, 0)};
    return scan;
  }
  size_t at = kSegmentHeaderSize;
  while (at < bytes.size()) {
    ParsedRecord parsed = ParseRecord(bytes.substr(at));
    if (parsed.outcome != ParseOutcome::kOk) {
      scan.damage.found = true;
      scan.damage.offset = at;
      scan.damage.reason = parsed.why;
      // A record whose sound header says it runs past the end of the file
      // was cut off mid-write: nothing can follow it. Otherwise search on:
      // from the end of a record with a sound header, else from the next byte.
      if (parsed.outcome == ParseOutcome::kBadChecksum) {
        scan.damage.valid_record_after = AnyValidRecordFrom(bytes, at + parsed.size);
      } else if (parsed.outcome == ParseOutcome::kBadHeader) {
        scan.damage.valid_record_after = AnyValidRecordFrom(bytes, at + 1);
      }
      break;
    }
    if (parsed.record.revision <= scan.last_revision) {
      scan.damage = {true, at, "record revision does not increase", true};
      break;
    }
    if (Status s = on_record(parsed.record); !s.ok()) return s;
    scan.last_revision = parsed.record.revision;
    ++scan.records;
    at += parsed.size;
  }
  scan.valid_bytes = scan.damage.found ? scan.damage.offset : bytes.size();
  return scan;
}

}  // namespace kvctl::core
