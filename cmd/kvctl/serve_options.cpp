#include "cmd/kvctl/serve_options.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "lib/client/peer_forwarder.h"
#include "lib/pg/dsn_mask.h"

namespace kvctl::cmd {

core::LogLevel LogLevelFrom(const std::string& s) {
  if (s == "debug") return core::LogLevel::kDebug;
  if (s == "warn") return core::LogLevel::kWarn;
  if (s == "error") return core::LogLevel::kError;
  return core::LogLevel::kInfo;
}

namespace {

core::WatchHubOptions WatchOptionsFrom(const config::Config& c) {
  core::WatchHubOptions w;
  w.progress_interval = c.server.watch_progress_interval;
  w.max_lag = c.server.watch_max_lag;
  return w;
}

std::vector<server::Grant> GrantsFrom(const std::vector<config::AuthGrant>& grants) {
  std::vector<server::Grant> out;
  for (const config::AuthGrant& g : grants) out.push_back({g.prefix, g.read, g.write, g.admin});
  return out;
}

// The config layer has checked every identity (lib/config/identities.h).
server::AuthOptions AuthOptionsFrom(const config::Config& c) {
  server::AuthOptions auth;
  for (const auto* list : {&c.auth.tokens, &c.auth.file_tokens}) {
    for (const config::AuthIdentity& id : *list) {
      auth.tokens.push_back({id.name, server::ParseSha256Hex(id.sha256).value(), GrantsFrom(id.grants)});
    }
  }
  for (const auto* list : {&c.auth.certs, &c.auth.file_certs}) {
    for (const config::AuthIdentity& id : *list) auth.certs.push_back({id.name, GrantsFrom(id.grants)});
  }
  auth.metrics_need_admin = c.auth.metrics == "admin";
  return auth;
}

}  // namespace

server::ServeOptions ServeOptionsFrom(const config::Config& c) {
  server::ServeOptions o;
  o.log.dir = c.storage.data_dir;
  o.log.fsync = c.storage.fsync;
  o.log.segment_bytes = c.storage.segment_bytes;
  o.log.history_retention = c.storage.history_retention;
  o.watch = WatchOptionsFrom(c);
  o.fsync_interval = c.storage.fsync_interval;
  o.compaction.enabled = c.storage.compact_dead_percent > 0;
  o.compaction.dead_percent = static_cast<uint32_t>(c.storage.compact_dead_percent);
  o.compaction.min_bytes = c.storage.compact_min_bytes;
  // server.listen is validated as host:port by the config layer.
  const size_t colon = c.server.listen.rfind(':');
  o.http.host = c.server.listen.substr(0, colon);
  o.http.port = std::stoi(c.server.listen.substr(colon + 1));
  if (!c.server.etcd_listen.empty()) {
    const size_t etcd_colon = c.server.etcd_listen.rfind(':');
    o.etcd_host = c.server.etcd_listen.substr(0, etcd_colon);
    o.etcd_port = std::stoi(c.server.etcd_listen.substr(etcd_colon + 1));
  }
  if (!c.server.etcd_grpc_listen.empty()) {
    const size_t colon_at = c.server.etcd_grpc_listen.rfind(':');
    o.etcd_grpc_host = c.server.etcd_grpc_listen.substr(0, colon_at);
    o.etcd_grpc_port = std::stoi(c.server.etcd_grpc_listen.substr(colon_at + 1));
  }
  if (!o.etcd_host.empty() || !o.etcd_grpc_host.empty()) {
    std::error_code ec;
    const auto dir = std::filesystem::weakly_canonical(c.storage.data_dir, ec);
    o.etcd_identity = c.storage.backend == "postgres" ? "postgres:" + pg::MaskDsnSecrets(c.postgres.dsn)
                                                      : "file:" + (ec ? c.storage.data_dir : dir.string());
  }
  o.http.io_threads = c.server.io_threads;
  o.http.threads = c.server.threads;
  o.http.max_connections = c.server.max_connections;
  o.http.keepalive_max_requests = static_cast<size_t>(c.server.keepalive_max_requests);
  o.http.keepalive_timeout = c.server.keepalive_timeout;
  o.http.read_timeout = c.server.read_timeout;
  o.http.write_timeout = c.server.write_timeout;
  o.http.max_body_bytes = c.limits.max_value_bytes;
  o.http.max_header_bytes = c.server.max_header_bytes;
  o.http.tls.cert_file = c.tls.cert;
  o.http.tls.key_file = c.tls.key;
  o.http.tls.client_ca_file = c.tls.client_ca;
  o.http.tls.client_crl_file = c.tls.client_crl;
  o.http.tls.min_version = c.tls.min_version;
  o.http.tls.ciphers = c.tls.ciphers;
  o.http.tls.ciphersuites = c.tls.ciphersuites;
  o.api.max_key_bytes = c.limits.max_key_bytes;
  o.api.max_value_bytes = c.limits.max_value_bytes;
  o.api.max_txn_ops = c.limits.max_txn_ops;
  o.admission.auth = AuthOptionsFrom(c);
  o.admission.rate_limit = c.ratelimit.rate;
  o.admission.rate_burst = c.ratelimit.burst;
  using Mode = server::RequestLogPolicy::Mode;
  o.request_log.mode = c.log.requests == "all" ? Mode::kAll : c.log.requests == "off" ? Mode::kOff : Mode::kErrors;
  o.request_log.slow = c.log.slow_request;
  return o;
}

// postgres.peer_url, or http://host:port of the native listener `http`
// when that is plain HTTP on a concrete address and port; else "" (never
// the writer: an embedded bench listens on port 0, for one).
static std::string PeerUrlOf(const config::Config& c, const server::HttpServerOptions& http) {
  if (!c.postgres.peer_url.empty()) return c.postgres.peer_url;
  if (!http.tls.cert_file.empty() || http.port == 0) return "";
  if (http.host.empty() || http.host == "0.0.0.0" || http.host == "::" || http.host == "[::]") return "";
  return fmt::format("http://{}:{}", http.host, http.port);
}

pg::PgStoreOptions PgStoreOptionsFrom(const config::Config& c, core::Logger& logger) {
  pg::PgStoreOptions o;
  o.dsn = c.postgres.dsn;
  o.pool_min = c.postgres.pool_min;
  o.pool_max = c.postgres.pool_max;
  o.pool_timeout = c.postgres.pool_timeout;
  o.connect_timeout = c.postgres.connect_timeout;
  o.reconnect_max_backoff = c.postgres.reconnect_max_backoff;
  o.watch = WatchOptionsFrom(c);
  o.history_retention = c.storage.history_retention;
  o.logger = &logger;
  // One forwarder per server: the committer is its only caller.
  auto forwarder = std::make_shared<client::PeerForwarder>(client::PeerForwarder::Options{});
  o.forward = [forwarder](const std::string& url, const std::string& token, const std::string& body) {
    return forwarder->Send(url, token, body);
  };
  // The writer reads no body bigger than limits.max_value_bytes.
  o.max_forward_bytes = c.limits.max_value_bytes;
  return o;
}

core::Result<std::unique_ptr<server::KvServer>> OpenServer(const config::Config& c,
                                                           server::ServeOptions options,
                                                           core::Logger& logger) {
  if (c.storage.backend != "postgres") return server::KvServer::Open(std::move(options), logger);
  if (!c.postgres.peer_url.empty() && !c.tls.cert.empty()) {
    return core::Status::InvalidArgument(
        "postgres.peer_url is plain HTTP, but tls.cert is set and this server's listener speaks only TLS: its "
        "peers could not forward writes to it; leave postgres.peer_url empty (the server then never becomes the "
        "writer and forwards its own writes to the one that is)");
  }
  pg::PgStoreOptions store_options = PgStoreOptionsFrom(c, logger);
  store_options.peer_url = PeerUrlOf(c, options.http);
  auto store = pg::PgStore::Open(std::move(store_options));
  if (!store) return store.error();
  return server::KvServer::Serve(std::move(*store), std::move(options), logger);
}

}  // namespace kvctl::cmd
