// Masking of secrets before a value is printed (`kvctl config show`, error
// messages, logs). Pure functions; safe from any thread. Connection strings
// are masked by lib/pg (dsn_mask.h), which parses them as libpq does.
#pragma once

#include <string>
#include <string_view>

namespace kvctl::config {

// What a masked secret is shown as: always the same length, so the output
// says that a value is set without saying how long it is.
inline constexpr std::string_view kMasked = "********";

// `token` masked: "" stays "" (so "not set" is still visible), anything else
// becomes kMasked.
std::string MaskWhole(std::string_view token);

}  // namespace kvctl::config
