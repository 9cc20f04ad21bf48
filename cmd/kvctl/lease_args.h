// What `kvctl lease`, `kvctl put --ttl` and `kvctl lock --ttl` read alike:
// a lease TTL and a lease id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::cmd {

// A TTL as whole seconds ("30") or a duration ("30s", "5m", "1h"), within
// the store's range (1 s to a year). `what` names it in the message.
core::Result<int64_t> ParseLeaseTtl(std::string_view text, std::string_view what);

// A lease id as the server gives it (decimal).
core::Result<uint64_t> ParseLeaseId(std::string_view text);

}  // namespace kvctl::cmd
