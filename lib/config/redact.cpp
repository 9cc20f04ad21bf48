#include "lib/config/redact.h"

#include <cctype>

namespace kvctl::config {
namespace {

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

// URL form: the password in the userinfo ("user:PASSWORD@") and any
// "password=" query parameter.
std::string MaskUrl(std::string_view url, size_t scheme_end) {
  std::string out(url);
  const size_t authority = scheme_end + 3;
  size_t authority_end = out.find_first_of("/?#", authority);
  if (authority_end == std::string::npos) authority_end = out.size();
  // The userinfo ends at the last '@' of the authority: a password may hold '@'.
  const size_t at = out.rfind('@', authority_end - 1);
  if (at != std::string::npos && at >= authority) {
    const size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, kMasked);
      authority_end = out.find_first_of("/?#", authority);
      if (authority_end == std::string::npos) authority_end = out.size();
    }
  }
  const size_t query = out.find('?', authority_end);
  if (query == std::string::npos) return out;
  size_t pos = query + 1;
  while (pos < out.size() && out[pos] != '#') {
    size_t end = out.find_first_of("&#", pos);
    if (end == std::string::npos) end = out.size();
    const std::string_view param = std::string_view(out).substr(pos, end - pos);
    if (param.rfind("password=", 0) == 0) {
      out.replace(pos + 9, end - pos - 9, kMasked);
      end = pos + 9 + kMasked.size();
    }
    pos = end < out.size() && out[end] == '&' ? end + 1 : end;
  }
  return out;
}

// libpq's key=value form: keys, '=' with optional spaces around it, values
// bare or in single quotes with backslash escapes.
std::string MaskKeyValues(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (IsSpace(text[i])) {
      out += text[i++];
      continue;
    }
    const size_t key_begin = i;
    while (i < text.size() && text[i] != '=' && !IsSpace(text[i])) ++i;
    const std::string_view key = text.substr(key_begin, i - key_begin);
    size_t eq = i;
    while (eq < text.size() && IsSpace(text[eq])) ++eq;
    if (eq >= text.size() || text[eq] != '=') {  // not key=value: keep it as it is
      out += key;
      continue;
    }
    i = eq + 1;
    while (i < text.size() && IsSpace(text[i])) ++i;
    const size_t value_begin = i;
    if (i < text.size() && text[i] == '\'') {
      for (++i; i < text.size() && text[i] != '\''; ++i) {
        if (text[i] == '\\') ++i;
      }
      if (i < text.size()) ++i;  // the closing quote
    } else {
      while (i < text.size() && !IsSpace(text[i])) ++i;
    }
    out += key;
    out += '=';
    if (key == "password") {
      out += kMasked;
    } else {
      out += text.substr(value_begin, i - value_begin);
    }
  }
  return out;
}

}  // namespace

std::string MaskWhole(std::string_view token) { return token.empty() ? "" : std::string(kMasked); }

std::string MaskConnectionPassword(std::string_view dsn) {
  const size_t scheme_end = dsn.find("://");
  if (scheme_end != std::string_view::npos) return MaskUrl(dsn, scheme_end);
  if (dsn.find('=') != std::string_view::npos) return MaskKeyValues(dsn);
  return std::string(dsn);
}

}  // namespace kvctl::config
