#include "cmd/kvctl/output.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/core/base64.h"
#include "lib/core/utf8.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

// The key as a JSON string; its exact bytes too when JSON cannot carry them.
void SetKey(json& j, std::string_view key) {
  j["key"] = std::string(key);
  if (!core::IsValidUtf8(key)) j["key_base64"] = core::Base64Encode(key);
}

}  // namespace

void AddOutputOption(CLI::App& sub, OutputFormat& out) {
  sub.add_option("-o,--output", out, "Output format: text (raw bytes) or json")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, OutputFormat>{{"text", OutputFormat::kText}, {"json", OutputFormat::kJson}}))
      ->option_text("text|json");
}

core::Status WriteStdout(std::string_view bytes) {
  if ((!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) ||
      std::fflush(stdout) != 0) {
    return core::Status::IOError(fmt::format("cannot write to standard output: {}", std::strerror(errno)));
  }
  return core::Status::Ok();
}

std::string PutJson(std::string_view key, const client::PutReply& reply) {
  json j{{"revision", reply.revision}, {"created", reply.created}};
  SetKey(j, key);
  return Dump(j);
}

std::string ValueJson(std::string_view key, const client::Value& value) {
  json j{{"value", core::Base64Encode(value.bytes)}, {"revision", value.revision}};
  SetKey(j, key);
  return Dump(j);
}

std::string ItemsJson(const std::vector<client::Item>& items, bool keys_only) {
  json list = json::array();
  for (const client::Item& item : items) {
    json j{{"revision", item.revision}};
    SetKey(j, item.key);
    if (!keys_only) j["value"] = core::Base64Encode(item.value);
    list.push_back(std::move(j));
  }
  return Dump(json{{"items", std::move(list)}});
}

}  // namespace kvctl::cmd
