#include "cmd/kvctl/config_flags.h"

#include <cstring>
#include <functional>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "lib/completion/command_tree.h"

extern char** environ;  // POSIX; read only here, never in lib/

namespace kvctl::config {
namespace {

// Also what `kvctl completion` completes from (lib/completion/command_tree.h).
std::string TypeLabel(const Setting& s) {
  switch (s.value.kind) {
    case Kind::kInt: return "INT";
    case Kind::kDuration: return "DURATION";
    case Kind::kBytes: return "SIZE";
    case Kind::kString: break;
    case Kind::kEnum:
    case Kind::kBool: return completion::ChoicesLabel(s.value.allowed);
    case Kind::kIdentities: break;
  }
  switch (s.hint) {
    case ValueHint::kFile: return "FILE";
    case ValueHint::kDir: return "DIR";
    case ValueHint::kNone: break;
  }
  return "TEXT";
}

std::string HelpText(const Setting& s) {
  // Enum choices already show in the type label.
  std::string accepted =
      s.value.kind == Kind::kEnum || s.value.kind == Kind::kBool ? "" : "; " + s.value.accepted;
  return s.help + accepted + " (env " + EnvName(s.key) + ", TOML [" + std::string(s.Section()) +
         "] " + std::string(s.Name()) + ")";
}

void AddFlags(CLI::App& sub, const std::function<bool(const Setting&)>& wanted, FlagValues& out,
              std::string_view own_alias = {}) {
  for (const Setting& s : Settings()) {
    // Tables are written in a file; there is no flag form of them.
    if (!wanted(s) || s.value.kind == Kind::kIdentities) continue;
    std::string names = FlagName(s.key);
    std::string alias = s.alias.empty() || s.alias == own_alias ? "" : "--" + s.alias;
    if (!alias.empty() && alias != names) names = alias + "," + names;
    const std::string key = s.key;
    CLI::Option* opt = sub.add_option_function<std::string>(
        names, [&out, key](const std::string& text) { out[key] = text; }, HelpText(s));
    opt->type_name(TypeLabel(s));
    opt->default_str(s.default_value);  // shown in help only; Load applies defaults
    opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    opt->group("Settings");
  }
}

}  // namespace

void AddSettingFlags(CLI::App& sub, Scope scope, FlagValues& out, std::string_view own_alias) {
  AddFlags(sub, [scope](const Setting& s) { return s.UsedBy(scope); }, out, own_alias);
}

void AddAllSettingFlags(CLI::App& sub, FlagValues& out) {
  AddFlags(sub, [](const Setting&) { return true; }, out);
}

void AddConfigFileFlag(CLI::App& app, std::optional<std::string>& out) {
  app.add_option_function<std::string>(
         "--config", [&out](const std::string& path) { out = path; },
         "TOML config file (default: $KVCTL_CONFIG, else the first of ./kvctl.toml, "
         "$XDG_CONFIG_HOME/kvctl/config.toml, /etc/kvctl/config.toml that exists)")
      ->type_name("PATH");
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** p = environ; p != nullptr && *p != nullptr; ++p) {
    const char* eq = std::strchr(*p, '=');
    if (eq == nullptr) continue;
    env.emplace(std::string(*p, static_cast<size_t>(eq - *p)), std::string(eq + 1));
  }
  return env;
}

std::string ConfigFileInUse(const std::optional<std::string>& config_flag,
                            const std::map<std::string, std::string>& env) {
  LoadInputs inputs{config_flag, env, {}};
  core::Result<std::string> path = FindConfigFile(inputs);
  if (!path) return path.error().message();
  if (path->empty()) {
    return fmt::format("none found (searched {})", fmt::join(ConfigFileCandidates(env), ", "));
  }
  if (config_flag) return *path + " (from --config)";
  auto named = env.find("KVCTL_CONFIG");
  if (named != env.end() && !named->second.empty()) return *path + " (from KVCTL_CONFIG)";
  return *path + " (found)";
}

}  // namespace kvctl::config
