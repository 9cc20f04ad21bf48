#include "lib/pg/pg_store.h"

#include <algorithm>
#include <charconv>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "lib/core/change_log.h"
#include "lib/core/forwarded_writes.h"
#include "lib/core/mem_table.h"
#include "lib/pg/batch_write.h"
#include "lib/pg/connection.h"
#include "lib/pg/lease_expiry.h"
#include "lib/pg/log_rows.h"
#include "lib/pg/migrator.h"
#include "lib/pg/pg_event_history.h"
#include "lib/pg/pg_leases.h"
#include "lib/pg/pool.h"
#include "lib/pg/write_forwarder.h"
#include "lib/pg/writer_election.h"

namespace kvctl::pg {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kChannel = "kvctl_changes";
constexpr size_t kMaxBatchOps = 256;       // writes per transaction
constexpr int64_t kCatchUpRows = 10000;    // kv_log rows per catch-up query
constexpr int64_t kMaxInTxnCatchUp = 1000; // further behind: reload after commit
constexpr milliseconds kListenWait{250};   // how often the listener checks for stop
constexpr milliseconds kPollEvery{1000};   // catch up even without a notification
constexpr milliseconds kFirstBackoff{100};
// A forwarded write the writer committed is answered once this server has
// applied it (read-your-writes); if it cannot catch up for this long (its
// own database connection is down), it answers without.
constexpr milliseconds kAwaitAppliedLimit{10000};
constexpr int64_t kReloadFetchRows = 10000;
// The advisory lock key of compaction (per database): "kvctlcmp".
constexpr int64_t kCompactLockKey = 0x6b7663746c636d70;

// Prepared on every connection.
void Prepare(pqxx::connection& c) {
  c.prepare("kv_lock_meta",
            "SELECT revision, compacted_revision FROM kv_meta WHERE id = 1 FOR UPDATE");
  c.prepare("kv_meta", "SELECT revision, compacted_revision FROM kv_meta WHERE id = 1");
  // The changes after $1 up to $2, in whole revisions (a transaction's
  // revision has one row per key it wrote): the revisions of the first $3
  // rows, with every row of the last of them, so a reader never stops
  // between two rows of one revision.
  c.prepare("kv_read_log",
            fmt::format("SELECT {} FROM kv_log ", kLogColumns) +
            "WHERE revision > $1 AND revision <= (SELECT coalesce(max(revision), $1) FROM ("
            "SELECT revision FROM kv_log WHERE revision > $1 AND revision <= $2 "
            "ORDER BY revision LIMIT $3) f) "
            "ORDER BY revision, key");
  // What a server catches up with: the database's revision and compacted
  // revision, and the changes after $1 as kv_read_log reads them (up to
  // the database's revision, about $2 rows), in one statement, so from one
  // snapshot. One row with null change columns when there is none.
  c.prepare("kv_catch_up",
            "SELECT m.revision, m.compacted_revision, l.* FROM kv_meta m LEFT JOIN LATERAL ("
            + fmt::format("SELECT {} FROM kv_log ", kLogColumns) +
            "WHERE revision > $1 AND revision <= (SELECT coalesce(max(revision), $1) FROM ("
            "SELECT revision FROM kv_log WHERE revision > $1 AND revision <= m.revision "
            "ORDER BY revision LIMIT $2) f)) l ON true "
            "WHERE m.id = 1 ORDER BY l.revision, l.key");
  c.prepare("kv_probe",
            "SELECT revision, value = $2, create_revision, version, lease FROM kv_state "
            "WHERE key = $1");
  // A transaction's reads: a compare's key (locked, though every writer
  // holds the kv_meta lock already), a get, a get or delete of a prefix
  // (the byte range [$1, $2), or every key from $1 when there is no upper
  // end).
  c.prepare("kv_txn_compare",
            "SELECT value, revision, create_revision, version, lease FROM kv_state "
            "WHERE key = $1 FOR UPDATE");
  c.prepare("kv_txn_get",
            "SELECT key, value, revision, create_revision, version, lease FROM kv_state "
            "WHERE key = $1");
  c.prepare("kv_txn_get_range",
            "SELECT key, value, revision, create_revision, version, lease FROM kv_state "
            "WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3");
  c.prepare("kv_txn_get_from",
            "SELECT key, value, revision, create_revision, version, lease FROM kv_state "
            "WHERE key >= $1 ORDER BY key LIMIT $2");
  c.prepare("kv_txn_count_range",
            "SELECT count(*) FROM (SELECT 1 FROM kv_state WHERE key >= $1 AND key < $2 LIMIT $3) c");
  c.prepare("kv_txn_count_from",
            "SELECT count(*) FROM (SELECT 1 FROM kv_state WHERE key >= $1 LIMIT $2) c");
  c.prepare("kv_txn_delete_range",
            "WITH d AS (DELETE FROM kv_state WHERE key >= $1 AND key < $2 RETURNING key) "
            "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease) "
            "SELECT $3, 2, key, 0, 0, 0 FROM d RETURNING key");
  c.prepare("kv_txn_delete_from",
            "WITH d AS (DELETE FROM kv_state WHERE key >= $1 RETURNING key) "
            "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease) "
            "SELECT $2, 2, key, 0, 0, 0 FROM d RETURNING key");
  // $4.. $6: the PUT's metadata (create revision, version, lease).
  c.prepare("kv_put",
            "WITH s AS (INSERT INTO kv_state (key, value, revision, create_revision, version, lease) "
            "VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, revision = EXCLUDED.revision, "
            "create_revision = EXCLUDED.create_revision, version = EXCLUDED.version, "
            "lease = EXCLUDED.lease) "
            "INSERT INTO kv_log (revision, kind, key, value, create_revision, version, lease) "
            "VALUES ($3, 1, $1, $2, $4, $5, $6)");
  c.prepare("kv_delete",
            "WITH s AS (DELETE FROM kv_state WHERE key = $1) "
            "INSERT INTO kv_log (revision, kind, key, create_revision, version, lease) "
            "VALUES ($2, 2, $1, 0, 0, 0)");
  PgEventHistory::Prepare(c);
  PrepareLeaseStatements(c);
  PrepareBatchWrite(c);
  c.prepare("kv_advance",
            "WITH m AS (UPDATE kv_meta SET revision = $1 WHERE id = 1) "
            "SELECT pg_notify('kvctl_changes', $1::text)");
}

pqxx::binarystring Bytes(std::string_view s) { return pqxx::binarystring(s.data(), s.size()); }

std::string ToString(const pqxx::field& f) {
  pqxx::binarystring b(f);
  return std::string(b.get(), b.size());
}

// kv_read_log's rows.
std::vector<core::Change> ToChanges(const pqxx::result& rows) {
  std::vector<core::Change> out;
  out.reserve(rows.size());
  for (const auto& row : rows) out.push_back(ChangeOfRow(row));
  return out;
}

struct OpResult {
  core::Status status;
  uint64_t revision = 0;
  bool existed = false;  // the key existed before
  bool changed = false;
  core::TxnResult txn{};  // a transaction's, when status is OK
  std::vector<core::LeaseInfo> leases{};  // a lease call's answer
};

enum class OpKind {
  kPut,
  kDelete,
  kTxn,
  // Lease calls (pg_leases.h): they ride in the batches of puts and deletes.
  kLeaseGrant,
  kLeaseRevoke,
  kLeaseExpire,
  kLeaseKeepAlive,
  kLeaseShow,
  kLeaseList,
};

struct Op {
  OpKind kind = OpKind::kPut;
  std::string key;
  std::string value;
  core::Precondition pre;
  uint64_t lease = 0;  // a put's lease, or the lease a lease call names
  int64_t ttl = 0;     // a grant's
  // A transaction instead of a put or delete. It runs alone, in a database
  // transaction of its own: its compares and gets must see only what it
  // rests on, and a refusal (a delete-prefix over too many keys, a missing
  // lease) rolls back its writes without touching a batch of others' puts.
  std::optional<core::TxnRequest> txn;
  // Runs once with the outcome: at once when the write is refused before
  // it is queued, else on the committer thread after the transaction.
  std::function<void(const OpResult&)> done;
  OpResult result;
};

core::Result<core::PutOutcome> PutOutcomeOf(const OpResult& r) {
  if (!r.status.ok()) return r.status;
  return core::PutOutcome{r.revision, !r.existed, r.changed};
}

core::Result<core::DeleteOutcome> DeleteOutcomeOf(const OpResult& r) {
  if (!r.status.ok()) return r.status;
  return core::DeleteOutcome{r.existed, r.revision};
}

core::Result<core::TxnResult> TxnOutcomeOf(const OpResult& r) {
  if (!r.status.ok()) return r.status;
  return r.txn;
}

core::KeyMeta MetaOf(const pqxx::row& row, int first) {
  return {row[first].as<uint64_t>(), row[first + 1].as<uint64_t>(), row[first + 2].as<uint64_t>()};
}

// A kv_txn_get* row (key, value, revision, metadata) as a get's item.
core::TxnOpResult::Item ItemOf(const pqxx::row& row) {
  return {ToString(row[0]), ToString(row[1]), row[2].as<uint64_t>(), MetaOf(row, 3)};
}

// Runs an async write and waits for its outcome.
template <typename T, typename Start>
core::Result<T> Await(Start start) {
  std::promise<core::Result<T>> outcome;
  std::future<core::Result<T>> ready = outcome.get_future();
  start([&outcome](core::Result<T> r) { outcome.set_value(std::move(r)); });
  return ready.get();
}

// What the kvctl_changes notifications said, as the listener thread takes
// them (pqxx calls the receiver on the thread that awaits them).
struct Notified {
  uint64_t revision = 0;      // the highest revision a commit announced
  bool other_news = false;    // a notification that is not a revision (a compaction)
};

class Receiver : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& c, std::atomic<uint64_t>* count, Notified* notified)
      : pqxx::notification_receiver(c, std::string(kChannel)), count_(count), notified_(notified) {}
  void operator()(const std::string& payload, int) override {
    ++*count_;
    uint64_t revision = 0;
    const auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), revision);
    if (ec != std::errc() || end != payload.data() + payload.size()) {
      notified_->other_news = true;
    } else {
      notified_->revision = std::max(notified_->revision, revision);
    }
  }

 private:
  std::atomic<uint64_t>* count_;
  Notified* notified_;
};

}  // namespace

struct PgStore::Impl {
  PgStoreOptions options;
  core::Logger& logger;
  std::string conninfo;
  std::string target;  // DescribeTarget(conninfo), for log lines
  ConnectionPool pool;

  // live_bytes(): the live keys' and values' bytes (what etcd's status
  // calls the database size; the file backend counts its log records).
  core::MemTable map{[](size_t key_bytes, size_t value_bytes) -> uint64_t { return key_bytes + value_bytes; }};
  // Serializes changes to `map`; `applied` is the revision map reflects.
  std::mutex apply_mu;
  std::atomic<uint64_t> applied{0};
  // kv_log as the watchers' history (after `pool`, whose connections it
  // borrows; before `hub`, which reads it until it stops).
  PgEventHistory history{pool};
  // Every change applied, from this server or another, in revision order.
  core::WatchHub hub{options.watch, &history, 0};

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<std::shared_ptr<Op>> queue;
  bool stopping = false;  // guarded by queue_mu

  // OK while the database is reachable; else why not.
  mutable std::mutex health_mu;
  std::condition_variable health_cv;
  core::Status down;
  bool stop_listener = false;     // guarded by health_mu
  bool reconnect_wanted = false;  // guarded by health_mu
  bool closed = false;            // guarded by health_mu

  std::thread committer;
  std::thread listener;
  // The listener thread's own connection, and its LISTEN (declared after
  // the connection so it is destroyed first).
  std::unique_ptr<pqxx::connection> listen_conn;
  std::unique_ptr<Receiver> receiver;
  Notified notified;  // the listener thread's

  std::atomic<uint64_t> puts{0}, deletes{0}, batches{0}, committed_changes{0},
      applied_from_others{0}, reloads{0}, reconnects{0}, notifications{0};
  // Leases alive as of `applied` (grants and ends applied, from kv_lease on
  // a reload), and this server's lease calls.
  std::atomic<uint64_t> leases_alive{0}, leases_granted{0}, leases_revoked{0}, leases_expired{0},
      lease_keepalives{0};
  std::mt19937_64 lease_ids{std::random_device{}()};  // the committer's
  // Started last, stopped first: its expiries go through the committer.
  std::unique_ptr<LeaseExpiry> expiry;

  // One writer (pg_store.h): who it is, and this server's forwarded writes
  // the writer committed that wait for this server to apply them, by
  // revision (guarded by apply_mu).
  std::unique_ptr<WriterElection> election;
  struct Awaiting {
    Clock::time_point deadline;
    std::shared_ptr<Op> op;
  };
  std::multimap<uint64_t, Awaiting> awaiting_applied;
  std::unique_ptr<WriteForwarder> forwarder;  // set when forwarding is on
  std::atomic<uint64_t> forwarded{0}, forwards_not_sent{0}, forwards_lost{0};

  Impl(PgStoreOptions o, std::string info)
      : options(std::move(o)),
        logger(options.logger != nullptr ? *options.logger : core::NullLogger()),
        conninfo(std::move(info)),
        target(DescribeTarget(conninfo)),
        pool(PoolOptions{conninfo, options.pool_min, options.pool_max, options.pool_timeout,
                         &Prepare}) {}

  // ------------------------------------------------------------ applying

  // Applies `changes` (revisions in order, whole revisions: a
  // transaction's revision has several, all of which must be there) past
  // `applied`, requiring them to follow on with no gap. Holds apply_mu.
  // False on a gap: the caller must reload.
  bool ApplyLocked(std::vector<core::Change>& changes, bool from_others) {
    std::vector<core::Change> fresh;
    const uint64_t before = applied.load();
    uint64_t at = before;
    for (core::Change& c : changes) {
      if (c.revision <= before) continue;
      // The next revision, or another change of the one just taken.
      if (c.revision != at + 1 && !(c.revision == at && at > before)) return false;
      at = c.revision;
      fresh.push_back(std::move(c));
    }
    if (fresh.empty()) return true;
    map.Apply(fresh);
    for (const core::Change& c : fresh) {
      if (c.type == core::RecordType::kLeaseGrant) ++leases_alive;
      if (c.type == core::RecordType::kLeaseEnd && leases_alive > 0) --leases_alive;
    }
    if (from_others) applied_from_others += fresh.size();
    applied = at;
    // Under apply_mu, so watchers get the changes in revision order.
    if (hub.watching()) {
      std::vector<core::WatchEvent> events;
      events.reserve(fresh.size());
      for (const core::Change& c : fresh) {
        if (!core::ChangesKey(c.type)) continue;  // a lease's grant or end
        // What the table derived for a change that did not carry it.
        core::KeyMeta meta = c.meta;
        if (c.type == core::RecordType::kPut && meta.version == 0) {
          if (auto item = map.Find(c.key); item && item->revision == c.revision) meta = item->meta;
        }
        events.push_back({c.revision, c.type, c.key, c.value, meta});
      }
      hub.Publish(std::move(events), at);
    } else {
      hub.Advance(at);
    }
    return true;
  }

  // Replaces the map with kv_state as of one snapshot. Holds apply_mu.
  void ReloadLocked(pqxx::connection& conn) {
    const auto started = Clock::now();
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    const pqxx::row meta = tx.exec_prepared1("kv_meta");
    const uint64_t revision = meta[0].as<uint64_t>();
    const uint64_t compacted = meta[1].as<uint64_t>();
    core::MemTable::Map state;
    tx.exec(
        "DECLARE kv_reload NO SCROLL CURSOR FOR "
        "SELECT key, value, revision, create_revision, version, lease FROM kv_state");
    const std::string fetch = fmt::format("FETCH {} FROM kv_reload", kReloadFetchRows);
    for (;;) {
      pqxx::result rows = tx.exec(fetch);
      for (const auto& row : rows) {
        state.emplace(ToString(row[0]),
                      core::Entry{ToString(row[1]), row[2].as<uint64_t>(),
                                  {row[3].as<uint64_t>(), row[4].as<uint64_t>(), row[5].as<uint64_t>()}});
      }
      if (rows.size() < static_cast<size_t>(kReloadFetchRows)) break;
    }
    leases_alive = CountLeases(tx);
    tx.commit();
    const size_t keys = state.size();
    map.Replace(std::move(state), revision);
    applied = revision;
    // The floor first: a watcher the reset sends to the history must not
    // read below what compaction left.
    history.NoteCompacted(compacted);
    hub.Reset(revision);
    ++reloads;
    logger.Info("loaded the state from PostgreSQL",
                {{"keys", std::to_string(keys)},
                 {"revision", std::to_string(revision)},
                 {"took_ms", std::to_string(std::chrono::duration_cast<milliseconds>(
                                                 Clock::now() - started)
                                                 .count())}});
  }

  // Applies what other servers committed since `applied`.
  void CatchUp(pqxx::connection& conn) {
    for (;;) {
      // The database's revision, its compacted revision and the rows after
      // what was applied, from one snapshot (one statement): rows up to the
      // compacted revision may be gone, a transaction's revision in part
      // (which no gap would show), so a server behind it reloads. Read
      // before taking the lock: this server's own commits may move
      // `applied` past them meanwhile, which is no loss (ApplyLocked skips
      // what it has); only a database behind what was applied before asking
      // it has lost commits.
      const uint64_t applied_before = applied.load();
      pqxx::result rows;
      {
        pqxx::nontransaction tx(conn);
        rows = tx.exec_prepared("kv_catch_up", static_cast<int64_t>(applied_before), kCatchUpRows);
      }
      const uint64_t db_revision = rows[0][0].as<uint64_t>();
      const uint64_t compacted = rows[0][1].as<uint64_t>();
      // Another server's compaction raises the floor here (at once: a
      // compaction notifies; else within a poll), so a new watch below it
      // is refused up front rather than ended once it has started.
      history.NoteCompacted(compacted);
      if (db_revision == applied_before) return;
      std::lock_guard lock(apply_mu);
      if (db_revision < applied_before) {
        logger.Error(
            "the database is behind this server: it lost commits this server applied (was an "
            "asynchronous replica promoted?); reloading the state from the database",
            {{"database_revision", std::to_string(db_revision)},
             {"applied_revision", std::to_string(applied_before)}});
        ReloadLocked(conn);
        return;
      }
      if (db_revision <= applied.load()) return;  // this server's own commits got there
      std::vector<core::Change> changes;
      changes.reserve(rows.size());
      for (const auto& row : rows) {
        if (!row[2].is_null()) changes.push_back(ChangeOfRow(row, 2));
      }
      if (compacted > applied.load() || !ApplyLocked(changes, true) ||
          (changes.empty() && db_revision > applied.load())) {
        // The rows we need were compacted away: start over from kv_state.
        ReloadLocked(conn);
        return;
      }
      if (applied.load() >= db_revision) return;
    }
  }

  // ------------------------------------------------------------ health

  void MarkDown(const core::Status& why) {
    bool first = false;
    {
      std::lock_guard lock(health_mu);
      if (down.ok()) {
        first = true;
        down = core::Status::Unavailable(fmt::format(
            "writes are paused while PostgreSQL is unreachable ({}); reads still work and "
            "kvctl reconnects by itself",
            why.message()));
      }
      reconnect_wanted = true;
    }
    health_cv.notify_all();
    if (first) {
      logger.Error("lost PostgreSQL; refusing writes until it is back, still serving reads",
                   {{"cause", why.message()}, {"target", target}});
    }
  }

  void MarkUp() {
    bool was_down = false;
    {
      std::lock_guard lock(health_mu);
      was_down = !down.ok();
      down = core::Status::Ok();
      reconnect_wanted = false;
    }
    if (was_down) {
      pool.DropIdle();  // they may point at a server that is gone
      ++reconnects;
      logger.Info("PostgreSQL is back; accepting writes",
                  {{"target", target}, {"revision", std::to_string(applied.load())}});
    }
  }

  // OK while the database is reachable (writes already queued still run
  // during shutdown).
  core::Status DatabaseHealth() const {
    std::lock_guard lock(health_mu);
    return down;
  }

  // Whether new writes are accepted.
  core::Status Health() const {
    std::lock_guard lock(health_mu);
    if (closed) return core::Status::Unavailable("kvctl is shutting down");
    return down;
  }

  // ------------------------------------------------------------ listener

  // Sleeps `d` unless stopped first; false when stopping.
  bool SleepUnlessStopped(milliseconds d) {
    std::unique_lock lock(health_mu);
    return !health_cv.wait_for(lock, d, [&] { return stop_listener; });
  }

  bool ListenerStopping() {
    std::lock_guard lock(health_mu);
    return stop_listener;
  }

  void ListenLoop() {
    milliseconds backoff = kFirstBackoff;
    auto last_catch_up = Clock::now();
    while (!ListenerStopping()) {
      if (!listen_conn) {
        auto conn = Connect(conninfo);
        if (!conn) {
          MarkDown(conn.error());
          if (!SleepUnlessStopped(backoff)) break;
          backoff = std::min(backoff * 2, options.reconnect_max_backoff);
          continue;
        }
        listen_conn = std::move(*conn);
        try {
          Prepare(*listen_conn);
          receiver = std::make_unique<Receiver>(*listen_conn, &notifications, &notified);
        } catch (...) {
          MarkDown(ClassifyCurrentException("listening for changes").status);
          receiver.reset();
          listen_conn.reset();
          continue;
        }
      }
      try {
        bool wanted = false;
        {
          std::lock_guard lock(health_mu);
          wanted = reconnect_wanted;
        }
        if (!wanted) {
          listen_conn->await_notification(0, kListenWait.count() * 1000);
        }
        // A commit announces its revision: one this server has applied
        // already (its own) needs no query.
        const bool news = notified.other_news || notified.revision > applied.load();
        if (wanted || news || Clock::now() - last_catch_up >= kPollEvery) {
          CatchUp(*listen_conn);
          notified.other_news = false;
          last_catch_up = Clock::now();
          // A query went through: the database is reachable again.
          MarkUp();
          backoff = kFirstBackoff;
        }
        AnswerApplied();  // those applied now, and those waiting too long
      } catch (...) {
        PgError e = ClassifyCurrentException("following the change log");
        if (e.connection_lost) {
          MarkDown(e.status);
        } else {
          logger.Error("catching up with the change log failed", {{"cause", e.status.message()}});
        }
        receiver.reset();
        listen_conn.reset();
        if (!SleepUnlessStopped(backoff)) break;
        backoff = std::min(backoff * 2, options.reconnect_max_backoff);
      }
    }
    receiver.reset();
    listen_conn.reset();
  }

  // ------------------------------------------------------------ committing

  // Starts a write in `tx` (see pg_store.h): locks kv_meta and returns the
  // last revision handed out; fills `others` with the other servers'
  // changes up to it that this server had not applied (read holding the
  // lock). `reload` tells whether the map must be reloaded instead of
  // patched (this server is too far behind, or the database is behind it).
  uint64_t LockRevision(pqxx::work& tx, std::vector<core::Change>& others, bool& reload) {
    const pqxx::row meta = tx.exec_prepared1("kv_lock_meta");
    const uint64_t base = meta[0].as<uint64_t>();
    // Holding the lock, everything up to `base` is committed and visible.
    const uint64_t seen = applied.load();
    // Rows up to the compacted revision may be gone, even part of a
    // transaction's revision (which no gap would show).
    const uint64_t compacted = meta[1].as<uint64_t>();
    reload = base < seen || base - seen > static_cast<uint64_t>(kMaxInTxnCatchUp) || compacted > seen;
    if (!reload && base > seen) {
      others = ToChanges(tx.exec_prepared("kv_read_log", static_cast<int64_t>(seen),
                                          static_cast<int64_t>(base), kMaxInTxnCatchUp));
    }
    return base;
  }

  // The transaction of a batch of lease calls (see pg_store.h): fills
  // each call's result, `others` (LockRevision) and `mine` with the
  // batch's changes. Returns true when the map must be reloaded instead of
  // patched.
  bool TransactLeases(pqxx::connection& conn, std::vector<std::shared_ptr<Op>>& batch,
                      std::vector<core::Change>& others, std::vector<core::Change>& mine) {
    pqxx::work tx(conn);
    bool reload = false;
    const uint64_t base = LockRevision(tx, others, reload);
    uint64_t next = base;
    for (auto& op : batch) RunLeaseOp(tx, *op, next, mine);
    if (next > base) tx.exec_prepared("kv_advance", static_cast<int64_t>(next));
    tx.commit();
    return reload;
  }

  // A batch of puts and deletes, in one statement (batch_write.h). The
  // others' changes it rests on (up to the revision before it) are read
  // after its commit, when they are all committed and visible; in the
  // same snapshot as the compacted revision, since rows up to it may be
  // gone. Returns true when the map must be reloaded instead of patched.
  bool TransactWrites(pqxx::connection& conn, std::vector<std::shared_ptr<Op>>& batch,
                      std::vector<core::Change>& others, std::vector<core::Change>& mine) {
    std::vector<KeyWrite> writes;
    writes.reserve(batch.size());
    for (const auto& op : batch) {
      writes.push_back({op->kind == OpKind::kPut, op->key, op->value, &op->pre, op->lease});
    }
    const uint64_t seen = applied.load();
    BatchWritten written = WriteBatch(conn, writes);
    for (size_t i = 0; i < batch.size(); ++i) {
      const KeyWriteOutcome& w = written.outcomes[i];
      OpResult& r = batch[i]->result;
      r.status = w.status;
      r.revision = w.revision;
      r.existed = w.existed;
      r.changed = w.changed;
    }
    mine = std::move(written.changes);
    const uint64_t base = written.base;
    if (base < seen || base - seen > static_cast<uint64_t>(kMaxInTxnCatchUp) || written.compacted > seen) {
      return true;
    }
    if (base == seen) return false;
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn);
    others = ToChanges(tx.exec_prepared("kv_read_log", static_cast<int64_t>(seen), static_cast<int64_t>(base),
                                        kMaxInTxnCatchUp));
    const uint64_t compacted = tx.exec_prepared1("kv_meta")[1].as<uint64_t>();
    tx.commit();
    return compacted > seen;
  }

  // A lease call in a batch's transaction (pg_leases.h): a grant or an end
  // takes the next revision; the others read or renew.
  void RunLeaseOp(pqxx::work& tx, Op& op, uint64_t& next, std::vector<core::Change>& mine) {
    OpResult& r = op.result;
    switch (op.kind) {
      case OpKind::kLeaseGrant:
        if (auto granted = GrantLease(tx, op.ttl, op.lease, next + 1, lease_ids, mine)) {
          r.leases.push_back(std::move(*granted));
          r.revision = ++next;
          r.changed = true;
        } else {
          r.status = core::LeaseExists(op.lease);
        }
        return;
      case OpKind::kLeaseRevoke:
      case OpKind::kLeaseExpire: {
        const auto reason =
            op.kind == OpKind::kLeaseRevoke ? core::LeaseEndReason::kRevoked : core::LeaseEndReason::kExpired;
        if (EndLease(tx, op.lease, reason, next + 1, mine)) {
          r.revision = ++next;
          r.changed = true;
        } else if (op.kind == OpKind::kLeaseRevoke) {
          r.status = core::NoSuchLease(op.lease);
        }
        return;  // an expiry of a lease kept alive or gone meanwhile ends nothing
      }
      case OpKind::kLeaseKeepAlive:
      case OpKind::kLeaseShow: {
        auto lease = op.kind == OpKind::kLeaseKeepAlive ? KeepLeaseAlive(tx, op.lease) : ShowLease(tx, op.lease);
        if (lease) {
          r.leases.push_back(std::move(*lease));
        } else {
          r.status = core::NoSuchLease(op.lease);
        }
        return;
      }
      case OpKind::kLeaseList:
        r.leases = ListLeases(tx);
        return;
      case OpKind::kPut:
      case OpKind::kDelete:
      case OpKind::kTxn:
        return;  // not lease calls
    }
  }

  // A range op's upper end ("": none), a prefix's included.
  static std::string RangeEnd(const core::TxnOp& op) {
    const bool prefix = op.kind == core::TxnOp::Kind::kDeletePrefix || op.kind == core::TxnOp::Kind::kGetPrefix;
    return prefix ? core::PrefixEnd(op.key) : op.range_end;
  }

  // At most `rows` keys of [start, end) ("" end: to the last key), in key
  // order, with their values and metadata.
  static pqxx::result ReadRange(pqxx::work& tx, const std::string& start, const std::string& end, size_t rows) {
    const auto asked = static_cast<int64_t>(rows);
    if (!end.empty() && end <= start) return pqxx::result{};  // an end at or below the start: no key
    return !end.empty() ? tx.exec_prepared("kv_txn_get_range", Bytes(start), Bytes(end), asked)
                        : tx.exec_prepared("kv_txn_get_from", Bytes(start), asked);
  }

  // A compare over a range, read a page at a time (the range may be every
  // key) and stopped at the first key that fails it.
  static bool RangeCompareHolds(pqxx::work& tx, const core::TxnCompare& compare) {
    constexpr size_t kPage = 1000;
    core::RangeCompare judge(compare);
    std::string from = compare.key;
    for (;;) {
      const pqxx::result rows = ReadRange(tx, from, *compare.range_end, kPage);
      for (const auto& row : rows) {
        const std::string value = ToString(row[1]);
        if (!judge.Next({value, row[2].as<uint64_t>(), MetaOf(row, 3)})) return false;
      }
      if (rows.size() < kPage) return judge.Holds();
      from = ToString(rows[rows.size() - 1][0]);
      from.push_back('\0');  // the smallest key after the last one read
    }
  }

  // A compare's key, judged in `tx`.
  static bool CompareHoldsIn(pqxx::work& tx, const core::TxnCompare& compare) {
    if (compare.range_end) return RangeCompareHolds(tx, compare);
    const pqxx::result row = tx.exec_prepared("kv_txn_compare", Bytes(compare.key));
    std::string value;
    core::TxnKeyState state;  // a missing key: no value, zeros
    if (!row.empty()) {
      value = ToString(row[0][0]);
      state.value = value;
      state.revision = row[0][1].as<uint64_t>();
      state.meta = MetaOf(row[0], 2);
    }
    return core::CompareHolds(compare, state);
  }

  // One op of a transaction's branch, in `tx`, writing at `revision`:
  // fills `r` and adds what it changed to `mine`. `where` names the op in
  // a refusal ("success[2]").
  core::Status RunTxnOp(pqxx::work& tx, const core::TxnOp& op, const std::string& where,
                        uint64_t revision, core::TxnOpResult& r, std::vector<core::Change>& mine) {
    const auto rev = static_cast<int64_t>(revision);
    switch (op.kind) {
      case core::TxnOp::Kind::kPut: {
        std::string value = op.value;
        uint64_t lease = op.lease;
        if (op.keep_value || op.keep_lease) {
          const pqxx::result row = tx.exec_prepared("kv_txn_get", Bytes(op.key));
          if (row.empty()) {
            return core::Status::FailedPrecondition(fmt::format(
                "{} (put): it keeps the value or lease of key \"{}\", which does not exist", where, op.key));
          }
          if (op.keep_value) value = ToString(row[0][1]);
          if (op.keep_lease) lease = row[0][5].as<uint64_t>();
        }
        if (lease != 0 && !LeaseExists(tx, lease)) return core::NoSuchLease(lease);
        const pqxx::result probe = tx.exec_prepared("kv_probe", Bytes(op.key), Bytes(value));
        const bool exists = !probe.empty();
        core::KeyMeta before;
        if (exists) before = MetaOf(probe[0], 2);
        if (exists && probe[0][1].as<bool>() && before.lease == lease) {
          r.revision = probe[0][0].as<uint64_t>();  // changes nothing: no row
          r.meta = before;
          return core::Status::Ok();
        }
        r.meta = core::KeyMeta::AfterPut(exists ? &before : nullptr, revision, lease);
        r.revision = revision;
        r.created = !exists;
        tx.exec_prepared("kv_put", Bytes(op.key), Bytes(value), rev,
                         static_cast<int64_t>(r.meta.create_revision),
                         static_cast<int64_t>(r.meta.version), static_cast<int64_t>(r.meta.lease));
        mine.push_back({revision, core::RecordType::kPut, op.key, value, r.meta});
        return core::Status::Ok();
      }
      case core::TxnOp::Kind::kDelete: {
        const pqxx::result probe = tx.exec_prepared("kv_probe", Bytes(op.key), Bytes(std::string_view("")));
        if (probe.empty()) return core::Status::Ok();  // a missing key: nothing to delete
        tx.exec_prepared("kv_delete", Bytes(op.key), rev);
        r.deleted = 1;
        mine.push_back({revision, core::RecordType::kDelete, op.key, {}, {}});
        return core::Status::Ok();
      }
      case core::TxnOp::Kind::kDeletePrefix:
      case core::TxnOp::Kind::kDeleteRange: {
        // Counted first, so a range over too many keys is refused before
        // anything is deleted.
        const std::string end = RangeEnd(op);
        if (!end.empty() && end <= op.key) return core::Status::Ok();  // an empty range
        const auto most = static_cast<int64_t>(core::kMaxTxnDeleteKeys);
        const uint64_t found =
            (!end.empty() ? tx.exec_prepared1("kv_txn_count_range", Bytes(op.key), Bytes(end), most + 1)
                          : tx.exec_prepared1("kv_txn_count_from", Bytes(op.key), most + 1))[0]
                .as<uint64_t>();
        if (found > core::kMaxTxnDeleteKeys) {
          return core::Status::InvalidArgument(fmt::format(
              "{} ({}): more than {} keys are in it, and one transaction deletes at most {}: "
              "delete them in parts",
              where, op.kind == core::TxnOp::Kind::kDeletePrefix ? "delete prefix" : "delete range",
              core::kMaxTxnDeleteKeys, core::kMaxTxnDeleteKeys));
        }
        if (found == 0) return core::Status::Ok();
        const pqxx::result gone =
            !end.empty() ? tx.exec_prepared("kv_txn_delete_range", Bytes(op.key), Bytes(end), rev)
                         : tx.exec_prepared("kv_txn_delete_from", Bytes(op.key), rev);
        r.deleted = gone.size();
        for (const auto& row : gone) {
          mine.push_back({revision, core::RecordType::kDelete, ToString(row[0]), {}, {}});
        }
        return core::Status::Ok();
      }
      case core::TxnOp::Kind::kGet: {
        const pqxx::result row = tx.exec_prepared("kv_txn_get", Bytes(op.key));
        if (!row.empty()) r.items.push_back(ItemOf(row[0]));
        return core::Status::Ok();
      }
      case core::TxnOp::Kind::kGetPrefix:
      case core::TxnOp::Kind::kGetRange: {
        const size_t limit = op.limit == 0 ? core::kMaxTxnGetKeys : std::min(op.limit, core::kMaxTxnGetKeys);
        const pqxx::result rows = ReadRange(tx, op.key, RangeEnd(op), limit + 1);  // one more: are there more?
        for (size_t j = 0; j < rows.size() && j < limit; ++j) r.items.push_back(ItemOf(rows[j]));
        r.more = rows.size() > limit;
        return core::Status::Ok();
      }
      case core::TxnOp::Kind::kTxn:
        return core::Status::Ok();  // core::RunTxnTree runs nested transactions itself
    }
    return core::Status::Ok();
  }

  // The database transaction of one Txn (pg_store.h, "Transactions"):
  // fills `out`, `others` and `reload` (LockRevision) and `mine` with the
  // changes it committed, all at one revision, in key order. A refusal
  // (InvalidArgument, NotFound) rolls it all back; so does a transaction
  // that changes nothing, which takes no revision.
  core::Status TransactTxn(pqxx::connection& conn, const core::TxnRequest& request,
                           core::TxnResult& out, std::vector<core::Change>& others,
                           std::vector<core::Change>& mine, bool& reload) {
    pqxx::work tx(conn);
    const uint64_t base = LockRevision(tx, others, reload);
    // The transaction's revision, taken only if it writes.
    const uint64_t revision = base + 1;
    // Every compare of the tree is judged before any op runs; the ops of
    // the branches chosen then run in order inside the database
    // transaction, so a get sees the earlier writes.
    const core::Status s = core::RunTxnTree(
        request, [&](const core::TxnCompare& c) { return CompareHoldsIn(tx, c); },
        [&](const core::TxnOp& op, const std::string& where, core::TxnOpResult& r) {
          return RunTxnOp(tx, op, where, revision, r, mine);
        },
        &out.succeeded, &out.results);
    if (!s.ok()) {
      tx.abort();
      return s;
    }
    if (mine.empty()) {
      tx.abort();  // nothing written: no revision, nothing committed
      out.revision = base;
      return core::Status::Ok();
    }
    tx.exec_prepared("kv_advance", static_cast<int64_t>(revision));
    tx.commit();
    out.revision = revision;
    out.changed = true;
    // In key order, as every other server reads them from kv_log.
    std::sort(mine.begin(), mine.end(),
              [](const core::Change& a, const core::Change& b) { return a.key < b.key; });
    return core::Status::Ok();
  }

  void CountCommitted(const std::vector<core::Change>& mine) {
    ++batches;
    committed_changes += mine.size();
    for (const core::Change& c : mine) {
      if (core::ChangesKey(c.type)) ++(c.type == core::RecordType::kPut ? puts : deletes);
    }
  }

  // Commits one batch, then applies it (and what it rests on) to the map
  // before the writers hear back, so each reads its own write at once.
  void RunBatch(pqxx::connection& conn, std::vector<std::shared_ptr<Op>>& batch) {
    std::vector<core::Change> others;
    std::vector<core::Change> mine;
    const bool reload = IsKeyWrite(*batch.front()) ? TransactWrites(conn, batch, others, mine)
                            : TransactLeases(conn, batch, others, mine);
    CountCommitted(mine);
    ApplyCommitted(conn, reload, others, mine);
  }

  // Runs one transaction, then applies it like a batch: all its changes
  // together, in one step of the map and one Publish to the watchers.
  void RunTxn(pqxx::connection& conn, Op& op) {
    std::vector<core::Change> others;
    std::vector<core::Change> mine;
    bool reload = false;
    op.result.status = TransactTxn(conn, *op.txn, op.result.txn, others, mine, reload);
    if (!op.result.status.ok()) mine.clear();  // rolled back
    if (!mine.empty()) CountCommitted(mine);
    ApplyCommitted(conn, reload, others, mine);
  }

  // After a write transaction: applies the others' changes it rested on,
  // then its own, unless the map must be reloaded instead.
  void ApplyCommitted(pqxx::connection& conn, bool reload, std::vector<core::Change>& others,
                      std::vector<core::Change>& mine) {
    std::lock_guard lock(apply_mu);
    if (!reload) reload = !ApplyLocked(others, true) || !ApplyLocked(mine, false);
    if (reload) {
      try {
        ReloadLocked(conn);
      } catch (...) {
        // The batch is committed, so it is acknowledged; this server's map
        // lags until the listener catches up.
        logger.Error("reloading the state after a commit failed",
                     {{"cause", ClassifyCurrentException("reloading").status.message()}});
      }
    }
  }

  void Fail(std::vector<std::shared_ptr<Op>>& batch, const core::Status& why) {
    for (auto& op : batch) op->result.status = why;
  }

  static bool IsKeyWrite(const Op& op) { return op.kind == OpKind::kPut || op.kind == OpKind::kDelete; }

  // ------------------------------------------------------------ forwarding

  // Forwards a batch of puts and deletes to the writer (pg_store.h, "One
  // writer"), in parts the forwarder sends while this thread goes on.
  // Returns the writes to commit here: all of them when there is no writer
  // to forward to (none known, this server, or one a forward just failed to
  // reach), and a write too big to forward. A part the writer refused or
  // never received comes back to the queue; the others are answered from
  // the writer's outcomes once applied here, or with Unavailable when the
  // writer's answer was lost.
  std::vector<std::shared_ptr<Op>> Forward(std::vector<std::shared_ptr<Op>> batch) {
    if (!forwarder || !forwarder->Forwarding()) return batch;
    std::vector<std::shared_ptr<Op>> here, part;
    std::vector<core::ForwardedWrite> writes;
    size_t bytes = 0;
    auto send = [&] {
      if (part.empty()) return;
      forwarder->Send(std::move(writes), [this, ops = std::move(part)](WriteForwarder::Reply reply) mutable {
        Forwarded(ops, reply);
      });
      part = {};
      writes = {};
      bytes = 0;
    };
    for (auto& op : batch) {
      core::ForwardedWrite w{op->kind == OpKind::kPut, op->key, op->value, op->pre, op->lease};
      if (!forwarder->Fits(w)) {
        here.push_back(std::move(op));
        continue;
      }
      if (!forwarder->Room(bytes, w)) send();
      bytes += core::ForwardedWriteSize(w);
      writes.push_back(std::move(w));
      part.push_back(std::move(op));
    }
    send();
    return here;
  }

  // What became of a forwarded part (on a forwarding thread).
  void Forwarded(std::vector<std::shared_ptr<Op>>& ops, WriteForwarder::Reply& reply) {
    using Fate = WriteForwarder::Reply::Fate;
    switch (reply.fate) {
      case Fate::kAnswered:
        forwarded += ops.size();
        for (size_t i = 0; i < ops.size(); ++i) {
          const core::ForwardedOutcome& o = reply.outcomes[i];
          ops[i]->result = OpResult{o.status, o.revision, o.existed, o.changed};
          AnswerWhenApplied(std::move(ops[i]), o.revision);
        }
        return;
      case Fate::kCommitHere: {
        // Back to the front of the queue: the forwarder now declines
        // them, so the committer commits them here.
        forwards_not_sent += ops.size();
        {
          std::lock_guard lock(queue_mu);
          for (auto it = ops.rbegin(); it != ops.rend(); ++it) queue.push_front(std::move(*it));
        }
        queue_cv.notify_one();
        return;
      }
      case Fate::kLost:
        forwards_lost += ops.size();
        for (auto& op : ops) {
          op->result = OpResult{reply.lost};
          op->done(op->result);
        }
        return;
    }
  }

  // Answers a forwarded write once this server has applied its revision.
  void AnswerWhenApplied(std::shared_ptr<Op> op, uint64_t revision) {
    {
      std::lock_guard lock(apply_mu);
      if (applied.load() < revision) {
        awaiting_applied.emplace(revision, Awaiting{Clock::now() + kAwaitAppliedLimit, std::move(op)});
        return;
      }
    }
    op->done(op->result);
  }

  // Answers the forwarded writes applied by now; with `all`, every one
  // (kvctl is stopping: they are committed, the server will not read again).
  // One this server could not catch up with in kAwaitAppliedLimit is
  // answered Unavailable: it is committed, but a read here would not show it.
  void AnswerApplied(bool all = false) {
    std::vector<std::shared_ptr<Op>> ready, late;
    {
      std::lock_guard lock(apply_mu);
      const auto end = all ? awaiting_applied.end() : awaiting_applied.upper_bound(applied.load());
      for (auto it = awaiting_applied.begin(); it != end; ++it) ready.push_back(std::move(it->second.op));
      awaiting_applied.erase(awaiting_applied.begin(), end);
      const auto now = Clock::now();
      for (auto it = awaiting_applied.begin(); it != awaiting_applied.end();) {
        if (it->second.deadline > now) {
          ++it;
          continue;
        }
        it->second.op->result.status = core::Status::Unavailable(fmt::format(
            "the writer committed this write at revision {}, but this server has not caught up with it in {} s "
            "(is its database connection down?); a read on another server shows it",
            it->first, kAwaitAppliedLimit.count() / 1000));
        late.push_back(std::move(it->second.op));
        it = awaiting_applied.erase(it);
      }
    }
    for (auto& op : ready) op->done(op->result);
    for (auto& op : late) op->done(op->result);
  }

  void CommitLoop() {
    for (;;) {
      std::vector<std::shared_ptr<Op>> batch;
      {
        std::unique_lock lock(queue_mu);
        queue_cv.wait(lock, [&] { return !queue.empty() || stopping; });
        if (queue.empty()) return;
        while (!queue.empty() && batch.size() < kMaxBatchOps) {
          // A transaction runs alone; puts and deletes go together in one
          // statement, lease calls in a transaction of their own.
          if (!batch.empty() && (queue.front()->txn || IsKeyWrite(*queue.front()) != IsKeyWrite(*batch.front()))) {
            break;
          }
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
          if (batch.back()->txn) break;
        }
      }
      if (core::Status h = DatabaseHealth(); !h.ok()) {
        Fail(batch, h);
      } else if (!batch.front()->txn && IsKeyWrite(*batch.front()) &&
                 (batch = Forward(std::move(batch))).empty()) {
        continue;  // all forwarded: answered once applied
      } else if (auto lease = pool.Acquire(); !lease) {
        Fail(batch, lease.error());
      } else {
        try {
          if (batch.front()->txn) {
            RunTxn(**lease, *batch.front());
          } else {
            RunBatch(**lease, batch);
          }
        } catch (...) {
          PgError e = ClassifyCurrentException("the write transaction");
          for (auto& op : batch) op->result = OpResult{e.status};
          if (e.connection_lost) {
            lease->Discard();
            MarkDown(e.status);
          } else {
            logger.Error("a write transaction failed", {{"cause", e.status.message()}});
          }
        }
      }
      // The writers hear back only now, on this thread: a transport's
      // callback just hands the answer to its event loop.
      for (auto& op : batch) op->done(op->result);
      // This batch may have applied forwarded writes' revisions too.
      AnswerApplied();
    }
  }

  // Queues a write for the committer, which calls `done` once it is
  // committed or failed; while the database is away or kvctl is stopping,
  // calls it at once with Unavailable (so the writer gets its 503 promptly).
  void Submit(OpKind kind, std::string_view key, std::string_view value, const core::Precondition& pre,
              uint64_t lease, std::function<void(const OpResult&)> done) {
    if (core::Status h = Health(); !h.ok()) return done(OpResult{h});
    auto op = std::make_shared<Op>();
    op->kind = kind;
    op->key = key;
    op->value = value;
    op->pre = pre;
    op->lease = lease;
    op->done = std::move(done);
    Enqueue(std::move(op));
  }

  // Ends the leases given that are still due (LeaseExpiry's `expire`), each
  // at a revision of its own; waits for the commits. False when a write
  // failed.
  bool ExpireLeases(const std::vector<uint64_t>& due) {
    std::mutex mu;
    std::condition_variable cv;
    size_t waiting = due.size();
    bool ok = true;
    for (const uint64_t id : due) {
      Submit(OpKind::kLeaseExpire, {}, {}, {}, id, [&](const OpResult& r) {
        std::lock_guard lock(mu);
        if (!r.status.ok()) ok = false;
        if (r.status.ok() && r.changed) ++leases_expired;
        if (--waiting == 0) cv.notify_all();
      });
    }
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return waiting == 0; });
    return ok;
  }

  // Submit for a built op (a transaction's).
  void Enqueue(std::shared_ptr<Op> op) {
    if (core::Status h = Health(); !h.ok()) return op->done(OpResult{h});
    {
      std::unique_lock lock(queue_mu);
      if (stopping) {
        lock.unlock();
        return op->done(OpResult{core::Status::Unavailable("kvctl is shutting down")});
      }
      queue.push_back(std::move(op));
    }
    queue_cv.notify_one();
  }
};

PgStore::PgStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PgStore::~PgStore() { (void)Close(); }

core::Result<std::unique_ptr<PgStore>> PgStore::Open(PgStoreOptions options) {
  if (options.pool_min > options.pool_max) {
    return core::Status::InvalidArgument(
        fmt::format("postgres.pool_min ({}) is more than postgres.pool_max ({})",
                    options.pool_min, options.pool_max));
  }
  core::Result<std::string> conninfo = ConnInfo(options.dsn, options.connect_timeout);
  if (!conninfo) return conninfo.error();
  if (core::Status s = CheckSchema(options.dsn, options.connect_timeout); !s.ok()) return s;

  auto impl = std::make_unique<Impl>(std::move(options), std::move(*conninfo));
  Impl& i = *impl;
  if (core::Status s = i.pool.Warm(); !s.ok()) return s;
  auto conn = Connect(i.conninfo);
  if (!conn) return conn.error();
  i.listen_conn = std::move(*conn);
  try {
    Prepare(*i.listen_conn);
    // LISTEN before loading, so no change committed after the snapshot is
    // missed: it is either in the snapshot or announced.
    i.receiver = std::make_unique<Receiver>(*i.listen_conn, &i.notifications, &i.notified);
    std::lock_guard lock(i.apply_mu);
    i.ReloadLocked(*i.listen_conn);
  } catch (...) {
    return ClassifyCurrentException("loading the state from PostgreSQL").status;
  }
  i.logger.Info("serving from PostgreSQL",
                {{"target", i.target},
                 {"pool_min", std::to_string(i.options.pool_min)},
                 {"pool_max", std::to_string(i.options.pool_max)}});
  i.listener = std::thread([&i] { i.ListenLoop(); });
  // One committer: write transactions are serialized across servers by the
  // kv_meta lock anyway, and a single committer gathers the most writes per
  // transaction (measured: twice the throughput of four).
  i.committer = std::thread([&i] { i.CommitLoop(); });
  i.expiry = std::make_unique<LeaseExpiry>(LeaseExpiry::Options{
      i.conninfo, &i.logger, [&i](const std::vector<uint64_t>& due) { return i.ExpireLeases(due); }});
  if (i.options.forward || !i.options.peer_url.empty()) {
    i.election = std::make_unique<WriterElection>(WriterElection::Options{i.conninfo, i.options.peer_url, &i.logger});
  }
  if (i.options.forward) {
    i.forwarder = std::make_unique<WriteForwarder>(WriteForwarder::Options{
        .election = i.election.get(),
        .transport = i.options.forward,
        .logger = &i.logger,
        .max_part_bytes = i.options.max_forward_bytes,
    });
  }
  return std::unique_ptr<PgStore>(new PgStore(std::move(impl)));
}

core::Result<core::PutOutcome> PgStore::Put(std::string_view key, std::string_view value,
                                            const core::Precondition& pre, uint64_t lease) {
  return Await<core::PutOutcome>([&](PutDone done) { PutAsync(key, value, pre, lease, std::move(done)); });
}

core::Result<core::DeleteOutcome> PgStore::Delete(std::string_view key,
                                                  const core::Precondition& pre) {
  return Await<core::DeleteOutcome>([&](DeleteDone done) { DeleteAsync(key, pre, std::move(done)); });
}

core::Result<core::TxnResult> PgStore::Txn(const core::TxnRequest& request) {
  return Await<core::TxnResult>([&](TxnDone done) { TxnAsync(request, std::move(done)); });
}

void PgStore::TxnAsync(const core::TxnRequest& request, TxnDone done) {
  // The faces validate against the configured limits; this keeps a key
  // written twice (which kv_log's primary key would refuse at commit) from
  // reaching the database, whoever the caller.
  constexpr size_t kAny = std::numeric_limits<size_t>::max();
  if (core::Status s = core::ValidateTxn(request, kAny, kAny, kAny); !s.ok()) return done(s);
  auto op = std::make_shared<Op>();
  op->kind = OpKind::kTxn;
  op->txn = request;
  op->done = [done = std::move(done)](const OpResult& r) { done(TxnOutcomeOf(r)); };
  impl_->Enqueue(std::move(op));
}

void PgStore::LeaseGrantAsync(int64_t ttl_seconds, uint64_t id, LeaseDone done) {
  if (core::Status s = core::CheckLeaseTtl(ttl_seconds); !s.ok()) return done(s);
  if (core::Status s = core::CheckLeaseId(id); !s.ok()) return done(s);
  auto op = std::make_shared<Op>();
  op->kind = OpKind::kLeaseGrant;
  op->ttl = ttl_seconds;
  op->lease = id;  // 0: the committer draws one
  op->done = [&i = *impl_, done = std::move(done)](const OpResult& r) {
    if (!r.status.ok()) return done(r.status);
    ++i.leases_granted;
    done(r.leases.front());
  };
  impl_->Enqueue(std::move(op));
}

void PgStore::LeaseRevokeAsync(uint64_t id, RevokeDone done) {
  impl_->Submit(OpKind::kLeaseRevoke, {}, {}, {}, id, [&i = *impl_, done = std::move(done)](const OpResult& r) {
    if (!r.status.ok()) return done(r.status);
    ++i.leases_revoked;
    done(r.revision);
  });
}

void PgStore::LeaseKeepAliveAsync(uint64_t id, LeaseDone done) {
  impl_->Submit(OpKind::kLeaseKeepAlive, {}, {}, {}, id, [&i = *impl_, done = std::move(done)](const OpResult& r) {
    if (!r.status.ok()) return done(r.status);
    ++i.lease_keepalives;
    done(r.leases.front());
  });
}

void PgStore::LeaseTimeToLiveAsync(uint64_t id, LeaseDone done) {
  impl_->Submit(OpKind::kLeaseShow, {}, {}, {}, id, [done = std::move(done)](const OpResult& r) {
    if (!r.status.ok()) return done(r.status);
    done(r.leases.front());
  });
}

void PgStore::LeasesAsync(LeasesDone done) {
  impl_->Submit(OpKind::kLeaseList, {}, {}, {}, 0, [done = std::move(done)](const OpResult& r) {
    if (!r.status.ok()) return done(r.status);
    done(r.leases);
  });
}

core::LeaseStats PgStore::lease_stats() const {
  const Impl& i = *impl_;
  return {i.leases_alive.load(), i.leases_granted.load(), i.leases_revoked.load(), i.leases_expired.load(),
          i.lease_keepalives.load()};
}

void PgStore::PutAsync(std::string_view key, std::string_view value, const core::Precondition& pre,
                       uint64_t lease, PutDone done) {
  impl_->Submit(OpKind::kPut, key, value, pre, lease,
                [done = std::move(done)](const OpResult& r) { done(PutOutcomeOf(r)); });
}

void PgStore::DeleteAsync(std::string_view key, const core::Precondition& pre, DeleteDone done) {
  impl_->Submit(OpKind::kDelete, key, {}, pre, 0,
                [done = std::move(done)](const OpResult& r) { done(DeleteOutcomeOf(r)); });
}

core::Result<core::Entry> PgStore::Get(std::string_view key, uint64_t* at_revision) const {
  return impl_->map.Get(key, at_revision);
}

core::ListPage PgStore::List(const core::ListOptions& options) const {
  return impl_->map.List(options);
}

core::Status PgStore::Writable() const { return impl_->Health(); }

uint64_t PgStore::revision() const { return impl_->applied.load(); }

core::Result<std::shared_ptr<core::Watcher>> PgStore::Watch(const core::WatchFilter& filter, uint64_t from,
                                                            std::function<void()> notify) {
  return impl_->hub.Watch(filter, from, std::move(notify));
}

uint64_t PgStore::HistoryFloor() const { return impl_->hub.Floor(); }

core::WatchStats PgStore::watch_stats() const { return impl_->hub.stats(); }

core::StoreStats PgStore::stats() const {
  core::StoreStats s;
  s.keys = impl_->map.size();
  s.revision = impl_->applied.load();
  s.puts = impl_->puts.load();
  s.deletes = impl_->deletes.load();
  s.commit_batches = impl_->batches.load();
  s.committed_changes = impl_->committed_changes.load();
  s.live_bytes = impl_->map.live_bytes();
  return s;
}

std::vector<core::BackendMetric> PgStore::BackendMetrics() const {
  const PoolStats pool = impl_->pool.stats();
  const Impl& i = *impl_;
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  return {
      {"kvctl_pg_up", "1 while PostgreSQL is reachable and writes are accepted.", "gauge",
       i.Health().ok() ? 1.0 : 0.0},
      {"kvctl_pg_pool_connections", "Open pooled connections (idle or in use).", "gauge",
       d(pool.open)},
      {"kvctl_pg_pool_idle_connections", "Idle pooled connections.", "gauge", d(pool.idle)},
      {"kvctl_pg_pool_timeouts_total", "Writes that found no free connection in time.",
       "counter", d(pool.timeouts)},
      {"kvctl_pg_changes_from_others_total",
       "Changes committed by other servers and applied here.", "counter",
       d(i.applied_from_others.load())},
      {"kvctl_pg_notifications_total", "kvctl_changes notifications received.", "counter",
       d(i.notifications.load())},
      {"kvctl_pg_reloads_total", "Full loads of kv_state (start, compaction gap, failover).",
       "counter", d(i.reloads.load())},
      {"kvctl_pg_reconnects_total", "Times the database came back after being unreachable.",
       "counter", d(i.reconnects.load())},
      {"kvctl_pg_lease_expirer", "1 while this server is the one that expires leases.", "gauge",
       i.expiry && i.expiry->holding() ? 1.0 : 0.0},
      {"kvctl_pg_writer", "1 while this server is the writer that commits its peers' puts and deletes.", "gauge",
       i.election && i.election->Current().self ? 1.0 : 0.0},
      {"kvctl_pg_forwarded_writes_total", "Puts and deletes forwarded to the writer and answered by it.", "counter",
       d(i.forwarded.load())},
      {"kvctl_pg_forwards_not_sent_total",
       "Puts and deletes the writer refused or never received, committed here instead.", "counter",
       d(i.forwards_not_sent.load())},
      {"kvctl_pg_forwards_lost_total", "Forwarded puts and deletes whose answer was lost (answered 503).",
       "counter", d(i.forwards_lost.load())},
  };
}

core::Result<core::CompactionStats> PgStore::Compact() {
  Impl& i = *impl_;
  if (core::Status h = i.Health(); !h.ok()) return h;
  auto lease = i.pool.Acquire();
  if (!lease) return lease.error();
  const auto started = Clock::now();
  core::CompactionStats stats;
  try {
    pqxx::connection& conn = **lease;
    auto log_bytes = [&conn] {
      pqxx::nontransaction tx(conn);
      return tx.exec("SELECT pg_total_relation_size('kv_log')")[0][0].as<uint64_t>();
    };
    stats.bytes_before = log_bytes();
    {
      pqxx::work tx(conn);
      // One compaction at a time across every server on this database.
      tx.exec_params("SELECT pg_advisory_xact_lock($1)", kCompactLockKey);
      const pqxx::row meta = tx.exec_prepared1("kv_meta");
      const uint64_t current = meta[0].as<uint64_t>();
      const uint64_t already = meta[1].as<uint64_t>();
      // The newest history_retention revisions stay history for watchers
      // (SPEC §6): compaction goes up to C - retention at most.
      const uint64_t retention = i.options.history_retention;
      const uint64_t upto = current > retention ? current - retention : 0;
      stats.covered_revision = already;
      if (upto > already) {
        // Up to U go: deletes, puts a later change of their key supersedes,
        // lease ends, and the grants of leases that ended by U; what stays
        // is the live keys and leases as of U, as a file snapshot keeps.
        const pqxx::result removed = tx.exec_params(
            "DELETE FROM kv_log l WHERE l.revision <= $1 AND (l.kind IN (2, 5, 6) "
            "OR (l.kind = 1 AND EXISTS (SELECT 1 FROM kv_log n WHERE n.key = l.key "
            "AND n.revision > l.revision AND n.revision <= $1)) "
            "OR (l.kind = 4 AND l.lease IN (SELECT e.lease FROM kv_log e WHERE e.kind IN (5, 6) "
            "AND e.revision <= $1)))",
            static_cast<int64_t>(upto));
        // Other servers raise their watch floor when they catch up on
        // this notification.
        tx.exec_params(
            "WITH m AS (UPDATE kv_meta SET compacted_revision = $1 WHERE id = 1) "
            "SELECT pg_notify('kvctl_changes', 'compacted ' || $2::text)",
            static_cast<int64_t>(upto), static_cast<int64_t>(current));
        stats.covered_revision = upto;
        stats.records_read = removed.affected_rows();
        stats.compacted = stats.records_read > 0;
        // Nothing is rewritten: the rows that stay are the snapshot.
      }
      tx.commit();
    }
    i.history.NoteCompacted(stats.covered_revision);
    if (stats.compacted) {
      pqxx::nontransaction tx(conn);
      tx.exec("VACUUM kv_log");
    }
    stats.bytes_after = log_bytes();
  } catch (...) {
    PgError e = ClassifyCurrentException("compacting kv_log");
    if (e.connection_lost) {
      lease->Discard();
      i.MarkDown(e.status);
    }
    return e.status;
  }
  stats.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  i.logger.Info("compacted the change log",
                {{"covered_revision", std::to_string(stats.covered_revision)},
                 {"rows_removed", std::to_string(stats.records_read)}});
  return stats;
}

bool PgStore::AcceptsForwardedWrites(std::string_view token) const {
  return impl_->election && impl_->election->IsOwnToken(token);
}

core::Status PgStore::Close() {
  Impl& i = *impl_;
  {
    std::lock_guard lock(i.health_mu);
    if (i.closed) return core::Status::Ok();
    i.closed = true;
  }
  if (i.expiry) i.expiry->Stop();  // hands the duty to another server
  // Parts in flight are answered (or come back to the queue); the writer
  // role passes on; what is queued is committed here.
  if (i.forwarder) i.forwarder->Stop();
  if (i.election) i.election->Stop();
  {
    std::lock_guard lock(i.queue_mu);
    i.stopping = true;
  }
  i.queue_cv.notify_all();
  if (i.committer.joinable()) i.committer.join();
  i.AnswerApplied(true);
  {
    std::lock_guard lock(i.health_mu);
    i.stop_listener = true;
  }
  i.health_cv.notify_all();
  if (i.listener.joinable()) i.listener.join();
  i.hub.Shutdown();  // every watcher ends
  return core::Status::Ok();
}

}  // namespace kvctl::pg
