// CLI11 glue for the settings table: one flag per setting, and the inputs
// config::Load needs from the process. The only config code that sees CLI11
// or the real environment.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "lib/config/settings.h"

namespace CLI {
class App;
}  // namespace CLI

namespace kvctl::config {

// Setting key ("storage.fsync") -> text exactly as given on the command line.
using FlagValues = std::map<std::string, std::string>;

// Adds to `sub`, for every setting used by `scope`, an option
// --section-name (plus its short alias, e.g. --fsync, when the table has one)
// taking one string. After parsing, `out` holds an entry only for the flags
// the user gave (the last one wins if repeated); values are not checked here
// but by config::Load, so every error names its source the same way.
// `out` must outlive the parse of `sub`. Options are grouped under "Settings"
// in help, with the default, the accepted values and the env variable.
// `own_alias` ("timeout" for `kvctl lock`, whose --timeout is its own):
// a short alias the subcommand uses otherwise; that setting keeps only its
// long flag (--client-timeout).
void AddSettingFlags(CLI::App& sub, Scope scope, FlagValues& out, std::string_view own_alias = {});

// The same for every setting of every scope (for `kvctl config show`).
void AddAllSettingFlags(CLI::App& sub, FlagValues& out);

// Adds the global --config PATH option, storing into `out` when given.
void AddConfigFileFlag(CLI::App& app, std::optional<std::string>& out);

// The whole process environment as a map, for LoadInputs::environment.
std::map<std::string, std::string> ProcessEnvironment();

// Which config file a command would read and why, in one line for people:
//   "/etc/kvctl/config.toml (found)", "x.toml (from --config)",
//   "none found (searched ./kvctl.toml, /root/.config/kvctl/config.toml, /etc/kvctl/config.toml)"
// or the error for a named file that is missing.
std::string ConfigFileInUse(const std::optional<std::string>& config_flag,
                            const std::map<std::string, std::string>& env);

}  // namespace kvctl::config
