// The effective configuration as a user sees it: every setting's value and
// the layer it came from, secrets masked. Backs `kvctl config show`.
#pragma once

#include <string>
#include <vector>

#include "lib/config/config.h"
#include "lib/config/settings.h"

namespace kvctl::config {

struct EffectiveSetting {
  const Setting* setting = nullptr;
  std::string text;  // the value as a flag or KVCTL_* variable would take it; secrets masked
  Source source = Source::kDefault;
  // Where the value came from, for people: "default", "file /etc/kvctl/config.toml",
  // "env KVCTL_STORAGE_FSYNC", "flag --fsync".
  std::string origin;
};

// Every setting, in table order. Connection strings are masked by
// `mask_connection` (settings.h), or whole without one.
std::vector<EffectiveSetting> Effective(const Config& config,
                                        const ConnectionMasker& mask_connection = nullptr);

// Every effective setting, one per line in table order, as TOML-compatible
// dotted keys with where each value came from, e.g.
//   storage.fsync = "interval"  # env KVCTL_STORAGE_FSYNC
//   server.threads = 512  # default
std::string RenderEffective(const Config& config, const ConnectionMasker& mask_connection = nullptr);

}  // namespace kvctl::config
