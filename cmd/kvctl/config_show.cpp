// kvctl config show: every effective setting and the layer it came from
// (default, file, env, flag), secrets masked. It takes every setting's flag,
// so `kvctl config show --fsync never` shows what `serve --fsync never` would use.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "lib/config/effective.h"
#include "lib/pg/dsn_mask.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

// postgres.dsn is parsed by libpq (lib/pg) to find the secrets in it.
const config::ConnectionMasker kMaskDsn = pg::MaskDsnSecrets;

std::string ShowJson(const config::Config& cfg, const std::map<std::string, std::string>& env) {
  json settings = json::array();
  for (const config::EffectiveSetting& e : config::Effective(cfg, kMaskDsn)) {
    const config::Setting& s = *e.setting;
    // Tables ([[auth.tokens]]) are written in a file only: no flag, no variable.
    const bool file_only = s.value.kind == config::Kind::kIdentities;
    json flags = json::array();
    if (!file_only && !s.alias.empty()) flags.push_back("--" + s.alias);
    if (!file_only && config::FlagName(s.key) != "--" + s.alias) flags.push_back(config::FlagName(s.key));
    settings.push_back({{"key", s.key},
                        {"value", e.text},
                        {"source", config::SourceName(e.source)},
                        {"origin", e.origin},
                        {"default", config::Displayable(s, s.default_value, kMaskDsn)},
                        {"env", file_only ? json(nullptr) : json(config::EnvName(s.key))},
                        {"flags", std::move(flags)},
                        {"secret", s.secret != config::Secret::kNone}});
  }
  json j{{"config_file", cfg.config_file.empty() ? json(nullptr) : json(cfg.config_file)},
         {"searched", config::ConfigFileCandidates(env)},
         {"settings", std::move(settings)}};
  return j.dump(2) + "\n";
}

core::Status RunShow(const CommandContext& ctx, OutputFormat output) {
  const auto env = config::ProcessEnvironment();
  auto cfg = config::Load({ctx.config_path, env, ctx.flags});
  if (!cfg) return cfg.error();
  if (output == OutputFormat::kJson) return WriteStdout(ShowJson(*cfg, env));
  // A comment first, so the whole output is still a valid TOML file.
  return WriteStdout("# config file: " + config::ConfigFileInUse(ctx.config_path, env) + "\n" +
                     config::RenderEffective(*cfg, kMaskDsn));
}

}  // namespace

void AddConfigCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("config", "Show the configuration kvctl uses");
  cmd->group(kGroupTools);
  cmd->require_subcommand(1, 1);
  auto output = std::make_shared<OutputFormat>(OutputFormat::kText);
  CLI::App* show = cmd->add_subcommand(
      "show", "Print every effective setting and where it came from (default, file, env, flag); secrets masked");
  AddOutputOption(*show, *output);
  config::AddAllSettingFlags(*show, ctx.flags);
  show->callback([&ctx, output] { ctx.run = [&ctx, output] { return RunShow(ctx, *output); }; });
}

}  // namespace kvctl::cmd
