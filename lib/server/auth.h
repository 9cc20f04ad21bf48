// Who may do what: bearer tokens and client certificates, each with grants
// of operations on key prefixes (SPEC §2, "optional, configured").
//
// - A token is known by the SHA-256 of its bytes; the server never holds
//   the token itself. A presented token is hashed and compared with every
//   known hash in constant time (CRYPTO_memcmp), so neither the comparison
//   nor which entry matched shows in the timing.
// - With mutual TLS, a verified client certificate whose subject Common
//   Name is listed is an identity of its own; a token, when one is sent,
//   takes precedence.
// - A grant allows read, write and/or admin on every key that starts with
//   its prefix ("" is every key). Admin is store-wide (compaction, and
//   /metrics when auth.metrics = "admin"), so it is granted with prefix "".
//
// Thread safety: immutable after construction; use from any thread.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/server/http_types.h"
#include "lib/server/metrics.h"

namespace kvctl::server {

enum class Op { kRead, kWrite, kAdmin };
const char* OpName(Op op);

struct Grant {
  std::string prefix;  // "" covers every key
  bool read = false;
  bool write = false;
  bool admin = false;

  bool Allows(Op op) const;
};

using Sha256Digest = std::array<unsigned char, 32>;

// "ab01..." (64 hex digits, either case) -> the digest; nullopt otherwise.
std::optional<Sha256Digest> ParseSha256Hex(std::string_view hex);
// SHA-256 of `data`, as 64 lowercase hex digits: what a token's entry holds.
std::string Sha256Hex(std::string_view data);

struct Principal {
  std::string name;  // shown in logs and used as the rate-limit identity
  std::vector<Grant> grants;

  bool Permits(Op op, std::string_view key) const;
  // The ranges of a listing under `prefix` this principal may read, as
  // prefixes that do not overlap, in key order: {prefix} when a grant
  // covers all of it, {} when none of it is readable.
  std::vector<std::string> ReadableWithin(std::string_view prefix) const;
  bool ReadsAnything() const;
};

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

class Authenticator {
 public:
  explicit Authenticator(AuthOptions options);

  // Off when no token and no certificate is configured: every request may
  // do everything, as without this feature.
  bool enabled() const { return !tokens_.empty() || !certs_.empty(); }
  bool metrics_need_admin() const { return metrics_need_admin_; }

  struct Outcome {
    const Principal* principal = nullptr;  // set when authenticated
    // kMissing, kInvalid, or kDuplicate (more than one Authorization field) when not.
    AuthFailure failure = AuthFailure::kCount;
    std::string message;  // for the 401 body: what was wrong, what to send
  };
  // Who sent `request`: its bearer token, else its client certificate;
  // nobody when it has two Authorization fields.
  Outcome Authenticate(const HttpRequest& request) const;

 private:
  struct KnownToken {
    Sha256Digest sha256;
    Principal principal;
  };
  std::vector<KnownToken> tokens_;
  std::vector<Principal> certs_;  // name = the certificate's CN
  bool metrics_need_admin_;
};

}  // namespace kvctl::server
