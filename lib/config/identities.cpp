#include "lib/config/identities.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "lib/config/parse.h"

namespace kvctl::config {
namespace {

using core::Result;
using core::Status;

constexpr std::string_view kHashHint = "printf %s TOKEN | sha256sum, or kvctl auth hash-token";

bool IsLowerHex64(std::string_view s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

Result<std::string> StringField(const toml::table& t, std::string_view field, std::string_view where) {
  const toml::node* n = t.get(field);
  if (n == nullptr) return Status::InvalidArgument(fmt::format("{} lacks {}", where, field));
  const auto* s = n->as_string();
  if (s == nullptr) return Status::InvalidArgument(fmt::format("{}: {} must be a string", where, field));
  return s->get();
}

Status CheckFields(const toml::table& t, std::initializer_list<std::string_view> known, std::string_view where) {
  for (const auto& [k, v] : t) {
    bool ok = false;
    for (std::string_view name : known) ok = ok || k.str() == name;
    if (!ok) {
      return Status::InvalidArgument(fmt::format("{}: unknown field \"{}\" (known: {})", where, k.str(),
                                                 fmt::join(known, ", ")));
    }
  }
  return Status::Ok();
}

Result<AuthGrant> ParseGrant(const toml::node& node, std::string_view where) {
  const toml::table* t = node.as_table();
  if (t == nullptr) {
    return Status::InvalidArgument(
        fmt::format("{} must be a table such as {{ prefix = \"app/\", ops = [\"read\"] }}", where));
  }
  if (Status s = CheckFields(*t, {"prefix", "ops"}, where); !s.ok()) return s;
  AuthGrant grant;
  auto prefix = StringField(*t, "prefix", where);
  if (!prefix) return prefix.error();
  grant.prefix = *prefix;
  const toml::array* ops = t->get_as<toml::array>("ops");
  if (ops == nullptr || ops->empty()) {
    return Status::InvalidArgument(
        fmt::format("{} needs ops, a non-empty array of \"read\", \"write\", \"admin\"", where));
  }
  for (const toml::node& op : *ops) {
    const auto* name = op.as_string();
    const std::string text = name != nullptr ? name->get() : "";
    if (text == "read") {
      grant.read = true;
    } else if (text == "write") {
      grant.write = true;
    } else if (text == "admin") {
      grant.admin = true;
    } else {
      return Status::InvalidArgument(
          fmt::format("{}: ops holds {}, which is not one of \"read\", \"write\", \"admin\"", where,
                      name != nullptr ? TomlQuote(text) : std::string("a non-string")));
    }
  }
  if (grant.admin && !grant.prefix.empty()) {
    return Status::InvalidArgument(fmt::format(
        "{}: admin is store-wide (compaction, /metrics), so grant it with prefix = \"\"", where));
  }
  return grant;
}

}  // namespace

Result<std::vector<AuthIdentity>> ParseIdentities(const toml::node& node, std::string_view key, bool certs,
                                                  std::string_view path) {
  const toml::array* list = node.as_array();
  const std::string example = certs ? "[[" + std::string(key) + "]] with cn and grants"
                                    : "[[" + std::string(key) + "]] with name, sha256 and grants";
  if (list == nullptr) {
    return Status::InvalidArgument(fmt::format("{} in {} (line {}) must be an array of tables: {}", key, path,
                                               node.source().begin.line, example));
  }
  std::vector<AuthIdentity> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const toml::node& entry = *list->get(i);
    const std::string where =
        fmt::format("{}[{}] (in {}, line {})", key, i, path, entry.source().begin.line);
    const toml::table* t = entry.as_table();
    if (t == nullptr) return Status::InvalidArgument(fmt::format("{} must be a table: {}", where, example));
    AuthIdentity id;
    id.origin = fmt::format("{}, line {}", path, entry.source().begin.line);
    if (certs) {
      if (Status s = CheckFields(*t, {"cn", "grants"}, where); !s.ok()) return s;
      auto cn = StringField(*t, "cn", where);
      if (!cn) return cn.error();
      id.name = *cn;
    } else {
      if (Status s = CheckFields(*t, {"name", "sha256", "grants"}, where); !s.ok()) return s;
      auto name = StringField(*t, "name", where);
      if (!name) return name.error();
      auto hash = StringField(*t, "sha256", where);
      if (!hash) return hash.error();
      id.name = *name;
      for (char& c : *hash) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (!IsLowerHex64(*hash)) {
        return Status::InvalidArgument(fmt::format(
            "{}: sha256 must be the 64 hex digits of the token's SHA-256 ({}), not the token", where,
            kHashHint));
      }
      id.sha256 = *hash;
    }
    if (id.name.empty()) {
      return Status::InvalidArgument(fmt::format("{}: {} must not be empty", where, certs ? "cn" : "name"));
    }
    const toml::array* grants = t->get_as<toml::array>("grants");
    if (grants == nullptr || grants->empty()) {
      return Status::InvalidArgument(fmt::format(
          "{} needs grants, e.g. grants = [{{ prefix = \"app/\", ops = [\"read\", \"write\"] }}]", where));
    }
    for (size_t g = 0; g < grants->size(); ++g) {
      auto grant = ParseGrant(*grants->get(g), fmt::format("{}.grants[{}]", where, g));
      if (!grant) return grant.error();
      id.grants.push_back(std::move(*grant));
    }
    out.push_back(std::move(id));
  }
  return out;
}

Status CheckIdentities(const Config& config) {
  std::map<std::string, std::string> names;   // name -> origin
  std::map<std::string, std::string> hashes;  // sha256 -> origin
  for (const auto* list : {&config.auth.tokens, &config.auth.file_tokens, &config.auth.certs,
                           &config.auth.file_certs}) {
    for (const AuthIdentity& id : *list) {
      if (auto [it, fresh] = names.emplace(id.name, id.origin); !fresh) {
        return Status::InvalidArgument(fmt::format(
            "auth identity \"{}\" is defined twice ({}; {}): names must be unique", id.name, it->second,
            id.origin));
      }
      if (id.sha256.empty()) continue;
      if (auto [it, fresh] = hashes.emplace(id.sha256, id.origin); !fresh) {
        return Status::InvalidArgument(fmt::format(
            "two auth tokens have the same sha256 ({}; {}): give each client its own token", it->second,
            id.origin));
      }
    }
  }
  const bool certs = !config.auth.certs.empty() || !config.auth.file_certs.empty();
  if (certs && config.tls.client_ca.empty()) {
    return Status::InvalidArgument(
        "auth.certs names client certificates, but tls.client_ca is not set: without it no client "
        "certificate is asked for or verified (set tls.cert, tls.key and tls.client_ca)");
  }
  return Status::Ok();
}

std::string IdentitiesToml(const std::vector<AuthIdentity>& identities, bool certs) {
  std::vector<std::string> entries;
  for (const AuthIdentity& id : identities) {
    std::vector<std::string> grants;
    for (const AuthGrant& g : id.grants) {
      std::vector<std::string> ops;
      if (g.read) ops.emplace_back("\"read\"");
      if (g.write) ops.emplace_back("\"write\"");
      if (g.admin) ops.emplace_back("\"admin\"");
      grants.push_back(fmt::format("{{ prefix = {}, ops = [{}] }}", TomlQuote(g.prefix), fmt::join(ops, ", ")));
    }
    entries.push_back(certs ? fmt::format("{{ cn = {}, grants = [{}] }}", TomlQuote(id.name), fmt::join(grants, ", "))
                            : fmt::format("{{ name = {}, sha256 = {}, grants = [{}] }}", TomlQuote(id.name),
                                          TomlQuote(id.sha256), fmt::join(grants, ", ")));
  }
  return fmt::format("[{}]", fmt::join(entries, ", "));
}

}  // namespace kvctl::config
