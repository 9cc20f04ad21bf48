// Which server commits the PostgreSQL backend's puts and deletes for all
// the servers of a database (pg_store.h, "One writer"). Internal to lib/pg.
//
// The role is a session advisory lock ("kvctlwrt") held on a connection of
// its own, as etcd has one leader: one server at a time holds it, and it
// passes to another when that server stops, dies or loses the database
// (PostgreSQL ends the session and frees the lock). Only a server with a
// peer URL stands. The holder writes its URL and a fresh random token into
// kv_writer; the others read that row at least every `retry` and forward
// their writes there, presenting the token. Holding the lock is not what
// makes a commit correct (every commit still takes the kv_meta lock): two
// servers that both believe they are the writer, or a server that commits
// its own writes because it cannot reach the writer, are slower, not wrong.
//
// Thread safety: construct, then Stop (or destroy) from one thread; the
// rest from any.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "lib/core/logger.h"

namespace kvctl::pg {

class WriterElection {
 public:
  struct Options {
    std::string conninfo;
    std::string url;  // this server's peer URL; "" = it never becomes the writer
    core::Logger* logger = nullptr;
    std::chrono::milliseconds retry{1000};  // between tries for the role and reads of kv_writer
  };
  struct Writer {
    std::string url;    // "" while none is known
    std::string token;  // what its peers present
    bool self = false;  // this server is the writer
  };

  explicit WriterElection(Options options);
  ~WriterElection();
  void Stop();

  // The writer as last seen.
  Writer Current() const;
  // Whether `token` is this server's own while it is the writer.
  bool IsOwnToken(std::string_view token) const;
  // A forward to `url` failed: read kv_writer again now rather than at the
  // next `retry` (the role may have passed on).
  void Recheck();

 private:
  void Loop();
  bool SleepUnlessStopped(std::chrono::milliseconds d);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Writer current_;      // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  bool recheck_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace kvctl::pg
