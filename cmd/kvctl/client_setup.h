// The client commands' shared first step: load the configuration and make a
// client for client.addr, with its token and TLS files and the value limit.
#pragma once

#include <memory>

#include "cmd/kvctl/command.h"
#include "lib/config/file_modes.h"
#include "lib/client/kv_client.h"

namespace kvctl::cmd {

inline core::Result<std::unique_ptr<client::KvClient>> MakeClient(const config::Config& cfg) {
  const config::Config::Client& c = cfg.client;
  client::ClientOptions options{c.addr, c.timeout, c.token, c.cacert, c.cert, c.key, cfg.limits.max_value_bytes};
  if (core::Status s = client::CheckClientOptions(options); !s.ok()) return s;
  if (core::Status s = config::CheckPrivateKeyMode("client.key", c.key); !s.ok()) return s;
  return std::make_unique<client::KvClient>(std::move(options));
}

inline core::Result<std::unique_ptr<client::KvClient>> MakeClient(const CommandContext& ctx) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  return MakeClient(*cfg);
}

}  // namespace kvctl::cmd
