#include "lib/pg/log_rows.h"

namespace kvctl::pg {
namespace {

std::string Text(const pqxx::field& f) {
  pqxx::binarystring b(f);
  return std::string(b.get(), b.size());
}

}  // namespace

core::Change ChangeOfRow(const pqxx::row& row, int first) {
  core::Change c;
  c.revision = row[first].as<uint64_t>();
  const auto kind = static_cast<LogKind>(row[first + 1].as<int>());
  const uint64_t lease = row[first + 6].as<uint64_t>();
  switch (kind) {
    case LogKind::kPut:
    case LogKind::kDelete:
      c.type = kind == LogKind::kPut ? core::RecordType::kPut : core::RecordType::kDelete;
      c.key = Text(row[first + 2]);
      if (!row[first + 3].is_null()) c.value = Text(row[first + 3]);
      // The metadata the writer's transaction derived from kv_state:
      // applied as it is, so every server agrees with the database.
      if (c.type == core::RecordType::kPut) {
        c.meta = {row[first + 4].as<uint64_t>(), row[first + 5].as<uint64_t>(), lease};
      }
      break;
    case LogKind::kLeaseGrant:
      c.type = core::RecordType::kLeaseGrant;
      c.key = core::LeaseGrantKey(lease);
      c.value = core::LeaseTtlValue(row[first + 7].as<int64_t>());
      break;
    case LogKind::kLeaseRevoked:
    case LogKind::kLeaseExpired:
      c.type = core::RecordType::kLeaseEnd;
      c.key = core::LeaseEndKey(lease, kind == LogKind::kLeaseRevoked ? core::LeaseEndReason::kRevoked
                                                                      : core::LeaseEndReason::kExpired);
      break;
  }
  return c;
}

std::optional<LeaseRow> LeaseRowOf(const core::LogRecord& record) {
  core::LeaseRecord lease;
  if (core::ChangesKey(record.type) || !core::DecodeLeaseRecord(record, &lease)) return std::nullopt;
  if (record.type == core::RecordType::kLeaseGrant) return LeaseRow{LogKind::kLeaseGrant, lease.id, lease.ttl};
  return LeaseRow{LeaseEndKind(lease.reason), lease.id, 0};
}

LogKind LeaseEndKind(core::LeaseEndReason reason) {
  return reason == core::LeaseEndReason::kRevoked ? LogKind::kLeaseRevoked : LogKind::kLeaseExpired;
}

}  // namespace kvctl::pg
