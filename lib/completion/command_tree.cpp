#include "lib/completion/command_tree.h"

#include <nlohmann/json.hpp>

namespace kvctl::completion {
namespace {

using nlohmann::json;

json ValueJson(const ValueSpec& value) {
  static constexpr const char* kKinds[] = {"none", "words", "file", "dir"};
  json j{{"kind", kKinds[static_cast<int>(value.kind)]}};
  if (value.kind == ValueKind::kWords) j["words"] = value.words;
  return j;
}

json CommandJson(const CommandSpec& command) {
  json options = json::array();
  for (const OptionSpec& o : command.options) {
    options.push_back({{"names", o.names},
                       {"help", o.help},
                       {"takes_value", o.takes_value},
                       {"label", o.label},
                       {"value", ValueJson(o.value)}});
  }
  json positionals = json::array();
  for (const PositionalSpec& p : command.positionals) {
    positionals.push_back(
        {{"name", p.name}, {"help", p.help}, {"label", p.label}, {"value", ValueJson(p.value)}});
  }
  json subcommands = json::array();
  for (const CommandSpec& sub : command.subcommands) subcommands.push_back(CommandJson(sub));
  return {{"name", command.name},   {"help", command.help},
          {"group", command.group}, {"options", std::move(options)},
          {"positionals", std::move(positionals)}, {"subcommands", std::move(subcommands)}};
}

}  // namespace

ValueSpec ValueFromLabel(std::string_view label) {
  ValueSpec spec;
  if (label.size() >= 2 && label.front() == '{' && label.back() == '}') {
    spec.kind = ValueKind::kWords;
    std::string_view inner = label.substr(1, label.size() - 2);
    while (!inner.empty()) {
      const size_t comma = inner.find(',');
      spec.words.emplace_back(inner.substr(0, comma));
      inner = comma == std::string_view::npos ? std::string_view() : inner.substr(comma + 1);
    }
  } else if (label == "FILE" || label == "PATH") {
    spec.kind = ValueKind::kFile;
  } else if (label == "DIR") {
    spec.kind = ValueKind::kDir;
  }
  return spec;
}

std::string ChoicesLabel(const std::vector<std::string>& words) {
  std::string out = "{";
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += ',';
    out += words[i];
  }
  return out + "}";
}

std::string ShortHelp(std::string_view help) {
  std::string_view line = help.substr(0, help.find('\n'));
  // Settings' help ends in "; <accepted values> (env ..., TOML ...)".
  for (std::string_view cut : {std::string_view(" (env "), std::string_view("; ")}) {
    const size_t at = line.find(cut);
    if (at != std::string_view::npos) line = line.substr(0, at);
  }
  std::string out(line);
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

namespace {

void Collect(const CommandSpec& command, std::vector<std::string>& path,
             std::vector<CommandAt>& out) {
  out.push_back({path, &command});
  for (const CommandSpec& sub : command.subcommands) {
    path.push_back(sub.name);
    Collect(sub, path, out);
    path.pop_back();
  }
}

}  // namespace

std::vector<CommandAt> AllCommands(const CommandSpec& root) {
  std::vector<CommandAt> out;
  std::vector<std::string> path;
  Collect(root, path, out);
  return out;
}

std::string PathKey(const std::vector<std::string>& path, std::string_view separator) {
  std::string out;
  for (const std::string& name : path) {
    out += separator;
    out += name;
  }
  return out;
}

std::string JsonTree(const CommandSpec& root) { return CommandJson(root).dump(2) + "\n"; }

}  // namespace kvctl::completion
