#include "lib/config/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <utility>

#include "lib/config/file_modes.h"
#include "lib/config/identities.h"
#include "lib/config/parse.h"
#include "lib/config/settings.h"
#include "lib/core/closest_match.h"

namespace kvctl::config {
namespace {

namespace fs = std::filesystem;
using core::Result;
using core::Status;

constexpr std::string_view kEnvPrefix = "KVCTL_";
constexpr std::string_view kConfigEnv = "KVCTL_CONFIG";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A setting whose bare name (or short flag) is `name`, e.g. "data_dir" ->
// storage.data_dir: catches a key written in the wrong section or an env var
// missing its section.
const Setting* SettingNamed(std::string_view name) {
  std::string lowered = Lower(name);
  for (const Setting& s : Settings()) {
    std::string alias = s.alias;
    std::replace(alias.begin(), alias.end(), '-', '_');
    if (s.Name() == lowered || (!alias.empty() && alias == lowered)) return &s;
  }
  return nullptr;
}

// Parses `text` into `config` for `setting`; on failure, says which key, the
// value as written and where it came from, then why.
Status Apply(const Setting& setting, std::string_view text, bool quoted, std::string_view from,
             Config& config) {
  Status st = setting.value.parse(text, config);
  if (st.ok()) return st;
  // A secret is masked here too: error messages end up in terminals and logs.
  std::string masked = Displayable(setting, text);
  std::string shown = quoted ? TomlQuote(masked) : masked;
  return Status::InvalidArgument(
      fmt::format("{} = {} ({}) {}", setting.key, shown, from, st.message()));
}

std::string_view TomlTypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::none: break;
  }
  return "nothing";
}

// What the TOML value of a setting must look like, and its text if it does.
// Integers are accepted only where a bare number is unambiguous: counts and
// byte sizes. A duration must carry its unit.
Result<std::pair<std::string, bool>> TomlText(const Setting& setting, const toml::node& node,
                                              std::string_view where) {
  auto type_error = [&](std::string_view expected, std::string_view hint = {}) {
    return Status::InvalidArgument(fmt::format("{} {} must be {}, got {}{}", setting.key, where,
                                               expected, TomlTypeName(node), hint));
  };
  const Kind kind = setting.value.kind;
  if (const auto* b = node.as_boolean(); b != nullptr) {
    if (kind == Kind::kBool || setting.value.takes_boolean) {
      return std::pair(std::string(b->get() ? "true" : "false"), false);
    }
  } else if (kind == Kind::kBool) {
    return type_error("a boolean (true or false)");
  }
  if (const auto* i = node.as_integer(); i != nullptr) {
    if (kind == Kind::kInt || kind == Kind::kBytes) {
      return std::pair(std::to_string(i->get()), false);
    }
    if (kind == Kind::kDuration) {
      return type_error("a string with a unit",
                        fmt::format(" (write e.g. \"{0}ms\" or \"{0}s\")", i->get()));
    }
    return type_error("a string");
  }
  if (const auto* s = node.as_string(); s != nullptr) {
    if (kind == Kind::kInt) return type_error("an integer");
    return std::pair(s->get(), true);
  }
  switch (kind) {
    case Kind::kInt: return type_error("an integer");
    case Kind::kBytes: return type_error("an integer (bytes) or a string such as \"64MiB\"");
    case Kind::kDuration: return type_error("a string with a unit such as \"100ms\"");
    case Kind::kString:
    case Kind::kEnum:
    case Kind::kBool:
    case Kind::kIdentities: break;
  }
  return type_error("a string");
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::InvalidArgument(
        fmt::format("cannot read config file {}: {}", path, std::strerror(errno)));
  }
  std::string content;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) content.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (failed) {
    return Status::InvalidArgument(
        fmt::format("cannot read config file {}: {}", path, std::strerror(err)));
  }
  return content;
}

Result<toml::table> ParseToml(const std::string& content, const std::string& path) {
  auto syntax_error = [&](const toml::parse_error& e) {
    return Status::InvalidArgument(fmt::format("invalid TOML in {} (line {}, column {}): {}", path,
                                               e.source().begin.line, e.source().begin.column,
                                               e.description()));
  };
#if TOML_EXCEPTIONS
  try {
    return toml::parse(content, path);
  } catch (const toml::parse_error& e) {
    return syntax_error(e);
  }
#else
  toml::parse_result result = toml::parse(content, path);
  if (!result) return syntax_error(result.error());
  return std::move(result).table();
#endif
}

// One top-level item of the file: either a setting to apply or a problem,
// kept with its line so problems are reported in the order a reader meets them.
struct FileItem {
  uint32_t line = 0;
  const Setting* setting = nullptr;
  const toml::node* node = nullptr;
  std::string error;
};

std::vector<FileItem> CollectFileItems(const toml::table& table, const std::string& path) {
  const std::vector<std::string> sections = Sections();
  std::vector<std::string> bracketed;
  for (const auto& s : sections) bracketed.push_back("[" + s + "]");
  std::vector<FileItem> items;
  for (const auto& [k, node] : table) {
    std::string name(k.str());
    FileItem item;
    item.line = node.source().begin.line;
    std::string where = fmt::format("in {} (line {})", path, item.line);
    bool known_section = std::find(sections.begin(), sections.end(), name) != sections.end();
    if (known_section && !node.is_table()) {
      item.error = fmt::format("\"{}\" {} must be a table ([{}]), got {}", name, where, name,
                               TomlTypeName(node));
    } else if (!node.is_table()) {
      const Setting* guess = SettingNamed(name);
      item.error =
          guess != nullptr
              ? fmt::format("key \"{}\" {} is outside any section; write it as {} under [{}]", name,
                            where, guess->Name(), guess->Section())
              : fmt::format("unknown key \"{}\" {}; settings live in sections {}", name, where,
                            fmt::join(bracketed, ", "));
    } else if (!known_section) {
      std::string guess = core::ClosestMatch(name, sections);
      item.error = fmt::format("unknown section [{}] {}; {}known sections: {}", name, where,
                               guess.empty() ? "" : fmt::format("did you mean [{}]? ", guess),
                               fmt::join(bracketed, ", "));
    } else {
      std::vector<std::string> names;
      for (const Setting& s : Settings()) {
        if (s.Section() == name) names.emplace_back(s.Name());
      }
      for (const auto& [child_key, child] : *node.as_table()) {
        FileItem child_item;
        child_item.line = child.source().begin.line;
        child_item.node = &child;
        std::string key = name + "." + std::string(child_key.str());
        child_item.setting = FindSetting(key);
        if (child_item.setting == nullptr) {
          std::string guess = core::ClosestMatch(child_key.str(), names);
          if (guess.empty()) {
            if (const Setting* elsewhere = SettingNamed(child_key.str()); elsewhere != nullptr) {
              guess = std::string(elsewhere->key);
            }
          } else {
            guess = name + "." + guess;
          }
          child_item.error = fmt::format(
              "unknown key \"{}\" in {} (line {}); {}known keys in [{}]: {}", key, path,
              child_item.line, guess.empty() ? "" : fmt::format("did you mean \"{}\"? ", guess),
              name, fmt::join(names, ", "));
        }
        items.push_back(std::move(child_item));
      }
      continue;
    }
    items.push_back(std::move(item));
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const FileItem& a, const FileItem& b) { return a.line < b.line; });
  return items;
}

Status ApplyFile(const std::string& path, Config& config) {
  Result<std::string> content = ReadWholeFile(path);
  if (!content) return content.error();
  Result<toml::table> table = ParseToml(*content, path);
  if (!table) return table.error();
  for (const FileItem& item : CollectFileItems(*table, path)) {
    if (!item.error.empty()) return Status::InvalidArgument(item.error);
    std::string where = fmt::format("in {} (line {})", path, item.line);
    if (item.setting->value.kind == Kind::kIdentities) {
      auto identities = ParseIdentities(*item.node, item.setting->key, item.setting->value.certs, path);
      if (!identities) return identities.error();
      item.setting->value.identities(config) = std::move(*identities);
      config.sources[item.setting->key] = Source::kFile;
      continue;
    }
    Result<std::pair<std::string, bool>> text = TomlText(*item.setting, *item.node, where);
    if (!text) return text.error();
    Status st = Apply(*item.setting, text->first, text->second,
                      fmt::format("from {}, line {}", path, item.line), config);
    if (!st.ok()) return st;
    config.sources[item.setting->key] = Source::kFile;
  }
  return Status::Ok();
}

std::string UnknownEnvMessage(const std::string& name) {
  std::vector<std::string> known;
  for (const Setting& s : Settings()) known.push_back(EnvName(s.key));
  std::string guess = core::ClosestMatch(name, known);
  if (guess.empty()) {
    if (const Setting* s = SettingNamed(std::string_view(name).substr(kEnvPrefix.size()));
        s != nullptr) {
      guess = EnvName(s->key);
    }
  }
  if (!guess.empty()) {
    return fmt::format("unknown environment variable {}; did you mean {}?", name, guess);
  }
  return fmt::format(
      "unknown environment variable {} (kvctl reads {} and KVCTL_<SECTION>_<NAME> for each "
      "setting, e.g. KVCTL_STORAGE_FSYNC; unset it or fix the name)",
      name, kConfigEnv);
}

Status ApplyEnvironment(const std::map<std::string, std::string>& env, Config& config) {
  for (const auto& [name, value] : env) {
    if (name.rfind(kEnvPrefix, 0) != 0 || name == kConfigEnv) continue;
    const Setting* setting = nullptr;
    for (const Setting& s : Settings()) {
      if (EnvName(s.key) == name) setting = &s;
    }
    if (setting == nullptr) return Status::InvalidArgument(UnknownEnvMessage(name));
    Status st = Apply(*setting, value, true, "from environment " + name, config);
    if (!st.ok()) return st;
    config.sources[setting->key] = Source::kEnv;
  }
  return Status::Ok();
}

Status ApplyFlags(const std::map<std::string, std::string>& flags, Config& config) {
  for (const auto& [key, value] : flags) {
    const Setting* setting = FindSetting(key);
    if (setting == nullptr) {
      // Only reachable if the CLI glue and the table disagree.
      return Status::InvalidArgument(fmt::format("unknown setting \"{}\" given as a flag", key));
    }
    Status st = Apply(*setting, value, true, "from flag " + PreferredFlag(*setting), config);
    if (!st.ok()) return st;
    config.sources[setting->key] = Source::kFlag;
  }
  return Status::Ok();
}

// A file the user named: it must be there.
Result<std::string> CheckNamedFile(const std::string& path, std::string_view how) {
  if (path.empty())
    return Status::InvalidArgument(fmt::format("config file path ({}) is empty", how));
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) {
    return Status::InvalidArgument(fmt::format("config file {} ({}) does not exist", path, how));
  }
  if (fs::is_directory(st)) {
    return Status::InvalidArgument(fmt::format("config file {} ({}) is a directory", path, how));
  }
  return path;
}

const std::string* Lookup(const std::map<std::string, std::string>& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

}  // namespace

std::string_view SourceName(Source source) {
  switch (source) {
    case Source::kDefault: return "default";
    case Source::kFile: return "file";
    case Source::kEnv: return "env";
    case Source::kFlag: return "flag";
  }
  return "?";
}

Config Defaults() {
  Config config;
  for (const Setting& s : Settings()) {
    // A default that does not parse is a bug in the table; the unit tests
    // load every default, so this cannot ship.
    Status st = s.value.parse(s.default_value, config);
    assert(st.ok());
    (void)st;
    config.sources[s.key] = Source::kDefault;
  }
  return config;
}

std::vector<std::string> ConfigFileCandidates(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out = {"./kvctl.toml"};
  // The XDG base directory spec says to ignore a relative XDG_CONFIG_HOME.
  const std::string* xdg = Lookup(env, "XDG_CONFIG_HOME");
  const std::string* home = Lookup(env, "HOME");
  if (xdg != nullptr && !xdg->empty() && xdg->front() == '/') {
    out.push_back((fs::path(*xdg) / "kvctl" / "config.toml").string());
  } else if (home != nullptr && !home->empty()) {
    out.push_back((fs::path(*home) / ".config" / "kvctl" / "config.toml").string());
  }
  out.push_back("/etc/kvctl/config.toml");
  return out;
}

Result<std::string> FindConfigFile(const LoadInputs& inputs) {
  if (inputs.config_path_flag) return CheckNamedFile(*inputs.config_path_flag, "given by --config");
  const std::string* named = Lookup(inputs.environment, std::string(kConfigEnv));
  if (named != nullptr && !named->empty()) {
    return CheckNamedFile(*named, "from environment KVCTL_CONFIG");
  }
  for (const std::string& candidate : ConfigFileCandidates(inputs.environment)) {
    std::error_code ec;
    // Unreadable directories on the way count as "not there": discovery is
    // a convenience and must not fail because of, say, an odd $HOME.
    if (fs::exists(fs::status(candidate, ec))) return candidate;
  }
  return std::string();
}

namespace {

// auth.file: a file of [[tokens]] and [[certs]] and nothing else.
Status ReadAuthFile(Config& config) {
  const std::string& path = config.auth.file;
  auto where = [&] { return fmt::format("auth.file = {}", TomlQuote(path)); };
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return Status::InvalidArgument(fmt::format("{} is not a file that exists", where()));
  }
  if (Status st = CheckNotWritableByOthers("auth.file", path); !st.ok()) return st;
  Result<std::string> content = ReadWholeFile(path);
  if (!content) return content.error();
  Result<toml::table> table = ParseToml(*content, path);
  if (!table) return table.error();
  for (const auto& [k, node] : *table) {
    const bool certs = k.str() == "certs";
    if (!certs && k.str() != "tokens") {
      return Status::InvalidArgument(fmt::format(
          "unknown key \"{}\" in {} (line {}) (given by {}); it holds only [[tokens]] and [[certs]]",
          k.str(), path, node.source().begin.line, where()));
    }
    auto identities = ParseIdentities(node, k.str(), certs, path);
    if (!identities) return identities.error();
    (certs ? config.auth.file_certs : config.auth.file_tokens) = std::move(*identities);
  }
  if (!config.auth.enabled()) {
    // An empty file would quietly leave the server open to everyone.
    return Status::InvalidArgument(fmt::format(
        "{} defines no [[tokens]] and no [[certs]]; remove the setting to run without auth", where()));
  }
  return Status::Ok();
}

// The TLS files go together: a key or a client CA means nothing without
// a certificate, and a certificate is useless without its key.
Status CheckTlsFiles(const Config::Tls& tls) {
  if (tls.cert.empty() && (!tls.key.empty() || !tls.client_ca.empty())) {
    return Status::InvalidArgument(fmt::format(
        "{} is set but tls.cert is not: TLS needs the server's certificate (tls.cert) and key (tls.key)",
        tls.key.empty() ? "tls.client_ca" : "tls.key"));
  }
  if (!tls.cert.empty() && tls.key.empty()) {
    return Status::InvalidArgument("tls.cert is set but tls.key is not: give the certificate's private key too");
  }
  if (!tls.client_crl.empty() && tls.client_ca.empty()) {
    return Status::InvalidArgument(
        "tls.client_crl is set but tls.client_ca is not: revocation lists are checked for client "
        "certificates, which tls.client_ca asks for (set it, or remove tls.client_crl)");
  }
  return Status::Ok();
}

}  // namespace

Status LoadAuthFile(Config& config) {
  config.auth.file_tokens.clear();
  config.auth.file_certs.clear();
  if (!config.auth.file.empty()) {
    if (Status st = ReadAuthFile(config); !st.ok()) return st;
  }
  return CheckIdentities(config);
}

Result<Config> Load(const LoadInputs& inputs) {
  Config config = Defaults();
  Result<std::string> path = FindConfigFile(inputs);
  if (!path) return path.error();
  if (!path->empty()) {
    config.config_file = *path;
    if (Status st = ApplyFile(*path, config); !st.ok()) return st;
  }
  if (Status st = ApplyEnvironment(inputs.environment, config); !st.ok()) return st;
  if (Status st = ApplyFlags(inputs.flags, config); !st.ok()) return st;
  if (Status st = CheckTlsFiles(config.tls); !st.ok()) return st;
  if (Status st = CheckIdentities(config); !st.ok()) return st;
  return config;
}

}  // namespace kvctl::config
