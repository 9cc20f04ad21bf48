#include "lib/server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "lib/core/percent_encoding.h"

namespace kvctl::server {
namespace {

Sha256Digest Sha256(std::string_view data) {
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::optional<Sha256Digest> ParseSha256Hex(std::string_view hex) {
  Sha256Digest out{};
  if (hex.size() != out.size() * 2) return std::nullopt;
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = core::HexDigitValue(hex[2 * i]);
    const int lo = core::HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  std::string out;
  for (unsigned char b : Sha256(data)) out += fmt::format("{:02x}", b);
  return out;
}

Authenticator::Authenticator(AuthOptions options) : metrics_need_admin_(options.metrics_need_admin) {
  for (AuthOptions::Token& t : options.tokens) {
    tokens_.push_back({t.sha256, Principal{std::move(t.name), std::move(t.grants)}});
  }
  for (AuthOptions::Cert& c : options.certs) {
    certs_.push_back(Principal{std::move(c.common_name), std::move(c.grants)});
  }
}

Credentials CredentialsOf(const HttpRequest& request) {
  Credentials c;
  c.fields = request.HeaderCount("Authorization");
  if (c.fields > 0) c.authorization = request.Header("Authorization");
  c.peer_common_name = request.peer_common_name;
  return c;
}

const Principal* Authenticator::Match(std::string_view token) const {
  const Sha256Digest presented = Sha256(token);
  // Every entry is compared, so the time taken does not tell which matched.
  const Principal* found = nullptr;
  for (const KnownToken& known : tokens_) {
    if (CRYPTO_memcmp(presented.data(), known.sha256.data(), presented.size()) == 0) found = &known.principal;
  }
  return found;
}

Authenticator::Outcome Authenticator::Authenticate(const Credentials& credentials) const {
  if (credentials.fields > 1) {
    return {nullptr, AuthFailure::kDuplicate,
            fmt::format("the request has {} {}; send exactly one", credentials.fields, credentials.fields_name)};
  }
  std::optional<std::string_view> token = credentials.token;
  if (credentials.authorization) {
    std::string_view value = *credentials.authorization;
    const size_t space = value.find(' ');
    std::string_view bearer = space == std::string_view::npos ? std::string_view() : value.substr(space + 1);
    while (!bearer.empty() && bearer.front() == ' ') bearer.remove_prefix(1);
    while (!bearer.empty() && bearer.back() == ' ') bearer.remove_suffix(1);
    if (space == std::string_view::npos || !EqualsIgnoringCase(value.substr(0, space), "Bearer") ||
        bearer.empty()) {
      return {nullptr, AuthFailure::kInvalid, "the Authorization header must be \"Bearer <token>\""};
    }
    token = bearer;
  }
  if (token) {
    const Principal* found = Match(*token);
    if (found == nullptr) return {nullptr, AuthFailure::kInvalid, "the bearer token is not valid here"};
    return {found, AuthFailure::kCount, {}};
  }
  if (!credentials.peer_common_name.empty()) {
    for (const Principal& p : certs_) {
      if (p.name == credentials.peer_common_name) return {&p, AuthFailure::kCount, {}};
    }
    return {nullptr, AuthFailure::kMissing,
            fmt::format("the client certificate (CN={}) has no grants here and no bearer token "
                        "was sent (Authorization: Bearer <token>)",
                        credentials.peer_common_name)};
  }
  return {nullptr, AuthFailure::kMissing,
          "this server requires a bearer token (Authorization: Bearer <token>; kvctl: "
          "--token or KVCTL_CLIENT_TOKEN)"};
}

const Principal* Authenticator::AuthenticateToken(std::string_view name, std::string_view token) const {
  const Principal* found = Match(token);
  return found != nullptr && found->name == name ? found : nullptr;
}

}  // namespace kvctl::server
