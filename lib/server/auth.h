// Who a caller is: bearer tokens and client certificates, each with grants
// of operations on key prefixes (SPEC §2, "optional, configured"; what a
// grant allows is lib/access/grants.h).
//
// - A token is known by the SHA-256 of its bytes; the server never holds
//   the token itself. A presented token is hashed and compared with every
//   known hash in constant time (CRYPTO_memcmp), so neither the comparison
//   nor which entry matched shows in the timing.
// - With mutual TLS, a verified client certificate whose subject Common
//   Name is listed is an identity of its own; a token, when one is sent,
//   takes precedence.
// - What a caller presented is read from its transport into Credentials
//   (an HTTP request's headers here; gRPC metadata by the gRPC gate), so
//   every transport is judged by the one Authenticate().
//
// Thread safety: immutable after construction; use from any thread.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/access/credentials.h"
#include "lib/access/grants.h"
#include "lib/server/http_types.h"
#include "lib/server/metrics.h"

namespace kvctl::server {

// The server's code names them as its own.
using access::Credentials;
using access::Grant;
using access::Op;
using access::OpName;
using access::Principal;

using Sha256Digest = std::array<unsigned char, 32>;

// "ab01..." (64 hex digits, either case) -> the digest; nullopt otherwise.
std::optional<Sha256Digest> ParseSha256Hex(std::string_view hex);
// SHA-256 of `data`, as 64 lowercase hex digits: what a token's entry holds.
std::string Sha256Hex(std::string_view data);

struct AuthOptions {
  struct Token {
    std::string name;
    Sha256Digest sha256{};
    std::vector<Grant> grants;
  };
  struct Cert {
    std::string common_name;  // the client certificate's subject CN
    std::vector<Grant> grants;
  };
  std::vector<Token> tokens;
  std::vector<Cert> certs;
  bool metrics_need_admin = false;  // auth.metrics = "admin"

  // Auth is on when any identity is defined.
  bool enabled() const { return !tokens.empty() || !certs.empty(); }
};

// A request's Authorization fields and its verified client certificate.
Credentials CredentialsOf(const HttpRequest& request);

class Authenticator {
 public:
  explicit Authenticator(AuthOptions options);

  // Off when no token and no certificate is configured: every request may
  // do everything, as without this feature.
  bool enabled() const { return !tokens_.empty() || !certs_.empty(); }
  bool metrics_need_admin() const { return metrics_need_admin_; }

  struct Outcome {
    const Principal* principal = nullptr;  // set when authenticated
    // kMissing, kInvalid, or kDuplicate (more than one credential field) when not.
    AuthFailure failure = AuthFailure::kCount;
    std::string message;  // for the 401 body: what was wrong, what to send
  };
  // Who presented `credentials`: its token (either form), else its client
  // certificate; nobody when it has more than one credential field.
  Outcome Authenticate(const Credentials& credentials) const;
  Outcome Authenticate(const HttpRequest& request) const { return Authenticate(CredentialsOf(request)); }
  // etcd's Auth.Authenticate (name and password): the token entry named
  // `name` when `token` is its token, else null. Every entry's hash is
  // compared, as for Authenticate, so the time taken tells nothing.
  const Principal* AuthenticateToken(std::string_view name, std::string_view token) const;

 private:
  // The token entry whose hash `token`'s is, or null.
  const Principal* Match(std::string_view token) const;

  struct KnownToken {
    Sha256Digest sha256;
    Principal principal;
  };
  std::vector<KnownToken> tokens_;
  std::vector<Principal> certs_;  // name = the certificate's CN
  bool metrics_need_admin_;
};

}  // namespace kvctl::server
