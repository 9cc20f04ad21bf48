#include "cmd/kvctl/output.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/completion/command_tree.h"
#include "lib/core/base64.h"
#include "lib/core/utf8.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

}  // namespace

std::string JsonLine(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

void SetJsonKey(json& j, std::string_view key) {
  j["key"] = std::string(key);
  if (!core::IsValidUtf8(key)) j["key_base64"] = core::Base64Encode(key);
}

void AddOutputOption(CLI::App& sub, OutputFormat& out) {
  // The label {text,json} is what --help shows and what completion offers;
  // the transformer's own description would repeat it.
  sub.add_option("-o,--output", out, "Output format: text or json")
      ->transform(CLI::CheckedTransformer(std::map<std::string, OutputFormat>{
                                              {"text", OutputFormat::kText}, {"json", OutputFormat::kJson}})
                      .description(""))
      ->type_name(completion::ChoicesLabel({"text", "json"}));
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
  SetJsonKey(j, key);
  return JsonLine(j);
}

std::string ValueJson(std::string_view key, const client::Value& value) {
  json j{{"value", core::Base64Encode(value.bytes)}, {"revision", value.revision}};
  SetJsonKey(j, key);
  return JsonLine(j);
}

std::string ItemJson(const client::Item& item, bool keys_only) {
  json j{{"revision", item.revision}};
  SetJsonKey(j, item.key);
  if (!keys_only) j["value"] = core::Base64Encode(item.value);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace kvctl::cmd
