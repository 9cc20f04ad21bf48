#include "lib/core/data_dir.h"

#include <algorithm>

#include "lib/core/log_format.h"
#include "lib/core/snapshot.h"

namespace kvctl::core {

Result<DataDirFiles> ListDataDir(FileSystem& fs, const std::string& dir) {
  auto names = fs.ListDir(dir);
  if (!names) return names.error();
  DataDirFiles files;
  for (std::string& name : *names) {
    uint64_t revision = 0;
    if (ParseSegmentFileName(name, &revision)) {
      files.segments.push_back({revision, std::move(name)});
    } else if (ParseSnapshotFileName(name, &revision)) {
      files.snapshots.push_back({revision, std::move(name)});
    } else if (name.ends_with(kTempSuffix)) {
      files.temp_files.push_back(std::move(name));
    }
  }
  auto by_revision = [](const NamedFile& a, const NamedFile& b) { return a.revision < b.revision; };
  std::sort(files.segments.begin(), files.segments.end(), by_revision);
  std::sort(files.snapshots.begin(), files.snapshots.end(), by_revision);
  return files;
}

}  // namespace kvctl::core
