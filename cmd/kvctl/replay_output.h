// How `kvctl replay` prints history: one line per event or key.
//
// text: `REV OP "KEY" "VALUE"` (OP is PUT or DELETE; a DELETE has no value),
//   or `REV "KEY" "VALUE" create_revision=C version=V lease=L` for --state. Key and value are quoted with C
//   escapes (QuoteBytes, cmd/kvctl/text.h), so every line is readable in a
//   terminal and the exact bytes can be recovered.
// json: one object per line (JSON Lines): {"revision", "op", "key",
//   "value" (base64), "snapshot"} for events, {"revision", "create_revision",
//   "version", "lease", "key", "value"} for --state. A key that is not valid UTF-8 also carries "key_base64",
//   as in the HTTP API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/key_meta.h"
#include "lib/core/log_format.h"

namespace kvctl::cmd {

std::string EventText(const core::LogRecord& record);
std::string EventJson(const core::LogRecord& record, bool from_snapshot);
std::string StateText(std::string_view key, std::string_view value, uint64_t revision, const core::KeyMeta& meta);
std::string StateJson(std::string_view key, std::string_view value, uint64_t revision, const core::KeyMeta& meta);

}  // namespace kvctl::cmd
