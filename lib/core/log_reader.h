// Reads the records of one segment and reports damage; the caller chooses
// the policy (leveldb's Reporter idea): recovery repairs a torn tail of the
// newest segment and refuses to start on anything else, a checker only
// reports.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lib/core/log_format.h"
#include "lib/core/status.h"

namespace kvctl::core {

struct SegmentDamage {
  bool found = false;
  uint64_t offset = 0;       // where the first bad byte range starts
  std::string reason;        // what failed there
  // True when a record that passes its checks starts after the damage:
  // then the damage cannot be a torn write at the end, it is corruption.
  bool valid_record_after = false;
};

struct SegmentScan {
  uint64_t records = 0;
  uint64_t valid_bytes = 0;  // the header plus every good record before any damage
  uint64_t last_revision = 0;  // first_revision - 1 when no record is good
  // Zeros at the end of the file, past the last record (and past the
  // damage, if any): space preallocated for appends, not yet written.
  uint64_t zero_tail_bytes = 0;
  SegmentDamage damage;
};

// Calls `on_record` for every good record of `bytes` (a whole segment file),
// in order, until the end or the first damage, which is described in the
// result. The records must carry `first_revision` (the revision the
// segment's name gives), then each the next revision (the chain,
// log_format.h); a record that breaks that is damage with a valid record
// after it (it is one), so never taken for a torn write.
// Where a record would start and only zeros follow to the end of the file,
// the segment ends cleanly: those are preallocated bytes (log_format.h).
// A bad segment header is reported as damage at offset 0. An error returned
// by `on_record` stops the scan and is returned.
Result<SegmentScan> ScanSegment(std::string_view bytes, uint64_t first_revision,
                                const std::function<Status(const LogRecord&)>& on_record);

}  // namespace kvctl::core
