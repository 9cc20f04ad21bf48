// The server's options from the configuration, shared by `kvctl serve` and
// `kvctl bench --embedded` so both run the same server.
#pragma once

#include <memory>
#include <string>

#include "lib/config/config.h"
#include "lib/core/logger.h"
#include "lib/pg/pg_store.h"
#include "lib/server/kv_server.h"

namespace kvctl::cmd {

core::LogLevel LogLevelFrom(const std::string& level);
server::ServeOptions ServeOptionsFrom(const config::Config& c);
pg::PgStoreOptions PgStoreOptionsFrom(const config::Config& c, core::Logger& logger);

// Opens the server `c` describes with `options` (ServeOptionsFrom(c), maybe
// adjusted): the file backend recovers options.log.dir; the PostgreSQL one
// checks the schema and loads the state table.
core::Result<std::unique_ptr<server::KvServer>> OpenServer(const config::Config& c,
                                                           server::ServeOptions options,
                                                           core::Logger& logger);

}  // namespace kvctl::cmd
