#include "lib/access/grants.h"

#include <algorithm>

namespace kvctl::access {

const char* OpName(Op op) {
  switch (op) {
    case Op::kRead: return "read";
    case Op::kWrite: return "write";
    case Op::kAdmin: return "admin";
  }
  return "?";
}

bool Grant::Allows(Op op) const {
  switch (op) {
    case Op::kRead: return read;
    case Op::kWrite: return write;
    case Op::kAdmin: return admin;
  }
  return false;
}

bool Principal::Permits(Op op, std::string_view key) const {
  return std::any_of(grants.begin(), grants.end(),
                     [&](const Grant& g) { return g.Allows(op) && key.starts_with(g.prefix); });
}

std::vector<std::string> Principal::ReadableWithin(std::string_view prefix) const {
  std::vector<std::string> inside;
  for (const Grant& g : grants) {
    if (!g.read) continue;
    if (prefix.starts_with(g.prefix)) return {std::string(prefix)};
    if (std::string_view(g.prefix).starts_with(prefix)) inside.push_back(g.prefix);
  }
  // Sorted, a prefix comes right before the prefixes it covers: keep only
  // the outermost, which leaves ranges that do not overlap, in key order.
  std::sort(inside.begin(), inside.end());
  std::vector<std::string> out;
  for (std::string& p : inside) {
    if (out.empty() || !p.starts_with(out.back())) out.push_back(std::move(p));
  }
  return out;
}

bool Principal::ReadsAnything() const {
  return std::any_of(grants.begin(), grants.end(), [](const Grant& g) { return g.read; });
}

bool Principal::WritesAnything() const {
  return std::any_of(grants.begin(), grants.end(), [](const Grant& g) { return g.write; });
}

}  // namespace kvctl::access
