// Which server expires the PostgreSQL backend's leases, and when (SPEC §6:
// "exactly one server expires a lease"). Internal to lib/pg.
//
// The duty is a session advisory lock ("kvctllse") held on a connection of
// its own: one server at a time has it, and it passes to another when that
// server stops, dies or loses the database (PostgreSQL ends the session
// and frees the lock). The holder looks for leases past their deadline on
// the database's clock at least every `poll` (sooner when the next
// deadline is sooner) and hands their ids to `expire`, which ends each in
// the committer's write transaction (pg_leases.h: only if still due), so
// even two servers that both thought they held the duty could not end one
// lease twice: the lease row is deleted once.
//
// A server that takes the duty first gives every lease its full TTL again
// from now (as etcd's new leader does, and as the file store does on
// restart): while no server held it, nobody could keep a lease alive or
// expire it, so none ends early because of an outage.
//
// Thread safety: construct, then Stop (or destroy) from one thread;
// holding() from any.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/logger.h"

namespace kvctl::pg {

class LeaseExpiry {
 public:
  struct Options {
    std::string conninfo;
    core::Logger* logger = nullptr;
    // Ends the leases given (those still due), returning when done: false
    // when the writes failed (the loop then waits `retry` before looking
    // again).
    std::function<bool(const std::vector<uint64_t>&)> expire;
    std::chrono::milliseconds poll{100};
    std::chrono::milliseconds retry{1000};  // between tries for the duty, or to reconnect
  };
  explicit LeaseExpiry(Options options);
  ~LeaseExpiry();
  void Stop();
  // Whether this server holds the duty now.
  bool holding() const { return holding_.load(); }

 private:
  void Loop();
  bool SleepUnlessStopped(std::chrono::milliseconds d);

  Options options_;
  std::atomic<bool> holding_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kvctl::pg
