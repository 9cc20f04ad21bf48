// kvctl serve: run the server until SIGTERM or SIGINT.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <CLI/CLI.hpp>

#include "cmd/kvctl/command.h"
#include "lib/server/kv_server.h"

namespace kvctl::cmd {
namespace {

core::LogLevel LevelFrom(const std::string& s) {
  if (s == "debug") return core::LogLevel::kDebug;
  if (s == "warn") return core::LogLevel::kWarn;
  if (s == "error") return core::LogLevel::kError;
  return core::LogLevel::kInfo;
}

server::ServeOptions ServeOptionsFrom(const config::Config& c) {
  server::ServeOptions o;
  o.log.dir = c.storage.data_dir;
  o.log.fsync = c.storage.fsync;
  o.log.segment_bytes = c.storage.segment_bytes;
  o.fsync_interval = c.storage.fsync_interval;
  o.compaction.enabled = c.storage.compact_dead_percent > 0;
  o.compaction.dead_percent = static_cast<uint32_t>(c.storage.compact_dead_percent);
  o.compaction.min_bytes = c.storage.compact_min_bytes;
  // server.listen is validated as host:port by the config layer.
  const size_t colon = c.server.listen.rfind(':');
  o.http.host = c.server.listen.substr(0, colon);
  o.http.port = std::stoi(c.server.listen.substr(colon + 1));
  o.http.io_threads = c.server.io_threads;
  o.http.threads = c.server.threads;
  o.http.max_connections = c.server.max_connections;
  o.http.keepalive_max_requests = static_cast<size_t>(c.server.keepalive_max_requests);
  o.http.keepalive_timeout = c.server.keepalive_timeout;
  o.http.read_timeout = c.server.read_timeout;
  o.http.write_timeout = c.server.write_timeout;
  o.http.max_body_bytes = c.limits.max_value_bytes;
  o.api.max_key_bytes = c.limits.max_key_bytes;
  o.api.max_value_bytes = c.limits.max_value_bytes;
  return o;
}

core::Status RunServe(const CommandContext& ctx) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  core::Logger logger(LevelFrom(cfg->log.level),
                      cfg->log.format == "json" ? core::LogFormat::kJson : core::LogFormat::kText);

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only the watcher below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  if (!cfg->config_file.empty()) logger.Info("loaded config", {{"file", cfg->config_file}});
  auto server = server::KvServer::Open(ServeOptionsFrom(*cfg), logger);
  if (!server) return server.error();

  std::atomic<bool> done{false};
  const auto shutdown_timeout = cfg->server.shutdown_timeout;
  std::thread watcher([&] {
    const timespec poll{0, 200 * 1000 * 1000};
    int sig = -1;
    while (!done && sig < 0) sig = sigtimedwait(&stop_signals, nullptr, &poll);
    if (done) return;
    logger.Info("stopping: finishing in-flight requests, then syncing the log",
                {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    (*server)->Shutdown();
    const auto deadline = std::chrono::steady_clock::now() + shutdown_timeout;
    while (!done && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!done) {
      // Requests still hold connections past server.shutdown_timeout. Every
      // acknowledged write has already been written to the log file (and
      // synced under fsync = "always"), so leaving now loses nothing that was
      // acknowledged; waiting longer would hold up a supervisor's restart.
      logger.Error("shutdown timed out with requests in flight; exiting without them",
                   {{"timeout_ms", std::to_string(shutdown_timeout.count())}});
      std::_Exit(3);
    }
  });

  core::Status status = (*server)->Run();
  done = true;
  watcher.join();
  return status;
}

}  // namespace

void AddServeCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* sub = app.add_subcommand(
      "serve", "Run the server: keys in memory, every acknowledged write durable in the log");
  sub->group(kGroupServer);
  config::AddSettingFlags(*sub, config::Scope::kServe, ctx.flags);
  sub->callback([&ctx] { ctx.run = [&ctx] { return RunServe(ctx); }; });
}

}  // namespace kvctl::cmd
