#include "lib/server/kv_server.h"

#include <chrono>

#include <fmt/format.h>

#include "lib/core/store.h"

namespace kvctl::server {

KvServer::KvServer(ServeOptions options, core::Logger& logger)
    : options_(std::move(options)), logger_(logger) {}

KvServer::~KvServer() = default;

core::Result<std::unique_ptr<KvServer>> KvServer::Open(ServeOptions options, core::Logger& logger) {
  options.log.logger = &logger;
  core::StoreOptions store_options;
  store_options.logger = &logger;
  if (options.log.fsync == core::FsyncPolicy::kInterval) {
    store_options.sync_interval = options.fsync_interval;
  }
  auto store = std::make_unique<core::Store>(store_options);

  const auto started = std::chrono::steady_clock::now();
  core::RecoveryReport report;
  core::Store& recovering = *store;
  auto log = core::FileLog::Open(
      options.log,
      [&recovering](const core::LogRecord& r) {
        recovering.ApplyRecovered(r);
        return core::Status::Ok();
      },
      &report);
  if (!log) return log.error();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  logger.Info("recovered the log", {{"data_dir", options.log.dir},
                                    {"segments", std::to_string(report.segments)},
                                    {"records", std::to_string(report.records)},
                                    {"keys", std::to_string(store->stats().keys)},
                                    {"snapshot_keys", std::to_string(report.snapshot_records)},
                                    {"revision", std::to_string(report.last_revision)},
                                    {"fsync", std::string(core::FsyncPolicyName(options.log.fsync))},
                                    {"took_ms", std::to_string(took.count())}});
  store->NoteRecoveredRevision(report.last_revision);
  store->Start(std::move(*log));
  core::Store& file_store = *store;
  auto server = Serve(std::move(store), std::move(options), logger);
  if (!server) return server;
  KvServer& s = **server;
  s.auto_compactor_ = std::make_unique<core::AutoCompactor>(s.options_.compaction, file_store, logger);
  return server;
}

core::Result<std::unique_ptr<KvServer>> KvServer::Serve(std::unique_ptr<core::KvStore> store,
                                                        ServeOptions options,
                                                        core::Logger& logger) {
  std::unique_ptr<KvServer> server(new KvServer(std::move(options), logger));
  ServeOptions& o = server->options_;
  server->store_ = std::move(store);
  server->api_ = std::make_unique<KvApi>(*server->store_, o.api);
  KvApi* api = server->api_.get();
  server->http_ = std::make_unique<HttpServer>(
      o.http, [api](const HttpRequest& r) { return api->Handle(r); }, &KvApi::TransportError);
  server->http_->set_async_handler(
      [api](const HttpRequest& r, HttpServer::Reply reply) { return api->HandleWriteAsync(r, std::move(reply)); });
  if (core::Status s = server->http_->Bind(); !s.ok()) return s;
  logger.Info("listening", {{"addr", fmt::format("{}:{}", o.http.host, server->http_->port())},
                            {"threads", std::to_string(o.http.threads)}});
  return server;
}

core::Status KvServer::Run() {
  core::Status served = http_->Serve();
  if (auto_compactor_) auto_compactor_->Stop();
  core::Status closed = store_->Close();
  if (!closed.ok()) {
    logger_.Error("closing the store failed", {{"cause", closed.message()}});
  } else {
    logger_.Info("stopped; every acknowledged write is durable",
                 {{"revision", std::to_string(store_->revision())}});
  }
  return served.ok() ? closed : served;
}

void KvServer::Shutdown() { http_->Stop(); }

}  // namespace kvctl::server
