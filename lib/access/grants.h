// Who may do what, as values: operations, grants of them on key prefixes,
// and a principal (an authenticated identity) holding grants. How an
// identity is established (tokens, client certificates) is the server's
// (lib/server/auth.h); what a grant means is here, so that every face can
// judge its requests by it without knowing the others: kvctl's own API and
// both etcd faces (lib/etcd/access.h judges etcd's ranges, for the JSON and
// the gRPC face alike).
//
// - A grant allows read, write and/or admin on every key that starts with
//   its prefix ("" is every key). Admin is store-wide (compaction, and
//   /metrics when auth.metrics = "admin"), so it is granted with prefix "".
//
// Thread safety: plain values; const use from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvctl::access {

enum class Op { kRead, kWrite, kAdmin };
const char* OpName(Op op);

struct Grant {
  std::string prefix;  // "" covers every key
  bool read = false;
  bool write = false;
  bool admin = false;

  bool Allows(Op op) const;
};

struct Principal {
  std::string name;  // shown in logs and used as the rate-limit identity
  std::vector<Grant> grants;

  bool Permits(Op op, std::string_view key) const;
  // The ranges of a listing under `prefix` this principal may read, as
  // prefixes that do not overlap, in key order: {prefix} when a grant
  // covers all of it, {} when none of it is readable.
  std::vector<std::string> ReadableWithin(std::string_view prefix) const;
  bool ReadsAnything() const;
  bool WritesAnything() const;
};

}  // namespace kvctl::access
