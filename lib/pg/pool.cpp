#include "lib/pg/pool.h"

#include <fmt/format.h>

namespace kvctl::pg {

ConnectionPool::Lease::Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn,
                             uint64_t generation)
    : pool_(pool), conn_(std::move(conn)), generation_(generation) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_),
      conn_(std::move(other.conn_)),
      generation_(other.generation_),
      broken_(other.broken_) {}

ConnectionPool::Lease::~Lease() {
  if (conn_) pool_->Return(std::move(conn_), generation_, broken_);
}

ConnectionPool::ConnectionPool(PoolOptions options) : options_(std::move(options)) {}

core::Result<std::unique_ptr<pqxx::connection>> ConnectionPool::Open() {
  auto conn = Connect(options_.conninfo);
  if (!conn) return conn.error();
  if (options_.on_connect) {
    try {
      options_.on_connect(**conn);
    } catch (...) {
      return ClassifyCurrentException("preparing a new connection").status;
    }
  }
  return conn;
}

core::Status ConnectionPool::Warm() {
  for (int i = 0; i < options_.min; ++i) {
    {
      std::lock_guard lock(mu_);
      if (open_ >= options_.min) break;
      ++open_;
    }
    auto conn = Open();
    std::lock_guard lock(mu_);
    if (!conn) {
      --open_;
      return conn.error();
    }
    idle_.push_back(std::move(*conn));
  }
  return core::Status::Ok();
}

core::Result<ConnectionPool::Lease> ConnectionPool::Acquire() {
  std::unique_lock lock(mu_);
  const bool got = freed_.wait_for(lock, options_.acquire_timeout,
                                   [&] { return !idle_.empty() || open_ < options_.max; });
  if (!got) {
    ++timeouts_;
    return core::Status::Unavailable(fmt::format(
        "no free PostgreSQL connection within postgres.pool_timeout ({} ms; all {} of "
        "postgres.pool_max are busy)",
        options_.acquire_timeout.count(), options_.max));
  }
  const uint64_t generation = generation_;
  if (!idle_.empty()) {
    auto conn = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(conn), generation);
  }
  ++open_;
  lock.unlock();
  auto conn = Open();
  if (!conn) {
    lock.lock();
    --open_;
    lock.unlock();
    freed_.notify_one();
    return conn.error();
  }
  return Lease(this, std::move(*conn), generation);
}

void ConnectionPool::Return(std::unique_ptr<pqxx::connection> conn, uint64_t generation,
                            bool broken) {
  {
    std::lock_guard lock(mu_);
    if (broken || generation != generation_) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
  }
  freed_.notify_one();
  // A dropped connection closes here, outside the lock.
}

void ConnectionPool::DropIdle() {
  std::vector<std::unique_ptr<pqxx::connection>> dropped;
  {
    std::lock_guard lock(mu_);
    ++generation_;
    dropped.swap(idle_);
    open_ -= static_cast<int>(dropped.size());
  }
  freed_.notify_all();
}

PoolStats ConnectionPool::stats() const {
  std::lock_guard lock(mu_);
  return {static_cast<uint64_t>(open_), idle_.size(), timeouts_};
}

}  // namespace kvctl::pg
