// A bounded pool of PostgreSQL connections. Internal to lib/pg (pqxx).
//
// At most `max` connections are open at once; Acquire() hands out an idle
// one, opens a new one while under the cap, or waits up to the acquire
// timeout (then Unavailable). A Lease returns its connection when it goes
// out of scope, unless Discard() said the connection is broken.
// DropIdle() closes every idle connection and marks those in use as
// stale, so that after the database came back (or failed over) no request
// reuses a connection to the old server.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/pg/connection.h"

namespace kvctl::pg {

struct PoolOptions {
  std::string conninfo;
  int min = 1;
  int max = 4;
  std::chrono::milliseconds acquire_timeout{5000};
  // Runs on each new connection (prepares statements); may throw.
  std::function<void(pqxx::connection&)> on_connect;
};

struct PoolStats {
  uint64_t open = 0;
  uint64_t idle = 0;
  uint64_t timeouts = 0;  // Acquire() calls that gave up waiting
};

class ConnectionPool {
 public:
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& operator*() const { return *conn_; }
    pqxx::connection* operator->() const { return conn_.get(); }
    // The connection is broken: close it instead of returning it.
    void Discard() { broken_ = true; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn, uint64_t generation);
    ConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    uint64_t generation_;
    bool broken_ = false;
  };

  explicit ConnectionPool(PoolOptions options);
  // Opens `min` connections; the first failure is returned.
  core::Status Warm();
  core::Result<Lease> Acquire();
  void DropIdle();
  PoolStats stats() const;

 private:
  core::Result<std::unique_ptr<pqxx::connection>> Open();
  void Return(std::unique_ptr<pqxx::connection> conn, uint64_t generation, bool broken);

  const PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  int open_ = 0;  // idle + leased + being opened
  uint64_t generation_ = 0;
  uint64_t timeouts_ = 0;
};

}  // namespace kvctl::pg
