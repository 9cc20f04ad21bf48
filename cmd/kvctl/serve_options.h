// The server's options from the configuration, shared by `kvctl serve` and
// `kvctl bench --embedded` so both run the same server.
#pragma once

#include "lib/config/config.h"
#include "lib/core/logger.h"
#include "lib/server/kv_server.h"

namespace kvctl::cmd {

core::LogLevel LogLevelFrom(const std::string& level);
server::ServeOptions ServeOptionsFrom(const config::Config& c);

}  // namespace kvctl::cmd
