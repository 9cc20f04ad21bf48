// `kvctl migrate` as a library: moves a database between the versions in
// migrations.h with golang-migrate's semantics, and tells `serve` whether
// the schema is the one it needs.
//
// - The version lives in schema_migrations(version bigint, dirty boolean),
//   at most one row; no row means no migration applied (golang-migrate's
//   NilVersion). A dirty row (left by a tool that failed halfway) stops
//   every command but `force` and `version`.
// - Each step runs in one transaction together with its version update, so
//   a failed step leaves the previous version in place and nothing dirty
//   (PostgreSQL's DDL is transactional).
// - A session-level advisory lock (per database) makes a second concurrent
//   run wait for the first, up to the lock timeout, then give up with Busy.
//
// Not thread-safe: one Migrator per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "lib/core/status.h"

namespace kvctl::pg {

struct MigrateOptions {
  std::string dsn;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds lock_timeout{15000};
};

struct SchemaVersion {
  std::optional<int64_t> version;  // nullopt: no migration applied
  bool dirty = false;
};

// One applied step, reported as it completes ("2/u compaction watermark").
struct MigrationStep {
  int64_t version = 0;  // the migration's version (for a down: the one undone)
  std::string name;
  bool up = true;
  std::chrono::milliseconds took{0};
};
using StepReporter = std::function<void(const MigrationStep&)>;

class Migrator {
 public:
  // Unavailable when the database cannot be reached; InvalidArgument for a
  // bad DSN.
  static core::Result<std::unique_ptr<Migrator>> Connect(const MigrateOptions& options);
  ~Migrator();

  core::Result<SchemaVersion> Version();
  // Each returns the number of steps applied (0: "no change").
  // Up: all pending, or the next n.
  core::Result<int> Up(std::optional<int> n, const StepReporter& report);
  // Down: n steps, or all of them (nullopt).
  core::Result<int> Down(std::optional<int> n, const StepReporter& report);
  // Up or down until the version is `version` (one of the known versions).
  core::Result<int> Goto(int64_t version, const StepReporter& report);
  // Records `version` (-1: none) as clean without running anything.
  core::Status Force(int64_t version);

 private:
  struct Impl;
  explicit Migrator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// For `serve`: OK when the schema is exactly LatestVersion() and clean;
// otherwise InvalidArgument saying which `kvctl migrate` command to run.
// Unavailable when the database cannot be reached.
core::Status CheckSchema(const std::string& dsn, std::chrono::milliseconds connect_timeout);

}  // namespace kvctl::pg
