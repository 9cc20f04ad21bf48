#include "lib/pg/dsn_mask.h"

#include <libpq-fe.h>

namespace kvctl::pg {
namespace {

// libpq's key=value quoting: bare when it can be, else in single quotes
// with \ and ' escaped.
void AppendValue(std::string& out, std::string_view value) {
  const bool bare = !value.empty() && value.find_first_of(" \t\n\r\f\v'\\") == std::string_view::npos;
  if (bare) {
    out += value;
    return;
  }
  out += '\'';
  for (char c : value) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  out += '\'';
}

}  // namespace

std::string MaskDsnSecrets(std::string_view dsn) {
  if (dsn.empty()) return "";
  char* error = nullptr;
  // Its error message may quote part of the string, so it is not shown.
  PQconninfoOption* options = PQconninfoParse(std::string(dsn).c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) return std::string(kMaskedSecret);
  std::string out;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;  // not set by this string
    if (!out.empty()) out += ' ';
    out += o->keyword;
    out += '=';
    const bool secret = o->dispchar != nullptr && o->dispchar[0] == '*';
    AppendValue(out, secret ? kMaskedSecret : std::string_view(o->val));
  }
  PQconninfoFree(options);
  return out;
}

}  // namespace kvctl::pg
