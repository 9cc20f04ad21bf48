// kv_log's rows (migrations.h) as the records of a file log (log_format.h),
// and back: every reader of kv_log hands on a lease's grant or end as the
// LEASE GRANT or LEASE END record a file log holds, so replay, the
// servers' apply path and a copy between backends treat both alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <pqxx/pqxx>

#include "lib/core/change_log.h"
#include "lib/core/log_format.h"

namespace kvctl::pg {

// kv_log.kind.
enum class LogKind : int { kPut = 1, kDelete = 2, kLeaseGrant = 4, kLeaseRevoked = 5, kLeaseExpired = 6 };

// The columns a reader of kv_log selects, in this order, for ChangeOfRow.
inline constexpr std::string_view kLogColumns = "revision, kind, key, value, create_revision, version, lease, ttl";

// A row read as kLogColumns, starting at column `first`. A put carries its
// metadata; a lease row becomes its LEASE GRANT or LEASE END.
core::Change ChangeOfRow(const pqxx::row& row, int first = 0);

// What a lease record (LEASE GRANT or END) is as a kv_log row; nullopt for
// a record that is not a sound lease record.
struct LeaseRow {
  LogKind kind = LogKind::kLeaseGrant;
  uint64_t id = 0;
  int64_t ttl = 0;  // a grant's
};
std::optional<LeaseRow> LeaseRowOf(const core::LogRecord& record);

// The kind of a lease end.
LogKind LeaseEndKind(core::LeaseEndReason reason);

}  // namespace kvctl::pg
