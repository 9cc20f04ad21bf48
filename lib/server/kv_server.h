// `kvctl serve` as a library: recover the log into a Store, serve the HTTP
// API, shut down cleanly. The command line (signals, config) is cmd's job.
//
// Lifecycle: Open() (recovery; Corruption names file and offset, Busy when
// the data dir or the address is taken) -> Run() blocks serving ->
// Shutdown() from another thread stops accepting, lets in-flight requests
// finish, then Run() commits, syncs and closes the log and returns.
#pragma once

#include <memory>
#include <string>

#include "lib/core/file_log.h"
#include "lib/core/logger.h"
#include "lib/core/auto_compaction.h"
#include "lib/core/store.h"
#include "lib/server/api.h"
#include "lib/server/http_server.h"
#include "lib/server/storage_metrics.h"

namespace kvctl::server {

struct ServeOptions {
  core::FileLogOptions log;  // dir, fsync, segment_bytes
  std::chrono::milliseconds fsync_interval{100};
  core::AutoCompactionPolicy compaction;
  HttpServerOptions http;
  ApiOptions api;
  bool log_requests = true;  // one log line per request (log.requests)
};

class KvServer {
 public:
  static core::Result<std::unique_ptr<KvServer>> Open(ServeOptions options, core::Logger& logger);
  ~KvServer();

  int port() const { return http_->port(); }
  // Serves until Shutdown(), then closes the store; the log's first error,
  // if any, is returned (a failed final sync is not success).
  core::Status Run();
  void Shutdown();

 private:
  KvServer(ServeOptions options, core::Logger& logger);

  ServeOptions options_;
  core::Logger& logger_;
  // Declared before the store, so they outlive the log that uses them.
  StorageMetrics storage_metrics_;
  std::unique_ptr<TimedFileSystem> timed_fs_;
  std::unique_ptr<core::Store> store_;
  core::FileLog* log_ = nullptr;  // owned by store_
  std::unique_ptr<core::AutoCompactor> auto_compactor_;
  std::unique_ptr<KvApi> api_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace kvctl::server
