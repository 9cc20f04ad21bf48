// kvctl serve: run the server until SIGTERM or SIGINT.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/serve_options.h"
#include "lib/config/file_modes.h"
#include "lib/server/kv_server.h"

namespace kvctl::cmd {
namespace {

// `path` from the root: log lines outlive the working directory they were
// relative to (a service's is nobody's guess). "." steps are dropped; ".."
// ones stay, as a symlink before one decides where it leads.
std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) return path;
  std::filesystem::path out;
  for (const std::filesystem::path& part : absolute) {
    if (part != ".") out /= part;
  }
  return out.string();
}

core::Status RunServe(const CommandContext& ctx) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  cfg->storage.data_dir = Absolute(cfg->storage.data_dir);
  cfg->config_file = Absolute(cfg->config_file);
  if (core::Status s = config::LoadAuthFile(*cfg); !s.ok()) return s;
  if (core::Status s = config::CheckPrivateKeyMode("tls.key", cfg->tls.key); !s.ok()) return s;
  core::Logger logger(LogLevelFrom(cfg->log.level),
                      cfg->log.format == "json" ? core::LogFormat::kJson : core::LogFormat::kText);

  // Block the stop and reload signals before any thread starts, so every
  // thread inherits the mask and only the watcher below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  if (!cfg->config_file.empty()) logger.Info("loaded config", {{"file", cfg->config_file}});
  auto server = OpenServer(*cfg, ServeOptionsFrom(*cfg), logger);
  if (!server) return server.error();

  std::atomic<bool> done{false};
  const auto shutdown_timeout = cfg->server.shutdown_timeout;
  std::thread watcher([&] {
    const timespec poll{0, 200 * 1000 * 1000};
    int sig = -1;
    while (!done && (sig < 0 || sig == SIGHUP)) {
      // SIGHUP (systemctl reload): reread the CRL and go on serving.
      if (sig == SIGHUP) (void)(*server)->Reload();  // logs what it did
      sig = sigtimedwait(&signals, nullptr, &poll);
    }
    if (done) return;
    logger.Info("stopping: finishing in-flight requests, then syncing the log",
                {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    // Requests still arriving get half the timeout to arrive whole; the
    // rest is for running them and syncing the log, so a slow client
    // cannot turn a clean stop into the exit below.
    (*server)->Shutdown(shutdown_timeout / 2);
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
      "serve",
      "Run the server: keys in memory, every acknowledged write durable in the log (a local "
      "data dir, or PostgreSQL with --backend postgres --dsn URL)");
  sub->group(kGroupServer);
  config::AddSettingFlags(*sub, config::Scope::kServe, ctx.flags);
  sub->callback([&ctx] { ctx.run = [&ctx] { return RunServe(ctx); }; });
}

}  // namespace kvctl::cmd
