// The client commands' shared first step: load the configuration and make a
// client for client.addr.
#pragma once

#include <memory>

#include "cmd/kvctl/command.h"
#include "lib/client/kv_client.h"

namespace kvctl::cmd {

inline core::Result<std::unique_ptr<client::KvClient>> MakeClient(const CommandContext& ctx) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  return std::make_unique<client::KvClient>(client::ClientOptions{cfg->client.addr, cfg->client.timeout});
}

}  // namespace kvctl::cmd
