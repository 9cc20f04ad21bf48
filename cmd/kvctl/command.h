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

struct CommandContext {
  std::optional<std::string> config_path;
  config::FlagValues flags;
  std::function<core::Status()> run;

  core::Result<config::Config> LoadConfig() const {
    return config::Load({config_path, config::ProcessEnvironment(), flags});
  }
};

void AddServeCommand(CLI::App& app, CommandContext& ctx);
void AddPutCommand(CLI::App& app, CommandContext& ctx);
void AddGetCommand(CLI::App& app, CommandContext& ctx);
void AddDelCommand(CLI::App& app, CommandContext& ctx);
void AddReplayCommand(CLI::App& app, CommandContext& ctx);
void AddCompactCommand(CLI::App& app, CommandContext& ctx);
void AddVersionCommand(CLI::App& app, CommandContext& ctx);

}  // namespace kvctl::cmd
