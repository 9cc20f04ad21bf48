// What every subcommand shares: the parsed --config and setting flags, and
// the one function the chosen subcommand will run. main() runs it and maps
// its Status to the exit code (the only place that decides exit codes).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "cmd/kvctl/config_flags.h"
#include "lib/config/config.h"
#include "lib/core/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace kvctl::cmd {

// The groups `kvctl --help` lists subcommands under. Every top-level
// subcommand sets one (a test checks it).
inline constexpr const char* kGroupServer = "Server";      // serve
inline constexpr const char* kGroupClient = "Client";      // put, get, del, watch, txn
inline constexpr const char* kGroupOperator = "Operator";  // replay, compact, migrate
inline constexpr const char* kGroupTools = "Tools";        // bench, config, completion, version

struct CommandContext {
  std::optional<std::string> config_path;
  config::FlagValues flags;
  std::function<core::Status()> run;
  // Set by a command that ends with another command's exit status (`kvctl
  // lock -- CMD`, or its 130/143 when interrupted): main() exits with it
  // when `run` returned Ok.
  std::optional<int> exit_status;

  core::Result<config::Config> LoadConfig() const {
    return config::Load({config_path, config::ProcessEnvironment(), flags});
  }
};

void AddServeCommand(CLI::App& app, CommandContext& ctx);
void AddPutCommand(CLI::App& app, CommandContext& ctx);
void AddGetCommand(CLI::App& app, CommandContext& ctx);
void AddDelCommand(CLI::App& app, CommandContext& ctx);
void AddWatchCommand(CLI::App& app, CommandContext& ctx);
void AddTxnCommand(CLI::App& app, CommandContext& ctx);
void AddReplayCommand(CLI::App& app, CommandContext& ctx);
void AddCompactCommand(CLI::App& app, CommandContext& ctx);
void AddBenchCommand(CLI::App& app, CommandContext& ctx);
void AddVersionCommand(CLI::App& app, CommandContext& ctx);
// "kvctl 0.1.0 (commit 1234abcd5678, RelWithDebInfo)", for --version.
std::string VersionLine();
void AddConfigCommand(CLI::App& app, CommandContext& ctx);
// `kvctl completion SHELL` describes `app` as it is when it runs: add it
// with the other subcommands and it covers all of them.
void AddCompletionCommand(CLI::App& app, CommandContext& ctx);
void AddMigrateCommand(CLI::App& app, CommandContext& ctx);
void AddAuthCommand(CLI::App& app, CommandContext& ctx);
void AddLeaseCommand(CLI::App& app, CommandContext& ctx);
void AddLockCommand(CLI::App& app, CommandContext& ctx);

}  // namespace kvctl::cmd
