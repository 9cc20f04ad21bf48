#pragma once

#include <string>
#include <string_view>

namespace kvctl::core {

// Appends `text` to `out` as a quoted JSON string, escaped as
// nlohmann::json::dump() escapes valid UTF-8 (ensure_ascii off): the same
// bytes, so the server's hot answers (a PUT's), written by hand, equal what
// nlohmann writes. Other bytes are copied as they are: the server sends keys
// that are not valid UTF-8 through nlohmann instead, and the logger's lines
// carry them raw.
void AppendJsonString(std::string_view text, std::string* out);

}  // namespace kvctl::core
