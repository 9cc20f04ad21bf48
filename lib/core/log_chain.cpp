#include "lib/core/log_chain.h"

#include <fmt/format.h>

#include "lib/core/log_format.h"

namespace kvctl::core {
namespace {

constexpr std::string_view kWhatToDo =
    "kvctl will not start on a log that is missing a piece: put the file back, or restore the "
    "data dir from a backup";

}  // namespace

LogChain LogChain::Plan(const DataDirFiles& files, const std::string& dir) {
  std::optional<NamedFile> snapshot;
  if (const NamedFile* latest = files.latest_snapshot()) snapshot = *latest;
  return Plan(snapshot, files.segments, dir);
}

LogChain LogChain::Plan(const std::optional<NamedFile>& snapshot, const std::vector<NamedFile>& segments,
                        const std::string& dir) {
  LogChain chain(snapshot, dir);
  chain.next_ = chain.covered_revision() + 1;
  for (const NamedFile& segment : segments) {
    // A segment named at or below the snapshot's revision starts inside
    // what the snapshot holds: compaction cuts the log right after R, so
    // such a segment holds only revisions up to R.
    (segment.revision <= chain.covered_revision() ? chain.covered_ : chain.segments_).push_back(segment);
  }
  return chain;
}

Status LogChain::CheckSnapshotFollowed() const {
  if (!snapshot_ || !segments_.empty()) return Status::Ok();
  const uint64_t next = snapshot_->revision + 1;
  return Status::Corruption(fmt::format(
      "corrupt log: {} is missing from {}: the snapshot {} covers revisions up to {}, and every "
      "compaction leaves the segment that follows it (revisions from {} on may be lost). {}",
      SegmentFileName(next), dir_, snapshot_->name, snapshot_->revision, next, kWhatToDo));
}

std::string LogChain::Before() const {
  if (!last_segment_.empty()) {
    return fmt::format("{} ends at revision {}", last_segment_, next_ - 1);
  }
  if (snapshot_) return fmt::format("the snapshot {} covers revisions up to {}", snapshot_->name, snapshot_->revision);
  return "with no snapshot, the log starts at revision 1";
}

Status LogChain::Enter(const NamedFile& segment) {
  if (segment.revision > next_) {
    return Status::Corruption(fmt::format(
        "corrupt log: revisions {} to {} are missing from {}: {}, and the next file is {}. A "
        "segment{} was moved or deleted; {}",
        next_, segment.revision - 1, dir_, Before(), segment.name,
        last_segment_.empty() ? " or the snapshot before it" : "", kWhatToDo));
  }
  if (segment.revision < next_) {
    return Status::Corruption(fmt::format(
        "corrupt log: {} in {} is named for revision {}, but {}: the files overlap (one was "
        "renamed, or comes from another data dir). {}",
        segment.name, dir_, segment.revision, Before(), kWhatToDo));
  }
  last_segment_ = segment.name;
  return Status::Ok();
}

void LogChain::Leave(uint64_t last_revision) { next_ = last_revision + 1; }

}  // namespace kvctl::core
