// The PostgreSQL backend's leases, in SQL (SPEC §6; schema in
// migrations.h). Internal to lib/pg.
//
// Every call runs inside the committer's write transaction, which holds
// the kv_meta lock (pg_store.h): grants and ends take revisions like any
// write, and a lease cannot end between a put's check that it exists and
// the put's commit. Keepalives, shows and lists ride in the same
// transactions (they are cheap and batch with the writes around them), so
// no lease call ever blocks a server's event loop on the database.
//
// Deadlines are on the database's clock (now() of the transaction), which
// every server shares: a lease kept alive through one server is alive for
// all. The one server that expires leases is chosen by lease_expiry.h.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "lib/core/change_log.h"
#include "lib/core/lease.h"
#include "lib/core/log_format.h"

namespace kvctl::pg {

// Prepares the statements below on a connection.
void PrepareLeaseStatements(pqxx::connection& c);

// Grants a lease at `revision`: `id`, or when it is 0 a new random id
// (below 2^53, as the file store draws them; one in use is drawn again),
// its deadline now + TTL. Adds the grant to `changes`. Nothing when the
// chosen `id` is alive (nothing written).
std::optional<core::LeaseInfo> GrantLease(pqxx::work& tx, int64_t ttl_seconds, uint64_t id, uint64_t revision,
                                          std::mt19937_64& ids, std::vector<core::Change>& changes);

// Whether lease `id` is alive.
bool LeaseExists(pqxx::work& tx, uint64_t id);

// Ends lease `id` at `revision` with the deletes of its keys (one
// revision), adding the end and the deletes (in key order) to `changes`.
// An expiry ends it only if its deadline has passed (a keepalive may have
// moved it since the expirer looked). False when nothing ended: no such
// lease, or not due.
bool EndLease(pqxx::work& tx, uint64_t id, core::LeaseEndReason reason, uint64_t revision,
              std::vector<core::Change>& changes);

// Renews lease `id` from now; nullopt when it is not alive.
std::optional<core::LeaseInfo> KeepLeaseAlive(pqxx::work& tx, uint64_t id);

// Lease `id` with its TTL left and its keys; nullopt when it is not alive.
std::optional<core::LeaseInfo> ShowLease(pqxx::work& tx, uint64_t id);

// Every lease alive, by id.
std::vector<core::LeaseInfo> ListLeases(pqxx::work& tx);

// How many leases are alive, as of `tx`'s snapshot.
uint64_t CountLeases(pqxx::transaction_base& tx);

}  // namespace kvctl::pg
