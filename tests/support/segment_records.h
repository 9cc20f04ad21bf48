// Every record of a data dir's segments, in order, as the log's readers
// hand them on: what the store's unit tests check the log against.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lib/core/file_system.h"
#include "lib/core/log_reader.h"
#include "lib/core/log_format.h"

namespace kvctl::testing {

// The records point into the segments' bytes, which `keep` holds.
inline std::vector<core::LogRecord> SegmentRecords(const std::string& dir, std::vector<std::string>* keep) {
  std::vector<core::LogRecord> out;
  core::FileSystem& fs = core::PosixFileSystem();
  auto names = fs.ListDir(dir);
  REQUIRE(names.has_value());
  std::sort(names->begin(), names->end());
  for (const std::string& name : *names) {
    uint64_t first = 0;
    if (!core::ParseSegmentFileName(name, &first)) continue;
    auto bytes = fs.ReadFile(dir + "/" + name);
    REQUIRE(bytes.has_value());
    keep->push_back(std::move(*bytes));
    auto scan = core::ScanSegment(keep->back(), first, [&](const core::LogRecord& r) {
      out.push_back(r);
      return core::Status::Ok();
    });
    REQUIRE(scan.has_value());
    CHECK_FALSE(scan->damage.found);
  }
  return out;
}

}  // namespace kvctl::testing
