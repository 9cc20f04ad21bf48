#include "lib/pg/lease_expiry.h"

#include <algorithm>

#include "lib/pg/connection.h"

namespace kvctl::pg {
namespace {

// The advisory lock key of the expiry duty (per database): "kvctllse".
constexpr int64_t kExpiryLockKey = 0x6b7663746c6c7365;
// Leases looked at per round: the due ones among them are ended, and the
// first one not due says how long to wait.
constexpr int64_t kLeasesPerRound = 1000;

}  // namespace

LeaseExpiry::LeaseExpiry(Options options) : options_(std::move(options)) {
  if (options_.logger == nullptr) options_.logger = &core::NullLogger();
  thread_ = std::thread([this] { Loop(); });
}

LeaseExpiry::~LeaseExpiry() { Stop(); }

void LeaseExpiry::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LeaseExpiry::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stop_; });
}

void LeaseExpiry::Loop() {
  core::Logger& logger = *options_.logger;
  std::unique_ptr<pqxx::connection> conn;
  while (SleepUnlessStopped(std::chrono::milliseconds(0))) {
    if (!conn) {
      auto opened = Connect(options_.conninfo);
      if (!opened) {
        SleepUnlessStopped(options_.retry);
        continue;
      }
      conn = std::move(*opened);
    }
    try {
      if (!holding_) {
        pqxx::nontransaction tx(*conn);
        if (!tx.exec_params1("SELECT pg_try_advisory_lock($1)", kExpiryLockKey)[0].as<bool>()) {
          SleepUnlessStopped(options_.retry);  // another server has it
          continue;
        }
        const pqxx::result renewed = tx.exec(
            "UPDATE kv_lease SET deadline = greatest(deadline, now() + ttl * interval '1 second')");
        holding_ = true;
        logger.Info("this server now expires leases; each lease got its full TTL again",
                    {{"leases", std::to_string(renewed.affected_rows())}});
      }
      std::vector<uint64_t> due;
      double wait_seconds = std::chrono::duration<double>(options_.poll).count();
      {
        pqxx::nontransaction tx(*conn);
        const pqxx::result rows = tx.exec_params(
            "SELECT id, extract(epoch FROM deadline - now())::float8 FROM kv_lease ORDER BY deadline LIMIT $1",
            kLeasesPerRound);
        for (const auto& row : rows) {
          const double left = row[1].as<double>();
          if (left > 0) {
            wait_seconds = std::min(wait_seconds, left);
            break;
          }
          due.push_back(row[0].as<uint64_t>());
        }
      }
      if (!due.empty()) {
        if (!options_.expire(due)) SleepUnlessStopped(options_.retry);
        continue;
      }
      SleepUnlessStopped(std::chrono::milliseconds(static_cast<int64_t>(wait_seconds * 1000) + 1));
    } catch (...) {
      const PgError e = ClassifyCurrentException("expiring leases");
      if (holding_) {
        logger.Error("lost the lease expiry duty (another server takes it over)", {{"cause", e.status.message()}});
      }
      holding_ = false;
      conn.reset();  // the session, and the lock with it, ends
      SleepUnlessStopped(options_.retry);
    }
  }
}

}  // namespace kvctl::pg
