#include "lib/pg/pg_leases.h"

#include <algorithm>

#include "lib/pg/log_rows.h"

namespace kvctl::pg {
namespace {

std::string Text(const pqxx::field& f) {
  pqxx::binarystring b(f);
  return std::string(b.get(), b.size());
}

// Seconds left until a deadline, rounded up, as the file store says them.
constexpr const char* kRemaining = "greatest(0, ceil(extract(epoch FROM deadline - now())))::bigint";

}  // namespace

void PrepareLeaseStatements(pqxx::connection& c) {
  // A grant: the lease row and its kv_log row (kind 4, the empty key), or
  // nothing when the id is taken.
  c.prepare("kv_lease_grant",
            "WITH g AS (INSERT INTO kv_lease (id, ttl, granted_revision, deadline) "
            "VALUES ($1, $2::bigint, $3, now() + $2::bigint * interval '1 second') ON CONFLICT (id) DO NOTHING RETURNING id) "
            "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease, ttl) "
            "SELECT $3, 4, '\\x'::bytea, 0, 0, id, $2 FROM g RETURNING lease");
  c.prepare("kv_lease_exists", "SELECT 1 FROM kv_lease WHERE id = $1");
  // An end: the lease row goes (an expiry only if its deadline passed),
  // its kv_log row (kind $3) is written; then its keys' deletes.
  c.prepare("kv_lease_end",
            "WITH e AS (DELETE FROM kv_lease WHERE id = $1 AND ($4 OR deadline <= now()) RETURNING id) "
            "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease) "
            "SELECT $2, $3, '\\x'::bytea, 0, 0, id FROM e RETURNING lease");
  c.prepare("kv_lease_delete_keys",
            "WITH d AS (DELETE FROM kv_state WHERE lease = $1 RETURNING key) "
            "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease) "
            "SELECT $2, 2, key, 0, 0, 0 FROM d RETURNING key");
  c.prepare("kv_lease_keepalive",
            "UPDATE kv_lease SET deadline = now() + ttl * interval '1 second' WHERE id = $1 RETURNING ttl");
  c.prepare("kv_lease_show", std::string("SELECT ttl, ") + kRemaining + " FROM kv_lease WHERE id = $1");
  c.prepare("kv_lease_keys", "SELECT key FROM kv_state WHERE lease = $1 ORDER BY key");
  c.prepare("kv_lease_list", std::string("SELECT id, ttl, ") + kRemaining + " FROM kv_lease ORDER BY id");
  c.prepare("kv_lease_count", "SELECT count(*) FROM kv_lease");
}

std::optional<core::LeaseInfo> GrantLease(pqxx::work& tx, int64_t ttl_seconds, uint64_t chosen, uint64_t revision,
                                          std::mt19937_64& ids, std::vector<core::Change>& changes) {
  for (;;) {
    const uint64_t id = chosen != 0 ? chosen : ids() & core::kMaxLeaseId;
    if (id == 0) continue;
    const pqxx::result granted = tx.exec_prepared("kv_lease_grant", static_cast<int64_t>(id), ttl_seconds,
                                                  static_cast<int64_t>(revision));
    if (granted.empty()) {
      if (chosen != 0) return std::nullopt;
      continue;  // the id is in use: draw another
    }
    changes.push_back({revision, core::RecordType::kLeaseGrant, core::LeaseGrantKey(id),
                       core::LeaseTtlValue(ttl_seconds), {}});
    return core::LeaseInfo{id, ttl_seconds, ttl_seconds, {}};
  }
}

bool LeaseExists(pqxx::work& tx, uint64_t id) {
  return !tx.exec_prepared("kv_lease_exists", static_cast<int64_t>(id)).empty();
}

bool EndLease(pqxx::work& tx, uint64_t id, core::LeaseEndReason reason, uint64_t revision,
              std::vector<core::Change>& changes) {
  const auto lease = static_cast<int64_t>(id);
  const auto rev = static_cast<int64_t>(revision);
  const bool any_time = reason == core::LeaseEndReason::kRevoked;
  if (tx.exec_prepared("kv_lease_end", lease, rev, static_cast<int>(LeaseEndKind(reason)), any_time).empty()) {
    return false;
  }
  changes.push_back({revision, core::RecordType::kLeaseEnd, core::LeaseEndKey(id, reason), {}, {}});
  const pqxx::result gone = tx.exec_prepared("kv_lease_delete_keys", lease, rev);
  std::vector<std::string> keys;
  keys.reserve(gone.size());
  for (const auto& row : gone) keys.push_back(Text(row[0]));
  // In key order, as every other server reads them from kv_log.
  std::sort(keys.begin(), keys.end());
  for (std::string& key : keys) changes.push_back({revision, core::RecordType::kDelete, std::move(key), {}, {}});
  return true;
}

std::optional<core::LeaseInfo> KeepLeaseAlive(pqxx::work& tx, uint64_t id) {
  const pqxx::result row = tx.exec_prepared("kv_lease_keepalive", static_cast<int64_t>(id));
  if (row.empty()) return std::nullopt;
  const auto ttl = row[0][0].as<int64_t>();
  return core::LeaseInfo{id, ttl, ttl, {}};
}

std::optional<core::LeaseInfo> ShowLease(pqxx::work& tx, uint64_t id) {
  const pqxx::result row = tx.exec_prepared("kv_lease_show", static_cast<int64_t>(id));
  if (row.empty()) return std::nullopt;
  core::LeaseInfo info{id, row[0][0].as<int64_t>(), row[0][1].as<int64_t>(), {}};
  for (const auto& key : tx.exec_prepared("kv_lease_keys", static_cast<int64_t>(id))) {
    info.keys.push_back(Text(key[0]));
  }
  return info;
}

std::vector<core::LeaseInfo> ListLeases(pqxx::work& tx) {
  std::vector<core::LeaseInfo> out;
  for (const auto& row : tx.exec_prepared("kv_lease_list")) {
    out.push_back({row[0].as<uint64_t>(), row[1].as<int64_t>(), row[2].as<int64_t>(), {}});
  }
  return out;
}

uint64_t CountLeases(pqxx::transaction_base& tx) { return tx.exec_prepared1("kv_lease_count")[0].as<uint64_t>(); }

}  // namespace kvctl::pg
