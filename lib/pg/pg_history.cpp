#include "lib/pg/pg_history.h"

#include <optional>

#include <fmt/format.h>

#include "lib/pg/connection.h"
#include "lib/pg/log_rows.h"
#include "lib/pg/migrator.h"

namespace kvctl::pg {
namespace {

constexpr int kFetchRows = 10000;

core::Result<std::unique_ptr<pqxx::connection>> Open(const PgDatabase& db) {
  if (core::Status s = CheckSchema(db.dsn, db.connect_timeout); !s.ok()) return s;
  core::Result<std::string> conninfo = ConnInfo(db.dsn, db.connect_timeout);
  if (!conninfo) return conninfo.error();
  return Connect(*conninfo);
}

pqxx::binarystring Bytes(std::string_view s) { return pqxx::binarystring(s.data(), s.size()); }

}  // namespace

core::Status ReadPgHistory(const PgDatabase& db, const core::HistorySink& sink,
                           core::HistoryReport* report) {
  *report = {};
  auto conn = Open(db);
  if (!conn) return conn.error();
  try {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(**conn);
    const pqxx::row meta = tx.exec1("SELECT revision, compacted_revision FROM kv_meta WHERE id = 1");
    const uint64_t last = meta[0].as<uint64_t>();
    const uint64_t covered = meta[1].as<uint64_t>();
    report->covered_revision = covered;
    // A lease's end comes first in its revision (the empty key), then its
    // keys' deletes, as a file log's TRANSACTION record holds them.
    tx.exec(fmt::format(
        "DECLARE kv_history NO SCROLL CURSOR FOR "
        "SELECT {}, count(*) OVER (PARTITION BY revision ORDER BY key "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) "
        "FROM kv_log ORDER BY revision, key",
        kLogColumns));
    const std::string fetch = fmt::format("FETCH {} FROM kv_history", kFetchRows);
    uint64_t previous = covered;
    for (;;) {
      pqxx::result rows = tx.exec(fetch);
      for (const auto& row : rows) {
        const uint64_t revision = row[0].as<uint64_t>();
        const bool from_snapshot = revision <= covered;
        // A transaction's revision has one row per key it wrote.
        if (!from_snapshot && revision != previous + 1 && !(revision == previous && previous > covered)) {
          return core::Status::Corruption(fmt::format(
              "kv_log jumps from revision {} to {} after the compacted revision {}: rows are "
              "missing from the change log",
              previous, revision, covered));
        }
        if (!from_snapshot) previous = revision;
        const core::Change change = ChangeOfRow(row);
        core::LogRecord record;
        record.revision = revision;
        record.type = change.type;
        record.key = change.key;
        record.value = change.value;
        // The writes of a transaction say how many share its revision, as
        // a file log's TRANSACTION record does (in the snapshot, where
        // compaction may have kept only some of them, they are each a
        // key's state).
        const auto writes = row[8].as<uint32_t>();
        if (!from_snapshot && writes > 1) record.txn_writes = writes;
        if (record.type == core::RecordType::kPut) {
          record.has_meta = true;
          record.meta = change.meta;
        }
        ++report->records;
        report->bytes += change.key.size() + change.value.size();
        report->last_revision = std::max(report->last_revision, revision);
        if (core::Status s = sink(record, from_snapshot); !s.ok()) return s;
      }
      if (rows.size() < static_cast<size_t>(kFetchRows)) break;
    }
    if (previous != last && last > covered) {
      return core::Status::Corruption(fmt::format(
          "kv_meta says the last revision is {} but kv_log ends at {}", last, previous));
    }
    report->last_revision = std::max(report->last_revision, covered);
    tx.commit();
  } catch (...) {
    return ClassifyCurrentException("reading kv_log").status;
  }
  return core::Status::Ok();
}

core::HistorySource PgHistorySource(const PgDatabase& db) {
  return [db](const core::HistorySink& sink, core::HistoryReport* report) {
    return ReadPgHistory(db, sink, report);
  };
}

std::string DescribeDatabase(const std::string& dsn) { return DescribeTarget(dsn); }

core::Result<uint64_t> PgCoveredRevision(const PgDatabase& db) {
  auto conn = Open(db);
  if (!conn) return conn.error();
  try {
    pqxx::nontransaction tx(**conn);
    return tx.exec1("SELECT compacted_revision FROM kv_meta WHERE id = 1")[0].as<uint64_t>();
  } catch (...) {
    return ClassifyCurrentException("reading kv_meta").status;
  }
}

core::Result<core::CopyReport> CopyHistoryToPg(const core::HistorySource& source,
                                               const PgDatabase& target, uint64_t to_revision) {
  auto conn = Open(target);
  if (!conn) return conn.error();
  core::CopyReport report;
  try {
    pqxx::work tx(**conn);
    const uint64_t at = tx.exec1("SELECT revision FROM kv_meta WHERE id = 1 FOR UPDATE")[0].as<uint64_t>();
    if (at != 0 || !tx.exec("SELECT 1 FROM kv_log LIMIT 1").empty()) {
      return core::Status::InvalidArgument(fmt::format(
          "--into {}: the database already holds a history (up to revision {}); replay copies only "
          "into a new, migrated, empty database",
          DescribeTarget(target.dsn), at));
    }
    tx.conn().prepare("copy_log",
                      "INSERT INTO kv_log (revision, kind, key, value, create_revision, version, "
                      "lease) VALUES ($1, $2, $3, $4, $5, $6, $7)");
    tx.conn().prepare("copy_put",
                      "INSERT INTO kv_state (key, value, revision, create_revision, version, lease) "
                      "VALUES ($1, $2, $3, $4, $5, $6) "
                      "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
                      "revision = EXCLUDED.revision, create_revision = EXCLUDED.create_revision, "
                      "version = EXCLUDED.version, lease = EXCLUDED.lease");
    tx.conn().prepare("copy_probe", "SELECT create_revision, version, lease FROM kv_state WHERE key = $1");
    tx.conn().prepare("copy_delete", "DELETE FROM kv_state WHERE key = $1");
    // A lease's records: its kv_log row, and the lease alive from its grant
    // to its end (a copied lease starts its TTL at the copy, as a restart
    // gives it its full TTL).
    tx.conn().prepare("copy_lease_log",
                      "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease, ttl) "
                      "VALUES ($1, $2, '\\x'::bytea, 0, 0, $3, $4)");
    tx.conn().prepare("copy_lease_grant",
                      "INSERT INTO kv_lease (id, ttl, granted_revision, deadline) "
                      "VALUES ($1, $2::bigint, $3, now() + $2::bigint * interval '1 second') ON CONFLICT (id) DO UPDATE "
                      "SET ttl = EXCLUDED.ttl, granted_revision = EXCLUDED.granted_revision, "
                      "deadline = EXCLUDED.deadline");
    tx.conn().prepare("copy_lease_end", "DELETE FROM kv_lease WHERE id = $1");
    core::Status read = source(
        [&](const core::LogRecord& r, bool from_snapshot) -> core::Status {
          if (!from_snapshot && to_revision != 0 && r.revision > to_revision) return core::Status::Ok();
          const int64_t revision = static_cast<int64_t>(r.revision);
          if (!core::ChangesKey(r.type)) {
            const std::optional<LeaseRow> lease = LeaseRowOf(r);
            if (!lease) {
              return core::Status::Corruption(
                  fmt::format("revision {}: a lease record that does not decode", r.revision));
            }
            const auto id = static_cast<int64_t>(lease->id);
            const int kind = static_cast<int>(lease->kind);
            if (lease->kind == LogKind::kLeaseGrant) {
              tx.exec_prepared("copy_lease_log", revision, kind, id, lease->ttl);
              tx.exec_prepared("copy_lease_grant", id, lease->ttl, revision);
            } else {
              tx.exec_prepared("copy_lease_log", revision, kind, id, nullptr);
              tx.exec_prepared("copy_lease_end", id);
            }
            ++report.records_written;
            report.last_revision = r.revision;
            return core::Status::Ok();
          }
          const bool put = r.type == core::RecordType::kPut;
          if (put) {
            // A record without metadata (an older log or snapshot) gets it
            // as replay derives it: from the key as the copy left it so far
            // (a snapshot's keys are each new).
            core::KeyMeta meta = r.meta;
            if (!r.has_meta) {
              std::optional<core::KeyMeta> before;
              if (!from_snapshot) {
                const pqxx::result row = tx.exec_prepared("copy_probe", Bytes(r.key));
                if (!row.empty()) {
                  before = core::KeyMeta{row[0][0].as<uint64_t>(), row[0][1].as<uint64_t>(),
                                         row[0][2].as<uint64_t>()};
                }
              }
              meta = core::KeyMeta::AfterPut(before ? &*before : nullptr, r.revision, 0);
            }
            const auto cr = static_cast<int64_t>(meta.create_revision);
            const auto version = static_cast<int64_t>(meta.version);
            const auto lease = static_cast<int64_t>(meta.lease);
            tx.exec_prepared("copy_log", revision, 1, Bytes(r.key), Bytes(r.value), cr, version, lease);
            tx.exec_prepared("copy_put", Bytes(r.key), Bytes(r.value), revision, cr, version, lease);
          } else {
            tx.exec_prepared("copy_log", revision, 2, Bytes(r.key), nullptr, 0, 0, 0);
            tx.exec_prepared("copy_delete", Bytes(r.key));
          }
          ++report.records_written;
          report.last_revision = r.revision;
          return core::Status::Ok();
        },
        &report.source);
    if (!read.ok()) return read;
    report.last_revision = std::max(report.last_revision, report.source.covered_revision);
    tx.exec_params(
        "UPDATE kv_meta SET revision = $1, compacted_revision = $2 WHERE id = 1",
        static_cast<int64_t>(report.last_revision),
        static_cast<int64_t>(report.source.covered_revision));
    tx.exec_params("SELECT pg_notify('kvctl_changes', $1)", std::to_string(report.last_revision));
    tx.commit();
  } catch (...) {
    return ClassifyCurrentException("copying the history into PostgreSQL").status;
  }
  return report;
}

}  // namespace kvctl::pg
