// How the client commands print results: raw bytes for text, one JSON
// document for `-o json`. Keys that are not valid UTF-8 carry their exact
// bytes in "key_base64", as the HTTP API does.
#pragma once

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "lib/client/kv_client.h"
#include "lib/core/status.h"

namespace kvctl::cmd {

enum class OutputFormat { kText, kJson };

// Adds -o/--output text|json to `sub`.
void AddOutputOption(CLI::App& sub, OutputFormat& out);

// Whether stdout is a terminal, where `kvctl get` writes only printable
// text (cmd/kvctl/text.h) and ends a value with a newline.
bool StdoutIsTerminal();

// Writes all of `bytes` to stdout; IOError when stdout refuses (a closed pipe
// or a full disk must not pass for success).
core::Status WriteStdout(std::string_view bytes);

// `j` as one line of JSON, newline-terminated; invalid UTF-8 is replaced.
std::string JsonLine(const nlohmann::json& j);
// Sets j["key"], and j["key_base64"] when the key is not valid UTF-8.
void SetJsonKey(nlohmann::json& j, std::string_view key);

// `lease` != 0 adds "lease": the lease the key was put with.
std::string PutJson(std::string_view key, const client::PutReply& reply, uint64_t lease = 0);
std::string ValueJson(std::string_view key, const client::Value& value);
// One listing item as JSON, no newline: the elements of {"items": [...]}.
std::string ItemJson(const client::Item& item, bool keys_only);

}  // namespace kvctl::cmd
