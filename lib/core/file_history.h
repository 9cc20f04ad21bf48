// The file backend's durable history for watchers (watch.h): the events in
// the segments a FileLog keeps after its snapshot, read in place with
// positioned reads, each reader keeping its file and offset between calls
// so that a long catch-up reads every segment once.
//
// Events read from a version-1 segment (written before key metadata) have
// no metadata to give: their create revision and version are 0.
//
// Thread safety: the history may be shared; each Reader is one caller's.
#pragma once

#include <memory>

#include "lib/core/file_log.h"
#include "lib/core/watch.h"

namespace kvctl::core {

class FileEventHistory final : public EventHistory {
 public:
  // `log` must outlive the history and its readers.
  explicit FileEventHistory(const FileLog& log) : log_(log) {}

  uint64_t Floor() const override { return log_.HistoryFloor(); }
  std::unique_ptr<Reader> OpenReader(const WatchFilter& filter) override;

 private:
  const FileLog& log_;
};

}  // namespace kvctl::core
