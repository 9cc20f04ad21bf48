#include "lib/config/effective.h"

#include <fmt/format.h>

namespace kvctl::config {

std::vector<EffectiveSetting> Effective(const Config& config, const ConnectionMasker& mask_connection) {
  std::vector<EffectiveSetting> out;
  for (const Setting& s : Settings()) {
    EffectiveSetting e;
    e.setting = &s;
    e.text = Displayable(s, s.value.text(config), mask_connection);
    auto it = config.sources.find(s.key);
    e.source = it == config.sources.end() ? Source::kDefault : it->second;
    switch (e.source) {
      case Source::kDefault: e.origin = "default"; break;
      case Source::kFile: e.origin = "file " + config.config_file; break;
      case Source::kEnv: e.origin = "env " + EnvName(s.key); break;
      case Source::kFlag: e.origin = "flag " + PreferredFlag(s); break;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string RenderEffective(const Config& config, const ConnectionMasker& mask_connection) {
  std::string out;
  for (const EffectiveSetting& e : Effective(config, mask_connection)) {
    out += fmt::format("{} = {}  # {}\n", e.setting->key, TomlLiteral(*e.setting, e.text), e.origin);
  }
  return out;
}

}  // namespace kvctl::config
