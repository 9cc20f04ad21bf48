// `kvctl serve` as a library: open a store, serve the HTTP API over it, shut
// down cleanly. The command line (signals, config) is cmd's job.
//
// Lifecycle: Open() (file backend: checks the data dir can be used, binds
// the address, then recovers; InvalidArgument for a data dir that is not a
// writable directory, Busy when the address or the data dir is taken,
// Corruption naming file and offset) or Serve() (a store opened elsewhere,
// e.g. PostgreSQL) -> Run() blocks serving ->
// Shutdown() from another thread stops accepting, lets in-flight requests
// finish (those still arriving get at most `read_grace` more to arrive),
// then Run() closes the store (commits, syncs) and returns.
#pragma once

#include <memory>
#include <string>

#include "lib/core/auto_compaction.h"
#include "lib/core/file_log.h"
#include "lib/core/kv_store.h"
#include "lib/core/logger.h"
#include "lib/grpc/etcd_grpc_server.h"
#include "lib/server/api.h"
#include "lib/server/etcd_api.h"
#include "lib/server/etcd_grpc_gate.h"
#include "lib/server/http_server.h"
#include "lib/server/request_log.h"
#include "lib/server/storage_metrics.h"

namespace kvctl::server {

struct ServeOptions {
  core::FileLogOptions log;  // file backend: dir, fsync, segment_bytes
  std::chrono::milliseconds fsync_interval{100};
  core::AutoCompactionPolicy compaction;  // file backend
  core::WatchHubOptions watch;            // file backend: the store's watch hub
  HttpServerOptions http;
  ApiOptions api;
  // Identity, rate limit and request log, for every listener's every route.
  AdmissionOptions admission;
  RequestLogPolicy request_log;  // which requests get a log line (log.requests)
  // etcd's JSON API on a second listener (server.etcd_listen), with the
  // same TLS, timeouts and admission as `http`; off unless `etcd_host` is set.
  std::string etcd_host;
  int etcd_port = 0;  // 0: any free port, see etcd_port()
  // etcd's gRPC API on a listener of its own (server.etcd_grpc_listen),
  // with the same TLS (gRPC's own: what it cannot honour is refused at
  // start) and admission; off unless `etcd_grpc_host` is set.
  std::string etcd_grpc_host;
  int etcd_grpc_port = 0;  // 0: any free port, see etcd_grpc_port()
  // What the etcd faces' cluster and member ids are derived from: the data
  // dir's path, or the database (its DSN without secrets).
  std::string etcd_identity;
};

class KvServer {
 public:
  // The file backend: recovers the log in options.log.dir.
  static core::Result<std::unique_ptr<KvServer>> Open(ServeOptions options, core::Logger& logger);
  // Any backend that is already open and recovered.
  static core::Result<std::unique_ptr<KvServer>> Serve(std::unique_ptr<core::KvStore> store,
                                                       ServeOptions options, core::Logger& logger);
  ~KvServer();

  int port() const { return http_->port(); }
  // The etcd listener's port; 0 when it is off.
  int etcd_port() const { return etcd_http_ ? etcd_http_->port() : 0; }
  // The etcd gRPC listener's port; 0 when it is off.
  int etcd_grpc_port() const { return etcd_grpc_ ? etcd_grpc_->port() : 0; }
  // Serves until Shutdown(), then closes the store; the store's first error,
  // if any, is returned (a failed final sync is not success).
  core::Status Run();
  void Shutdown(std::chrono::milliseconds read_grace = std::chrono::milliseconds::max());
  // Rereads the files that may change while serving (on SIGHUP): the client
  // certificate revocation list (tls.client_crl). On failure the old one
  // stays; the reason is logged and returned. Any thread.
  core::Status Reload();

 private:
  KvServer(ServeOptions options, core::Logger& logger);
  // Makes the transport and binds the listening socket (and loads the TLS
  // files); connections wait in the backlog until Run().
  core::Status Bind();
  // Reads the TLS files into etcd_grpc_tls_ (and, with a CRL, how gRPC's
  // client certificates are checked against it).
  core::Status ReadGrpcTls();
  // Builds the API over store_ for the bound transport.
  core::Status Listen();

  ServeOptions options_;
  core::Logger& logger_;
  // Declared before the store, so they outlive the log that uses them.
  StorageMetrics storage_metrics_;                  // file backend only
  std::unique_ptr<TimedFileSystem> timed_fs_;       // file backend only
  std::unique_ptr<core::KvStore> store_;
  std::shared_ptr<ClientTrust> client_trust_;             // with tls.client_crl only
  std::unique_ptr<core::AutoCompactor> auto_compactor_;  // file backend only
  std::unique_ptr<RequestLog> request_log_;              // null: log.requests = "off"
  std::unique_ptr<AdmissionPipeline> admission_;        // both faces'
  std::unique_ptr<KvApi> api_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<EtcdApi> etcd_api_;      // with server.etcd_listen only
  std::unique_ptr<HttpServer> etcd_http_;
  etcd_grpc::TlsPems etcd_grpc_tls_;                      // read by Bind(), for Listen()
  std::unique_ptr<EtcdGrpcGate> etcd_grpc_gate_;           // with server.etcd_grpc_listen only
  std::unique_ptr<etcd_grpc::EtcdGrpcServer> etcd_grpc_;  // with server.etcd_grpc_listen only
};

}  // namespace kvctl::server
