// The auth identities of the config: [[auth.tokens]] and [[auth.certs]]
// in the config file, [[tokens]] and [[certs]] in the file auth.file names.
//
//   [[auth.tokens]]
//   name = "deploy"                      # shown in logs, never the token
//   sha256 = "9f86d081884c7d65..."       # printf %s TOKEN | sha256sum
//   grants = [{ prefix = "app/", ops = ["read", "write"] }]
//
//   [[auth.certs]]
//   cn = "backup.example.com"            # the client certificate's subject CN
//   grants = [{ prefix = "", ops = ["read"] }]
//
// Every field is required and no other is accepted; ops are read, write
// and admin; admin is store-wide, so it is granted only with prefix "".
// Internal to lib/config: the only header here that exposes toml++.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "lib/config/config.h"
#include "lib/core/status.h"

namespace kvctl::config {

// Reads `node` (an array of tables) as identities. `key` names the list
// in messages ("auth.tokens"); `path` is the file it is in.
core::Result<std::vector<AuthIdentity>> ParseIdentities(const toml::node& node, std::string_view key,
                                                        bool certs, std::string_view path);

// The checks across lists and files: unique names (they are the identities
// the rate limit counts), unique hashes, and certificates only with
// tls.client_ca.
core::Status CheckIdentities(const Config& config);

// `identities` as an inline TOML array, for `config show`.
std::string IdentitiesToml(const std::vector<AuthIdentity>& identities, bool certs);

}  // namespace kvctl::config
