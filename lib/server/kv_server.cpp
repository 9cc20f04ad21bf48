#include "lib/server/kv_server.h"

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "lib/core/store.h"
#include "lib/server/data_dir_access.h"

namespace kvctl::server {
namespace {

// 127.0.0.0/8, ::1 and localhost: only this host can connect.
bool IsLoopback(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

// For the "listening" line: which requests will be logged.
std::string RequestLogSummary(const RequestLogPolicy& p) {
  using Mode = RequestLogPolicy::Mode;
  if (p.mode == Mode::kOff) return "off";
  const auto slow_ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.slow).count();
  const std::string slow = p.slow.count() > 0 ? fmt::format(" and slower than {}ms", slow_ms) : "";
  return p.mode == Mode::kAll ? "every request" : "5xx answers" + slow;
}

// FNV-1a, 64 bits: the same ids for the same identity on every build.
uint64_t StableId(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h == 0 ? 1 : h;
}

// What both etcd faces answer with: the same cluster and member ids (one
// member, whichever face is asked) and the same limits.
EtcdOptions EtcdIdentity(const ServeOptions& o) {
  EtcdOptions etcd;
  etcd.cluster_id = StableId("cluster:" + o.etcd_identity);
  etcd.member_id = StableId("member:" + o.etcd_identity);
  etcd.max_key_bytes = o.api.max_key_bytes;
  etcd.max_value_bytes = o.api.max_value_bytes;
  etcd.max_txn_ops = o.api.max_txn_ops;
  return etcd;
}

// How long gRPC calls in flight may take to finish at shutdown.
constexpr std::chrono::milliseconds kGrpcShutdownGrace{10000};

}  // namespace

KvServer::KvServer(ServeOptions options, core::Logger& logger)
    : options_(std::move(options)), logger_(logger) {}

KvServer::~KvServer() = default;

core::Result<std::unique_ptr<KvServer>> KvServer::Open(ServeOptions options, core::Logger& logger) {
  std::unique_ptr<KvServer> server(new KvServer(std::move(options), logger));
  ServeOptions& o = server->options_;
  o.log.logger = &logger;
  // Everything that can be found wrong without writing is checked before
  // the data dir is created or recovered: its kind and permissions, then
  // the address and the TLS files (Bind). A server that cannot start
  // leaves no directory behind and does not spend a recovery on nothing.
  if (o.log.fs == nullptr) {
    if (core::Status s = CheckDataDirAccess(o.log.dir); !s.ok()) return s;
  }
  if (core::Status s = server->Bind(); !s.ok()) return s;
  StorageMetrics& storage_metrics = server->storage_metrics_;
  server->timed_fs_ = std::make_unique<TimedFileSystem>(
      o.log.fs != nullptr ? *o.log.fs : core::PosixFileSystem(), storage_metrics);
  o.log.fs = server->timed_fs_.get();

  core::StoreOptions store_options;
  store_options.logger = &logger;
  store_options.watch = o.watch;
  store_options.on_commit = [&storage_metrics](size_t changes) { storage_metrics.ObserveCommit(changes); };
  if (o.log.fsync == core::FsyncPolicy::kInterval) store_options.sync_interval = o.fsync_interval;
  auto store = std::make_unique<core::Store>(store_options);

  const auto started = std::chrono::steady_clock::now();
  core::RecoveryReport report;
  core::Store& recovering = *store;
  auto log = core::FileLog::Open(
      o.log,
      [&recovering](const core::LogRecord& r) {
        recovering.ApplyRecovered(r);
        return core::Status::Ok();
      },
      &report);
  if (!log) return log.error();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  logger.Info("recovered the log", {{"data_dir", o.log.dir},
                                    {"segments", std::to_string(report.segments)},
                                    {"records", std::to_string(report.records)},
                                    {"keys", std::to_string(store->stats().keys)},
                                    {"snapshot_keys", std::to_string(report.snapshot_records)},
                                    {"revision", std::to_string(report.last_revision)},
                                    {"fsync", std::string(core::FsyncPolicyName(o.log.fsync))},
                                    {"took_ms", std::to_string(took.count())}});
  store->NoteRecoveredRevision(report.last_revision);
  store->Start(std::move(*log));
  server->auto_compactor_ = std::make_unique<core::AutoCompactor>(o.compaction, *store, logger);
  server->store_ = std::move(store);
  // The log's own gauges come through KvStore::BackendMetrics; these are the
  // file system's timings and the group-commit batch sizes.
  o.api.render_backend_metrics = [&storage_metrics](std::string* out) { storage_metrics.Render(out); };
  if (core::Status s = server->Listen(); !s.ok()) return s;
  return server;
}

core::Result<std::unique_ptr<KvServer>> KvServer::Serve(std::unique_ptr<core::KvStore> store,
                                                        ServeOptions options,
                                                        core::Logger& logger) {
  std::unique_ptr<KvServer> server(new KvServer(std::move(options), logger));
  server->store_ = std::move(store);
  if (core::Status s = server->Bind(); !s.ok()) return s;
  if (core::Status s = server->Listen(); !s.ok()) return s;
  return server;
}

core::Status KvServer::Bind() {
  TlsOptions& tls = options_.http.tls;
  tls.logger = &logger_;
  if (tls.enabled() && !tls.client_ca_file.empty() && !tls.client_crl_file.empty()) {
    auto trust = ClientTrust::Load(tls.client_ca_file, tls.client_crl_file, &logger_);
    if (!trust) return trust.error();
    client_trust_ = std::move(*trust);
    tls.client_trust = client_trust_;
  }
  // The handlers reach the API through this server: it is made by Listen(),
  // once the store is open, and requests are only read (and handshakes
  // made) after Run() starts.
  options_.http.on_tls_failure = [this](std::string_view remote, TlsFailure why, std::string_view detail) {
    admission_->TlsHandshakeFailed(remote, why, detail);
  };
  http_ = std::make_unique<HttpServer>(
      options_.http, [this](const HttpRequest& r) { return api_->Handle(r); },
      [this](int status, std::string_view problem, std::string_view remote) {
        return admission_->Refused(status, problem, remote);
      });
  http_->set_admitter([this](HttpRequest& r) { return api_->Admit(r); });
  http_->set_async_handler(
      [this](HttpRequest& r, HttpServer::Reply reply) { return api_->HandleWriteAsync(r, std::move(reply)); });
  if (core::Status s = http_->Bind(); !s.ok()) return s;
  if (!options_.etcd_grpc_host.empty()) {
    // gRPC has TLS of its own: what it cannot honour is refused before the
    // store is touched, and its files are read now, once, as for the
    // other listeners.
    if (core::Status s = CheckGrpcCanHonour(tls); !s.ok()) return s;
    if (core::Status s = ReadGrpcTls(); !s.ok()) return s;
  }
  if (options_.etcd_host.empty()) return core::Status::Ok();
  HttpServerOptions etcd_options = options_.http;
  etcd_options.host = options_.etcd_host;
  etcd_options.port = options_.etcd_port;
  // etcd's bodies carry values in base64, a third larger, inside JSON: a
  // value of limits.max_value_bytes must still fit.
  etcd_options.max_body_bytes = options_.http.max_body_bytes / 3 * 4 + 64 * 1024;
  etcd_http_ = std::make_unique<HttpServer>(
      etcd_options, [this](const HttpRequest& r) { return etcd_api_->Handle(r); },
      [this](int status, std::string_view problem, std::string_view remote) {
        return etcd_api_->Refused(status, problem, remote);
      });
  etcd_http_->set_admitter([this](HttpRequest& r) { return etcd_api_->Admit(r); });
  etcd_http_->set_async_handler(
      [this](HttpRequest& r, HttpServer::Reply reply) { return etcd_api_->HandleAsync(r, std::move(reply)); });
  return etcd_http_->Bind();
}

core::Status KvServer::ReadGrpcTls() {
  const TlsOptions& tls = options_.http.tls;
  if (!tls.enabled()) return core::Status::Ok();
  auto cert = ReadTlsFile("tls.cert", tls.cert_file);
  if (!cert) return cert.error();
  auto key = ReadTlsFile("tls.key", tls.key_file);
  if (!key) return key.error();
  etcd_grpc_tls_.cert_chain = std::move(*cert);
  etcd_grpc_tls_.private_key = std::move(*key);
  if (tls.client_ca_file.empty()) return core::Status::Ok();
  auto ca = ReadTlsFile("tls.client_ca", tls.client_ca_file);
  if (!ca) return ca.error();
  etcd_grpc_tls_.client_ca = std::move(*ca);
  if (client_trust_ == nullptr) return core::Status::Ok();
  // gRPC checks no revocation list: after it has verified a certificate,
  // the JSON listeners' trust store (the CRL, reread on SIGHUP and on
  // change) judges it too, and a refusal counts as theirs do.
  etcd_grpc_tls_.check_client = [this](std::string_view cert_pem,
                                       std::string_view chain_pem) -> std::optional<std::string> {
    core::Status verified = client_trust_->Verify(cert_pem, chain_pem);
    if (verified.ok()) return std::nullopt;
    // gRPC does not tell the verifier the client's address.
    admission_->TlsHandshakeFailed("-", TlsFailure::kBadClientCert,
                                   "server.etcd_grpc_listen: " + verified.message());
    return verified.message();
  };
  return core::Status::Ok();
}

core::Status KvServer::Listen() {
  ServeOptions& o = options_;
  if (o.request_log.mode != RequestLogPolicy::Mode::kOff) {
    request_log_ = std::make_unique<RequestLog>(logger_, o.request_log);
  }
  o.admission.request_logger = request_log_.get();
  o.admission.logger = &logger_;
  const bool auth_on = o.admission.auth.enabled();
  const size_t identities = o.admission.auth.tokens.size() + o.admission.auth.certs.size();
  const double rate_limit = o.admission.rate_limit;
  admission_ = std::make_unique<AdmissionPipeline>(*store_, std::move(o.admission));
  // The gate is made below, before a scrape can come (requests are read
  // once Run() starts).
  if (!o.etcd_grpc_host.empty()) {
    o.api.render_grpc_metrics = [this](std::string* out) { etcd_grpc_gate_->RenderMetrics(out); };
  }
  api_ = std::make_unique<KvApi>(*store_, o.api, *admission_);
  if (etcd_http_) {
    EtcdOptions etcd = EtcdIdentity(o);
    etcd.client_url = fmt::format("{}://{}:{}", o.http.tls.enabled() ? "https" : "http", o.etcd_host,
                                  etcd_http_->port());
    etcd_api_ = std::make_unique<EtcdApi>(*store_, *admission_, std::move(etcd));
    logger_.Info("serving etcd's JSON API", {{"addr", fmt::format("{}:{}", o.etcd_host, etcd_http_->port())},
                                             {"scheme", o.http.tls.enabled() ? "https" : "http"}});
  }
  if (!o.etcd_grpc_host.empty()) {
    etcd_grpc_gate_ = std::make_unique<EtcdGrpcGate>(*admission_, request_log_.get());
    etcd_grpc::EtcdGrpcOptions grpc_options;
    grpc_options.host = o.etcd_grpc_host;
    grpc_options.port = o.etcd_grpc_port;
    grpc_options.etcd = EtcdIdentity(o);
    grpc_options.tls = std::move(etcd_grpc_tls_);
    auto started = etcd_grpc::EtcdGrpcServer::Start(*store_, *etcd_grpc_gate_, std::move(grpc_options));
    if (!started) return started.error();
    etcd_grpc_ = std::move(*started);
    logger_.Info("serving etcd's gRPC API", {{"addr", fmt::format("{}:{}", o.etcd_grpc_host, etcd_grpc_->port())},
                                             {"scheme", o.http.tls.enabled() ? "https" : "http"}});
  }
  const bool loopback = IsLoopback(o.http.host);
  logger_.Info("listening",
               {{"addr", fmt::format("{}:{}", o.http.host, http_->port())},
                {"scheme", o.http.tls.enabled() ? "https" : "http"},
                {"client_certs", o.http.tls.client_ca_file.empty() ? "not asked for"
                                 : client_trust_ != nullptr          ? "required, revocation checked"
                                                                     : "required"},
                {"auth", auth_on ? fmt::format("on ({} identities)", identities) : "off"},
                {"ratelimit", rate_limit > 0 ? fmt::format("{}/s per client", rate_limit) : "off"},
                {"request_log", RequestLogSummary(o.request_log)},
                {"reachable_from", loopback ? "this host only (loopback; set server.listen to serve others)"
                                            : "other hosts"},
                {"threads", std::to_string(o.http.threads)}});
  if (!loopback && (!o.http.tls.enabled() || !auth_on)) {
    logger_.Warn("listening beyond loopback without TLS or without auth: anyone who can reach this "
                 "address can read what passes or every key (see README, \"Run it securely\")",
                 {{"tls", o.http.tls.enabled() ? "on" : "off"}, {"auth", auth_on ? "on" : "off"}});
  }
  return core::Status::Ok();
}

core::Status KvServer::Run() {
  core::Status etcd_served;
  std::thread etcd_thread;
  if (etcd_http_) etcd_thread = std::thread([this, &etcd_served] { etcd_served = etcd_http_->Serve(); });
  core::Status served = http_->Serve();
  // No gRPC call may outlive the store: those in flight get their grace
  // (a no-op when Shutdown() got there first).
  if (etcd_grpc_) etcd_grpc_->Shutdown(kGrpcShutdownGrace);
  if (etcd_thread.joinable()) {
    etcd_http_->Stop();
    etcd_thread.join();
    if (served.ok()) served = etcd_served;
  }
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

void KvServer::Shutdown(std::chrono::milliseconds read_grace) {
  if (etcd_http_) etcd_http_->Stop(read_grace);
  http_->Stop(read_grace);
  // gRPC calls in flight get the same grace, at most kGrpcShutdownGrace.
  if (etcd_grpc_) etcd_grpc_->Shutdown(std::min(read_grace, kGrpcShutdownGrace));
}

core::Status KvServer::Reload() {
  if (client_trust_ == nullptr) {
    logger_.Info("reload asked for: nothing to reread (only tls.client_crl is reread)");
    return core::Status::Ok();
  }
  return client_trust_->Reload();
}

}  // namespace kvctl::server
