#include "lib/server/etcd_put_body.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <string>

#include "lib/core/base64.h"

namespace kvctl::server::etcd {
namespace {

// One member's value, as the body wrote it.
struct Scalar {
  enum class Kind { kString, kInteger, kTrue, kFalse, kNull } kind = Kind::kNull;
  std::string_view text;  // a string's contents (no quotes), an integer's digits
};

class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  void SkipSpace() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) ++at_;
  }
  bool Take(char c) {
    SkipSpace();
    if (at_ >= s_.size() || s_[at_] != c) return false;
    ++at_;
    return true;
  }
  bool AtEnd() {
    SkipSpace();
    return at_ == s_.size();
  }
  // A string with no escape and no control character: its contents.
  bool String(std::string_view* out) {
    if (!Take('"')) return false;
    const size_t start = at_;
    while (at_ < s_.size() && s_[at_] != '"') {
      if (s_[at_] == '\\' || static_cast<unsigned char>(s_[at_]) < 0x20) return false;
      ++at_;
    }
    if (at_ >= s_.size()) return false;
    *out = s_.substr(start, at_ - start);
    ++at_;  // the closing quote
    return true;
  }
  bool Value(Scalar* out) {
    SkipSpace();
    if (at_ >= s_.size()) return false;
    const char c = s_[at_];
    if (c == '"') {
      out->kind = Scalar::Kind::kString;
      return String(&out->text);
    }
    for (auto [word, kind] : {std::pair{std::string_view("true"), Scalar::Kind::kTrue},
                              std::pair{std::string_view("false"), Scalar::Kind::kFalse},
                              std::pair{std::string_view("null"), Scalar::Kind::kNull}}) {
      if (s_.substr(at_, word.size()) == word) {
        at_ += word.size();
        out->kind = kind;
        return true;
      }
    }
    // An integer as JSON writes one: -?(0|[1-9][0-9]*), no fraction or
    // exponent (those go to the full reader).
    const size_t start = at_;
    if (s_[at_] == '-') ++at_;
    const size_t digits = at_;
    while (at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9') ++at_;
    if (at_ == digits || (s_[digits] == '0' && at_ - digits > 1)) return false;
    if (at_ < s_.size() && (s_[at_] == '.' || s_[at_] == 'e' || s_[at_] == 'E')) return false;
    out->kind = Scalar::Kind::kInteger;
    out->text = s_.substr(start, at_ - start);
    return true;
  }

 private:
  std::string_view s_;
  size_t at_ = 0;
};

// Digits with an optional minus (from_chars takes no '+' or space), within int64.
bool ParseInt64(std::string_view text, int64_t* out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out, 10);
  return error == std::errc() && end == text.data() + text.size();
}

bool ReadBase64(const Scalar& v, std::string* out) {
  if (v.kind == Scalar::Kind::kNull) return true;  // as if absent
  if (v.kind != Scalar::Kind::kString) return false;
  auto decoded = core::Base64Decode(v.text);
  if (!decoded) return false;
  *out = std::move(*decoded);
  return true;
}

bool ReadFlag(const Scalar& v, bool* out) {
  if (v.kind == Scalar::Kind::kNull) return true;
  if (v.kind != Scalar::Kind::kTrue && v.kind != Scalar::Kind::kFalse) return false;
  *out = v.kind == Scalar::Kind::kTrue;
  return true;
}

bool ReadLease(const Scalar& v, int64_t* out) {
  if (v.kind == Scalar::Kind::kNull) return true;
  if (v.kind != Scalar::Kind::kInteger && v.kind != Scalar::Kind::kString) return false;
  return ParseInt64(v.text, out);
}

}  // namespace

std::optional<PutAsk> ReadPlainPutBody(std::string_view body) {
  // ASCII only: the full reader checks UTF-8 (and refuses what is not),
  // which this one does not.
  for (char c : body) {
    if (static_cast<unsigned char>(c) >= 0x80) return std::nullopt;
  }
  Scanner in(body);
  if (!in.Take('{')) return std::nullopt;
  PutAsk ask;
  static constexpr std::array<std::string_view, 6> kFields = {"key",     "value",        "lease",
                                                              "prev_kv", "ignore_value", "ignore_lease"};
  std::array<bool, kFields.size()> seen{};
  std::string name_seen;  // names of other members, '\0'-separated: none may come twice
  bool first = true;
  while (!in.Take('}')) {
    if (!first && !in.Take(',')) return std::nullopt;
    first = false;
    std::string_view name;
    Scalar value;
    if (!in.String(&name) || !in.Take(':') || !in.Value(&value)) return std::nullopt;
    size_t field = 0;
    while (field < kFields.size() && kFields[field] != name) ++field;
    if (field == kFields.size()) {
      if (name.find('\0') != std::string_view::npos) return std::nullopt;
      for (size_t at = 0; at < name_seen.size();) {
        const size_t end = name_seen.find('\0', at);
        if (std::string_view(name_seen).substr(at, end - at) == name) return std::nullopt;
        at = end + 1;
      }
      name_seen.append(name).push_back('\0');
      continue;
    }
    if (seen[field]) return std::nullopt;
    seen[field] = true;
    bool ok = false;
    switch (field) {
      case 0: ok = ReadBase64(value, &ask.key); break;
      case 1: ok = ReadBase64(value, &ask.value); break;
      case 2: ok = ReadLease(value, &ask.lease); break;
      case 3: ok = ReadFlag(value, &ask.prev_kv); break;
      case 4: ok = ReadFlag(value, &ask.ignore_value); break;
      case 5: ok = ReadFlag(value, &ask.ignore_lease); break;
    }
    if (!ok) return std::nullopt;
  }
  if (!in.AtEnd()) return std::nullopt;
  return ask;
}

}  // namespace kvctl::server::etcd
