// A Store over a real FileLog in a directory, recovered from whatever is
// there, as `kvctl serve` opens one: the unit tests of the store share it.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "lib/core/file_log.h"
#include "lib/core/store.h"

namespace kvctl::testing {

inline core::StoreOptions WithSyncInterval(std::chrono::milliseconds interval) {
  core::StoreOptions options;
  options.sync_interval = interval;
  return options;
}

struct OpenStore {
  explicit OpenStore(const std::string& dir, core::FileSystem* fs = nullptr,
                     core::FsyncPolicy fsync = core::FsyncPolicy::kAlways,
                     std::chrono::milliseconds sync_interval = std::chrono::milliseconds(0))
      : store(WithSyncInterval(sync_interval)) {
    auto opened = core::FileLog::Open({dir, fsync, 1 << 20, fs, nullptr},
                                      [&](const core::LogRecord& r) {
                                        store.ApplyRecovered(r);
                                        return core::Status::Ok();
                                      },
                                      &report);
    REQUIRE(opened.has_value());
    log = opened->get();
    store.NoteRecoveredRevision(report.last_revision);
    store.Start(std::move(*opened));
  }
  core::Store store;
  core::RecoveryReport report;
  core::FileLog* log = nullptr;  // owned by store
};

}  // namespace kvctl::testing
