// The chain rule of log_format.h, followed file by file as a reader goes
// through a data dir: the snapshot (covering revisions up to R), then the
// segments, the first named R + 1 (1 without a snapshot), each next one
// named one past the last revision of the one before.
//
// Every reader of a data dir (recovery, compaction, replay, the copy of
// `replay --into`) walks its files through a LogChain, so that a missing
// segment, a missing snapshot the segments rely on, or a renamed or foreign
// file is Corruption naming the missing revisions and files, found before
// the reader changes anything. The records inside a segment are held to the
// same rule by ScanSegment (log_reader.h), which is given the revision the
// segment must start with; a snapshot's name by ScanSnapshot (snapshot.h).
//
// Thread safety: none; one reader's cursor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/data_dir.h"
#include "lib/core/status.h"

namespace kvctl::core {

class LogChain {
 public:
  // The chain of a listed data dir: its newest snapshot, then the segments
  // that snapshot does not cover. `dir` is for messages.
  static LogChain Plan(const DataDirFiles& files, const std::string& dir);
  // The same over files named by the caller (a compaction's inputs); the
  // segments in order, any the snapshot covers set apart.
  static LogChain Plan(const std::optional<NamedFile>& snapshot, const std::vector<NamedFile>& segments,
                       const std::string& dir);

  // For a whole data dir (not a compaction's inputs, which may end before
  // the log does): Corruption when a snapshot has no segment after it, as
  // every compaction leaves one. Readers call it once the snapshot's own
  // checks have passed, which give the clearer message for a renamed one.
  Status CheckSnapshotFollowed() const;

  const std::optional<NamedFile>& snapshot() const { return snapshot_; }
  uint64_t covered_revision() const { return snapshot_ ? snapshot_->revision : 0; }
  // The segments to read, oldest first.
  const std::vector<NamedFile>& segments() const { return segments_; }
  // Segments the snapshot covers: left by a crash in mid-compaction, never
  // read, and removed by recovery once the whole chain has been read.
  const std::vector<NamedFile>& covered() const { return covered_; }

  // Before reading `segment` (the next of segments()): OK when its name is
  // the next revision, else Corruption naming the missing revisions (a gap)
  // or the overlap. next_revision() is then what its first record must be.
  Status Enter(const NamedFile& segment);
  // After reading it: the last revision it holds (its name - 1 when none).
  void Leave(uint64_t last_revision);
  uint64_t next_revision() const { return next_; }

 private:
  LogChain(std::optional<NamedFile> snapshot, std::string dir) : snapshot_(std::move(snapshot)), dir_(std::move(dir)) {}
  // What holds the revisions before next_, for messages.
  std::string Before() const;

  std::optional<NamedFile> snapshot_;
  std::vector<NamedFile> segments_;
  std::vector<NamedFile> covered_;
  std::string dir_;
  uint64_t next_ = 1;
  std::string last_segment_;  // the segment read last, "" before the first
};

}  // namespace kvctl::core
