// The client commands' shared first step: load the configuration and make a
// client for client.addr, with its token and TLS files and the value limit.
#pragma once

#include <memory>
#include <string_view>

#include "cmd/kvctl/command.h"
#include "lib/config/file_modes.h"
#include "lib/client/kv_client.h"

namespace kvctl::cmd {

// A key is 1 to limits.max_key_bytes bytes (SPEC §1): an empty one is
// refused here rather than sent as a request for /v1/kv/.
inline core::Status CheckKey(std::string_view key) {
  if (!key.empty()) return core::Status::Ok();
  return core::Status::InvalidArgument("the key is empty (a key is 1 or more bytes: give a KEY that is not \"\")");
}

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
