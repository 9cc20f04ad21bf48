#include "cmd/kvctl/output.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/text.h"
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
  // Checked here rather than by a CLI11 transformer, whose message names
  // its internals ("Check yaml value in {json->1,text->0} ... FAILED").
  // The label {text,json} is what --help shows and what completion offers.
  sub.add_option_function<std::string>(
         "-o,--output",
         [&out](const std::string& format) {
           if (format == "text") {
             out = OutputFormat::kText;
           } else if (format == "json") {
             out = OutputFormat::kJson;
           } else {
             throw CLI::ValidationError(fmt::format("-o takes json or text, not {}", QuoteBytes(format)));
           }
         },
         "Output format: text or json")
      ->type_name(completion::ChoicesLabel({"text", "json"}));
}

bool StdoutIsTerminal() { return ::isatty(STDOUT_FILENO) == 1; }

core::Status WriteStdout(std::string_view bytes) {
  if ((!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), stdout) != bytes.size()) ||
      std::fflush(stdout) != 0) {
    return core::Status::IOError(fmt::format("cannot write to standard output: {}", std::strerror(errno)));
  }
  return core::Status::Ok();
}

std::string PutJson(std::string_view key, const client::PutReply& reply, uint64_t lease) {
  json j{{"revision", reply.revision}, {"created", reply.created}};
  if (lease != 0) j["lease"] = lease;
  SetJsonKey(j, key);
  return JsonLine(j);
}

std::string ValueJson(std::string_view key, const client::Value& value) {
  json j{{"value", core::Base64Encode(value.bytes)},
         {"revision", value.revision},
         {"create_revision", value.meta.create_revision},
         {"version", value.meta.version},
         {"lease", value.meta.lease}};
  SetJsonKey(j, key);
  return JsonLine(j);
}

std::string ItemJson(const client::Item& item, bool keys_only) {
  json j{{"revision", item.revision},
         {"create_revision", item.meta.create_revision},
         {"version", item.meta.version},
         {"lease", item.meta.lease}};
  SetJsonKey(j, item.key);
  if (!keys_only) j["value"] = core::Base64Encode(item.value);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace kvctl::cmd
