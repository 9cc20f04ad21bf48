// The PostgreSQL schema of kvctl, as numbered migrations compiled into the
// binary (golang-migrate's model: version N has an up and a down script).
//
// The schema (after the last migration):
//   kv_meta   one row (id = 1): `revision`, the last revision handed out and
//             committed; `compacted_revision` C: up to C, kv_log keeps only
//             each key's last change if it is a put (the live keys as of C,
//             like a file snapshot); after C it is complete.
//   kv_state  one row per live key: key, value, revision of its last change,
//             and its metadata (SPEC §6): create_revision, version, lease.
//   kv_log    the ordered change log: revision, kind (1 put, 2 delete), key,
//             value (null for a delete), committed_at, and a PUT's metadata
//             after it (create_revision, version, lease; zeros for a
//             delete); keyed by (revision, key): a transaction's writes are
//             one row per key at its one revision, read in (revision, key)
//             order; indexed by (key, revision) for compaction and for
//             watches of one key. Leases' grants and ends are rows too:
//             kind 4 (grant: `lease` the id, `ttl`), 5 (revoked), 6
//             (expired), with the empty key; an end's deletes share its
//             revision.
//   kv_lease  the leases alive: id, ttl (seconds), granted_revision, and
//             deadline on the database's clock (keepalives move it).
// Keys and values are bytea: arbitrary bytes, NUL included.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kvctl::pg {

struct Migration {
  int64_t version = 0;
  std::string_view name;
  std::string_view up;    // SQL, run in one transaction
  std::string_view down;  // SQL, run in one transaction
};

// In increasing version order.
const std::vector<Migration>& Migrations();

// The version `kvctl serve` needs: the last one.
int64_t LatestVersion();

}  // namespace kvctl::pg
