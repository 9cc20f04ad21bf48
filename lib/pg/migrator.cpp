#include "lib/pg/migrator.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "lib/pg/connection.h"
#include "lib/pg/migrations.h"

namespace kvctl::pg {
namespace {

using Clock = std::chrono::steady_clock;

// The advisory lock key of `kvctl migrate` (advisory locks are per
// database): the bytes "kvctlmig" as a bigint.
constexpr int64_t kMigrateLockKey = 0x6b7663746c6d6967;

constexpr std::string_view kCreateVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)";

std::string Show(std::optional<int64_t> version) {
  return version ? std::to_string(*version) : "none";
}

// Index of `version` in Migrations(), or -1 for none; nullopt if unknown.
std::optional<int> IndexOf(std::optional<int64_t> version) {
  if (!version) return -1;
  const auto& all = Migrations();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].version == *version) return static_cast<int>(i);
  }
  return std::nullopt;
}

core::Status UnknownVersion(int64_t version) {
  return core::Status::InvalidArgument(fmt::format(
      "the database is at schema version {}, which this kvctl does not know (it knows 1 to "
      "{}): use the kvctl that applied it, or `kvctl migrate force V` if the schema is "
      "really at a version V this kvctl knows",
      version, LatestVersion()));
}

core::Result<SchemaVersion> ReadVersion(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  pqxx::result exists = tx.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists[0][0].as<bool>()) return SchemaVersion{};
  pqxx::result rows = tx.exec("SELECT version, dirty FROM schema_migrations LIMIT 1");
  if (rows.empty()) return SchemaVersion{};
  return SchemaVersion{rows[0][0].as<int64_t>(), rows[0][1].as<bool>()};
}

// Writes `version` (nullopt: none) inside `tx`, as golang-migrate does:
// empty the table, then insert the one row.
void WriteVersion(pqxx::work& tx, std::optional<int64_t> version) {
  tx.exec("TRUNCATE schema_migrations");
  if (version) tx.exec_params("INSERT INTO schema_migrations (version, dirty) VALUES ($1, false)", *version);
}

}  // namespace

struct Migrator::Impl {
  std::unique_ptr<pqxx::connection> conn;
  MigrateOptions options;
  bool locked = false;

  ~Impl() {
    if (locked && conn) {
      try {
        pqxx::nontransaction tx(*conn);
        tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrateLockKey);
      } catch (const std::exception&) {
        // Closing the connection releases the lock anyway.
      }
    }
  }

  // Takes the advisory lock (waiting up to the lock timeout) and makes sure
  // schema_migrations exists.
  core::Status Lock() {
    if (locked) return core::Status::Ok();
    const auto deadline = Clock::now() + options.lock_timeout;
    for (;;) {
      pqxx::nontransaction tx(*conn);
      if (tx.exec_params("SELECT pg_try_advisory_lock($1)", kMigrateLockKey)[0][0].as<bool>()) break;
      if (Clock::now() >= deadline) {
        return core::Status::Busy(fmt::format(
            "another kvctl migrate is running on this database (waited {} ms for its lock, "
            "postgres.migrate_lock_timeout); try again when it has finished",
            options.lock_timeout.count()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    locked = true;
    pqxx::nontransaction tx(*conn);
    tx.exec(std::string(kCreateVersionTable));
    return core::Status::Ok();
  }

  // Under the lock: the current version, refusing a dirty one.
  core::Result<std::optional<int64_t>> CleanVersion() {
    core::Result<SchemaVersion> v = ReadVersion(*conn);
    if (!v) return v.error();
    if (v->dirty) {
      return core::Status::FailedPrecondition(fmt::format(
          "dirty database version {}: a migration failed halfway outside kvctl; fix the schema "
          "by hand, then run `kvctl migrate force V` with the version it is really at",
          Show(v->version)));
    }
    return v->version;
  }

  // Runs one step (index `i` up, or index `i` down) in one transaction.
  void Step(int i, bool up, const StepReporter& report) {
    const Migration& m = Migrations()[static_cast<size_t>(i)];
    const auto started = Clock::now();
    pqxx::work tx(*conn);
    tx.exec(std::string(up ? m.up : m.down));
    std::optional<int64_t> now_at;
    if (up) {
      now_at = m.version;
    } else if (i > 0) {
      now_at = Migrations()[static_cast<size_t>(i - 1)].version;
    }
    WriteVersion(tx, now_at);
    tx.commit();
    if (report) {
      report({m.version, std::string(m.name), up,
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started)});
    }
  }

  // Moves from the current version (index `at`, -1: none) to the index
  // `target(at)` returns.
  core::Result<int> MoveTo(const std::function<int(int)>& target_of, const StepReporter& report) {
    core::Result<std::optional<int64_t>> current = CleanVersion();
    if (!current) return current.error();
    std::optional<int> at = IndexOf(*current);
    if (!at) return UnknownVersion(**current);
    const int target = target_of(*at);
    int steps = 0;
    for (int i = *at; i < target; ++i, ++steps) Step(i + 1, true, report);
    for (int i = *at; i > target; --i, ++steps) Step(i, false, report);
    return steps;
  }

  template <typename Fn>
  auto Guard(std::string_view doing, Fn fn) -> decltype(fn()) {
    try {
      if (core::Status s = Lock(); !s.ok()) return s;
      return fn();
    } catch (...) {
      PgError e = ClassifyCurrentException(doing);
      return e.status;
    }
  }
};

Migrator::Migrator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Migrator::~Migrator() = default;

core::Result<std::unique_ptr<Migrator>> Migrator::Connect(const MigrateOptions& options) {
  core::Result<std::string> conninfo = ConnInfo(options.dsn, options.connect_timeout);
  if (!conninfo) return conninfo.error();
  auto conn = pg::Connect(*conninfo);
  if (!conn) return conn.error();
  auto impl = std::make_unique<Impl>();
  impl->conn = std::move(*conn);
  impl->options = options;
  return std::unique_ptr<Migrator>(new Migrator(std::move(impl)));
}

core::Result<SchemaVersion> Migrator::Version() {
  try {
    return ReadVersion(*impl_->conn);
  } catch (...) {
    return ClassifyCurrentException("reading schema_migrations").status;
  }
}

core::Result<int> Migrator::Up(std::optional<int> n, const StepReporter& report) {
  const int last = static_cast<int>(Migrations().size()) - 1;
  return impl_->Guard("migrate up", [&] {
    return impl_->MoveTo([&](int at) { return n ? std::min(last, at + *n) : last; }, report);
  });
}

core::Result<int> Migrator::Down(std::optional<int> n, const StepReporter& report) {
  return impl_->Guard("migrate down", [&] {
    return impl_->MoveTo([&](int at) { return n ? std::max(-1, at - *n) : -1; }, report);
  });
}

core::Result<int> Migrator::Goto(int64_t version, const StepReporter& report) {
  std::optional<int> target = IndexOf(version);
  if (!target) {
    return core::Status::InvalidArgument(fmt::format(
        "there is no migration {} in this kvctl (it knows 1 to {}; to remove every migration "
        "use `kvctl migrate down --all`)",
        version, LatestVersion()));
  }
  return impl_->Guard("migrate goto",
                      [&] { return impl_->MoveTo([&](int) { return *target; }, report); });
}

core::Status Migrator::Force(int64_t version) {
  if (version < -1) {
    return core::Status::InvalidArgument(
        fmt::format("force needs a version of -1 (none) or more, got {}", version));
  }
  return impl_->Guard("migrate force", [&]() -> core::Status {
    pqxx::work tx(*impl_->conn);
    WriteVersion(tx, version == -1 ? std::nullopt : std::optional<int64_t>(version));
    tx.commit();
    return core::Status::Ok();
  });
}

core::Status CheckSchema(const std::string& dsn, std::chrono::milliseconds connect_timeout) {
  auto migrator = Migrator::Connect({dsn, connect_timeout, {}});
  if (!migrator) return migrator.error();
  core::Result<SchemaVersion> v = (*migrator)->Version();
  if (!v) return v.error();
  const int64_t want = LatestVersion();
  if (v->dirty) {
    return core::Status::InvalidArgument(fmt::format(
        "the database schema is at a dirty version {} (a migration failed halfway): fix it "
        "by hand, then run `kvctl migrate force V` and `kvctl migrate up`",
        Show(v->version)));
  }
  if (!v->version || *v->version < want) {
    return core::Status::InvalidArgument(fmt::format(
        "the database schema is at version {} but this kvctl needs version {}: run `kvctl "
        "migrate up` with the same --dsn first",
        Show(v->version), want));
  }
  if (*v->version > want) {
    return core::Status::InvalidArgument(fmt::format(
        "the database schema is at version {}, newer than the version {} this kvctl needs: "
        "upgrade kvctl, or run `kvctl migrate goto {}` with the kvctl that applied version {}",
        *v->version, want, want, *v->version));
  }
  return core::Status::Ok();
}

}  // namespace kvctl::pg
