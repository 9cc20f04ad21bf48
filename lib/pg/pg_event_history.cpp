#include "lib/pg/pg_event_history.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "lib/pg/connection.h"

namespace kvctl::pg {
namespace {

// One query per shape of filter, so that each gets a plan that uses its
// predicate: one key reads the (key, revision) index; a prefix is a byte
// range of keys (with no upper end when the prefix is empty or all 0xff).
// $1 from, $2 to, $3 rows, $4 bytes, $5 (and $6) the key bounds.
//
// Rows come in (revision, key) order: a transaction's revision has one row
// per key it wrote. Only puts and deletes are events (kind 1 and 2; a
// lease's grant or end is not, its keys' deletes are). The window sums the bytes of the rows in that order, so the outer
// filter keeps the rows that start before the byte bound (always the
// first): with the LIMIT, PostgreSQL stops reading at the row bound and
// sends nothing past the byte bound. The compacted revision comes from the
// same snapshot as the rows; the join yields one row with nulls when none
// match (or when `from` was compacted away).
std::string WatchQuery(std::string_view key_predicate) {
  return fmt::format(
      "SELECT m.compacted_revision, l.revision, l.kind, l.key, l.value, l.create_revision, "
      "l.version, l.lease, l.upto "
      "FROM kv_meta m LEFT JOIN LATERAL ("
      "SELECT * FROM ("
      "SELECT revision, kind, key, value, create_revision, version, lease, "
      "sum(octet_length(key) + coalesce(octet_length(value), 0)) "
      "OVER (ORDER BY revision, key ROWS UNBOUNDED PRECEDING) AS upto, "
      "octet_length(key) + coalesce(octet_length(value), 0) AS size "
      "FROM kv_log WHERE revision >= $1 AND revision <= $2 AND kind IN (1, 2) AND {} "
      "AND $1 > m.compacted_revision "
      "ORDER BY revision, key LIMIT $3) w "
      "WHERE w.upto - w.size < $4) l ON true "
      "WHERE m.id = 1 ORDER BY l.revision, l.key",
      key_predicate);
}

constexpr const char* kByKey = "kv_watch_key";
constexpr const char* kByRange = "kv_watch_range";
constexpr const char* kFromKey = "kv_watch_from";

pqxx::binarystring Bytes(std::string_view s) { return pqxx::binarystring(s.data(), s.size()); }

std::string ToString(const pqxx::field& f) {
  pqxx::binarystring b(f);
  return std::string(b.get(), b.size());
}

class PgReader final : public core::EventHistory::Reader {
 public:
  PgReader(PgEventHistory& history, ConnectionPool& pool, const core::WatchFilter& filter)
      : history_(history), pool_(pool), filter_(filter) {
    if (filter_.prefix) upper_ = PrefixSuccessor(filter_.key);
  }

  core::Result<uint64_t> Read(uint64_t from, uint64_t to, size_t max_bytes,
                              std::vector<core::WatchEvent>* out) override {
    if (from < history_.Floor()) return Compacted(from);
    if (from > to) return to + 1;
    auto lease = pool_.Acquire();
    if (!lease) return lease.error();
    const size_t first = out->size();
    Rows read;
    uint64_t next = to + 1;  // where the watcher goes on
    try {
      read = Query(**lease, from, to, PgEventHistory::kRowsPerRead,
                   static_cast<int64_t>(std::max<size_t>(max_bytes, 1)), out);
      // A bound cut the range short (the row bound, or the rows summed
      // past max_bytes) and may have cut a transaction's revision in two:
      // a watcher gets all of a revision's events or none, so the last
      // revision given is left for the next read, unless it is the only
      // one, which is then read whole (a transaction is bounded).
      const bool cut = from > read.compacted &&
                       (read.given == static_cast<size_t>(PgEventHistory::kRowsPerRead) ||
                        (read.given > 0 && read.upto >= max_bytes));
      if (cut && out->at(first).revision == read.last) {
        const uint64_t only = read.last;
        out->resize(first);
        read = Query(**lease, only, only, std::numeric_limits<int64_t>::max(),
                     std::numeric_limits<int64_t>::max(), out);
        next = only + 1;
      } else if (cut) {
        while (out->back().revision == read.last) out->pop_back();
        next = read.last;
      }
    } catch (...) {
      PgError e = ClassifyCurrentException("reading kv_log for a watch");
      if (e.connection_lost) lease->Discard();
      return e.status;
    }
    history_.NoteCompacted(read.compacted);
    if (from <= read.compacted) {
      out->resize(first);
      return Compacted(from);
    }
    return next;
  }

 private:
  struct Rows {
    uint64_t compacted = 0;  // kv_meta.compacted_revision in the same snapshot
    size_t given = 0;
    uint64_t last = 0;  // the revision of the last row given
    uint64_t upto = 0;  // bytes up to and including it
  };

  // One query: rows of [from, to] matching the filter, at most `rows` and
  // about `bytes`, appended to `out` unless `from` was compacted away.
  Rows Query(pqxx::connection& conn, uint64_t from, uint64_t to, int64_t rows, int64_t bytes,
             std::vector<core::WatchEvent>* out) {
    pqxx::result result;
    {
      pqxx::nontransaction tx(conn);
      const auto f = static_cast<int64_t>(from);
      const auto t = static_cast<int64_t>(to);
      if (!filter_.prefix) {
        result = tx.exec_prepared(kByKey, f, t, rows, bytes, Bytes(filter_.key));
      } else if (upper_) {
        result = tx.exec_prepared(kByRange, f, t, rows, bytes, Bytes(filter_.key), Bytes(*upper_));
      } else {
        result = tx.exec_prepared(kFromKey, f, t, rows, bytes, Bytes(filter_.key));
      }
    }
    Rows r;
    r.compacted = result.at(0)[0].as<uint64_t>();
    if (from <= r.compacted) return r;
    for (const auto& row : result) {
      if (row[1].is_null()) continue;  // nothing matched
      core::WatchEvent e;
      e.revision = row[1].as<uint64_t>();
      e.type = row[2].as<int>() == 1 ? core::RecordType::kPut : core::RecordType::kDelete;
      e.key = ToString(row[3]);
      if (!row[4].is_null()) e.value = ToString(row[4]);
      if (e.type == core::RecordType::kPut) {
        e.meta = {row[5].as<uint64_t>(), row[6].as<uint64_t>(), row[7].as<uint64_t>()};
      }
      r.last = e.revision;
      r.upto = row[8].as<uint64_t>();
      out->push_back(std::move(e));
      ++r.given;
    }
    return r;
  }

  core::Status Compacted(uint64_t revision) const {
    return core::Status::Compacted(fmt::format(
        "revision {} is no longer in kv_log's history (it starts at {})", revision, history_.Floor()));
  }

  PgEventHistory& history_;
  ConnectionPool& pool_;
  const core::WatchFilter filter_;
  std::optional<std::string> upper_;  // a prefix's exclusive upper bound, if any
};

}  // namespace

std::optional<std::string> PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty() && static_cast<unsigned char>(s.back()) == 0xff) s.pop_back();
  if (s.empty()) return std::nullopt;
  s.back() = static_cast<char>(static_cast<unsigned char>(s.back()) + 1);
  return s;
}

void PgEventHistory::Prepare(pqxx::connection& c) {
  c.prepare(kByKey, WatchQuery("key = $5"));
  c.prepare(kByRange, WatchQuery("key >= $5 AND key < $6"));
  c.prepare(kFromKey, WatchQuery("key >= $5"));
}

void PgEventHistory::NoteCompacted(uint64_t compacted_revision) {
  uint64_t seen = compacted_.load(std::memory_order_relaxed);
  while (compacted_revision > seen &&
         !compacted_.compare_exchange_weak(seen, compacted_revision, std::memory_order_release,
                                           std::memory_order_relaxed)) {
  }
}

std::unique_ptr<core::EventHistory::Reader> PgEventHistory::OpenReader(const core::WatchFilter& filter) {
  return std::make_unique<PgReader>(*this, pool_, filter);
}

}  // namespace kvctl::pg
