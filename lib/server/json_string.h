#pragma once

#include <string>
#include <string_view>

namespace kvctl::server {

// Appends `utf8` to `out` as a quoted JSON string, escaped as
// nlohmann::json::dump() escapes it (ensure_ascii off): the same bytes, so a
// body written by hand equals one written through nlohmann. The input must be
// valid UTF-8 (core::IsValidUtf8); callers fall back to nlohmann otherwise.
// For the hot answers (a PUT's), where building a nlohmann object per
// request cost more than the rest of the request together.
void AppendJsonString(std::string_view utf8, std::string* out);

}  // namespace kvctl::server
