// The two readers of POST /v1/txn's body (see txn_json.h).
//
// Choices where the SPEC is silent (docs/http-api.md, "Transactions"):
// - The body is strict: an unknown field, a wrong type, bad base64 or an op
//   of two kinds is 400 bad_txn naming the place ("success[2].put.key: not
//   base64"), never ignored. Missing arrays are empty; a put's value is ""
//   and its lease 0 when left out (etcd's JSON leaves out empty fields).
// - A number (a compare's value for the non-value targets, a put's lease, a
//   get's limit) is a JSON number or a decimal string (etcd's JSON writes
//   64-bit numbers as strings).
// - A field given twice in one object is nlohmann's: the last one counts.
#include "lib/server/txn_json.h"

#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "lib/core/base64.h"
#include "lib/server/api_internal.h"

namespace kvctl::server {
namespace {

using api::json;
using core::Status;
using core::TxnCompare;
using core::TxnOp;

// ------------------------------------------------------------ the plain reader
//
// A cursor over the body that reads exactly the SPEC's shape and nothing
// more: objects and arrays only where the shape has them (so its depth is
// fixed, and nothing recurses on what a peer sends), strings of printable
// ASCII without escapes (base64 and field names need none), whole numbers
// without sign, fraction or exponent that fit in 64 bits. Every other
// byte, a field it does not know or one given twice, is "not plain": it
// declines, and the checked reader decides (and names the error).
class PlainReader {
 public:
  PlainReader(std::string_view text, size_t max_ops) : text_(text), ops_left_(max_ops) {}

  bool Read(core::TxnRequest* txn) {
    unsigned seen = 0;
    const bool ok = Members([&](std::string_view name) {
      if (name == "compare") {
        return Once(&seen, 1) && NullOr([&] { return Elements([&] { return Compare(&txn->compare.emplace_back()); }); });
      }
      if (name == "success") return Once(&seen, 2) && NullOr([&] { return Branch(&txn->success); });
      if (name == "failure") return Once(&seen, 4) && NullOr([&] { return Branch(&txn->failure); });
      return false;
    });
    SkipSpace();
    return ok && at_ == text_.size();
  }

 private:
  // A number where a compare's value may be either.
  struct Scalar {
    bool present = false;
    bool is_string = false;
    std::string_view text;  // a string's contents
    uint64_t number = 0;    // a JSON number's value
  };

  void SkipSpace() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\n' || text_[at_] == '\r' || text_[at_] == '\t')) {
      ++at_;
    }
  }

  char Peek() {
    SkipSpace();
    return at_ < text_.size() ? text_[at_] : '\0';
  }

  bool Eat(char c) {
    if (Peek() != c) return false;
    ++at_;
    return true;
  }

  // A field seen before in this object is not plain (nlohmann keeps the
  // last one; the checked reader does that).
  static bool Once(unsigned* seen, unsigned bit) {
    if (*seen & bit) return false;
    *seen |= bit;
    return true;
  }

  // {"name": value, ...}, `member` reading each value after its name.
  template <typename F>
  bool Members(F&& member) {
    if (!Eat('{')) return false;
    if (Eat('}')) return true;
    do {
      std::string_view name;
      if (!String(&name) || !Eat(':') || !member(name)) return false;
    } while (Eat(','));
    return Eat('}');
  }

  // [element, ...]; each element counts against max_ops.
  template <typename F>
  bool Elements(F&& element) {
    if (!Eat('[')) return false;
    if (Eat(']')) return true;
    do {
      if (ops_left_ == 0) return false;
      --ops_left_;
      if (!element()) return false;
    } while (Eat(','));
    return Eat(']');
  }

  template <typename F>
  bool NullOr(F&& read) {
    if (Peek() == 'n') {
      if (text_.substr(at_, 4) != "null") return false;
      at_ += 4;
      return true;
    }
    return read();
  }

  // A string of printable ASCII without escapes, its contents into `out`.
  bool String(std::string_view* out) {
    if (!Eat('"')) return false;
    const size_t start = at_;
    for (; at_ < text_.size(); ++at_) {
      const auto c = static_cast<unsigned char>(text_[at_]);
      if (c == '"') {
        *out = text_.substr(start, at_ - start);
        ++at_;
        return true;
      }
      if (c < 0x20 || c == '\\' || c >= 0x80) return false;
    }
    return false;
  }

  bool Bytes(std::string* out) {
    std::string_view text;
    if (!String(&text)) return false;
    auto bytes = core::Base64Decode(text);
    if (!bytes) return false;
    *out = std::move(*bytes);
    return true;
  }

  // A JSON number that nlohmann reads as unsigned: digits, no leading zero,
  // up to UINT64_MAX (more is a double to nlohmann, which ReadNumber refuses).
  bool Number(uint64_t* out) {
    SkipSpace();
    const size_t start = at_;
    while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
    const std::string_view digits = text_.substr(start, at_ - start);
    if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return false;
    if (at_ < text_.size() && (text_[at_] == '.' || text_[at_] == 'e' || text_[at_] == 'E')) return false;
    return api::ParseUint(digits, out);
  }

  bool Value(Scalar* out) {
    out->present = true;
    out->is_string = Peek() == '"';
    return out->is_string ? String(&out->text) : Number(&out->number);
  }

  // A whole number from 0 to `max`: a JSON number or a decimal string.
  static bool WholeNumber(const Scalar& v, uint64_t max, uint64_t* out) {
    if (v.is_string) {
      if (!api::ParseUint(v.text, out)) return false;
    } else {
      *out = v.number;
    }
    return *out <= max;
  }

  bool Compare(TxnCompare* c) {
    unsigned seen = 0;
    std::string_view key, target, op;
    Scalar value;
    const bool read = Members([&](std::string_view name) {
      if (name == "key") return Once(&seen, 1) && String(&key);
      if (name == "target") return Once(&seen, 2) && String(&target);
      if (name == "op") return Once(&seen, 4) && String(&op);
      if (name == "value") return Once(&seen, 8) && Value(&value);
      return false;
    });
    if (!read || seen != 15) return false;
    auto decoded = core::Base64Decode(key);
    if (!decoded) return false;
    c->key = std::move(*decoded);
    if (!TargetNamed(target, &c->target)) return false;
    if (op == "=") {
      c->op = TxnCompare::Op::kEqual;
    } else if (op == "!=") {
      c->op = TxnCompare::Op::kNotEqual;
    } else if (op == "<") {
      c->op = TxnCompare::Op::kLess;
    } else if (op == ">") {
      c->op = TxnCompare::Op::kGreater;
    } else {
      return false;
    }
    if (c->target != TxnCompare::Target::kValue) return WholeNumber(value, UINT64_MAX, &c->number);
    if (!value.is_string) return false;
    auto bytes = core::Base64Decode(value.text);
    if (!bytes) return false;
    c->value = std::move(*bytes);
    return true;
  }

  static bool TargetNamed(std::string_view name, TxnCompare::Target* out) {
    for (TxnCompare::Target t : {TxnCompare::Target::kValue, TxnCompare::Target::kRevision,
                                 TxnCompare::Target::kCreateRevision, TxnCompare::Target::kVersion,
                                 TxnCompare::Target::kLease}) {
      if (name == core::TargetName(t)) {
        *out = t;
        return true;
      }
    }
    return false;
  }

  bool Branch(std::vector<TxnOp>* ops) {
    return Elements([&] { return Op(&ops->emplace_back()); });
  }

  // {"put":{...}}, {"delete":{...}} or {"get":{...}}: exactly one.
  bool Op(TxnOp* op) {
    bool one = false;
    const bool read = Members([&](std::string_view name) {
      if (one) return false;
      one = true;
      if (name == "put") return Put(op);
      if (name == "delete") return KeyOrPrefix(TxnOp::Kind::kDelete, TxnOp::Kind::kDeletePrefix, nullptr, op);
      if (name == "get") {
        Scalar limit;
        if (!KeyOrPrefix(TxnOp::Kind::kGet, TxnOp::Kind::kGetPrefix, &limit, op)) return false;
        if (!limit.present) return true;
        uint64_t n = 0;
        if (op->kind != TxnOp::Kind::kGetPrefix || !WholeNumber(limit, core::kMaxTxnGetKeys, &n)) return false;
        op->limit = static_cast<size_t>(n);
        return true;
      }
      return false;
    });
    return read && one;
  }

  bool Put(TxnOp* op) {
    op->kind = TxnOp::Kind::kPut;
    unsigned seen = 0;
    Scalar lease;
    const bool read = Members([&](std::string_view name) {
      if (name == "key") return Once(&seen, 1) && Bytes(&op->key);
      if (name == "value") return Once(&seen, 2) && Bytes(&op->value);
      if (name == "lease") return Once(&seen, 4) && Value(&lease);
      return false;
    });
    if (!read || !(seen & 1)) return false;
    return !lease.present || WholeNumber(lease, UINT64_MAX, &op->lease);
  }

  // {"key"} or {"prefix"} (and a get's "limit" into `limit`, when given).
  bool KeyOrPrefix(TxnOp::Kind one, TxnOp::Kind many, Scalar* limit, TxnOp* op) {
    unsigned seen = 0;
    const bool read = Members([&](std::string_view name) {
      if (name == "key") return Once(&seen, 1) && Bytes(&op->key);
      if (name == "prefix") return Once(&seen, 2) && Bytes(&op->key);
      if (name == "limit" && limit != nullptr) return Once(&seen, 4) && Value(limit);
      return false;
    });
    if (!read) return false;
    const unsigned which = seen & 3;
    if (which != 1 && which != 2) return false;
    op->kind = which == 1 ? one : many;
    return true;
  }

  std::string_view text_;
  size_t at_ = 0;
  size_t ops_left_;
};

// ---------------------------------------------------------- the checked reader

std::string Place(std::string_view where, std::string_view field) {
  return where.empty() ? std::string(field) : fmt::format("{}.{}", where, field);
}

Status Bad(std::string_view where, std::string_view problem) {
  return Status::InvalidArgument(fmt::format("{}: {}", where, problem));
}

// Refuses a field of `obj` that is not in `known` (listed in the message).
Status OnlyFields(const json& obj, std::string_view where, std::initializer_list<std::string_view> known) {
  for (const auto& [name, value] : obj.items()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || name == k;
    if (ok) continue;
    std::string list;
    for (std::string_view k : known) list += fmt::format("{}{}", list.empty() ? "" : ", ", k);
    return Bad(Place(where, name), fmt::format("unknown field (known here: {})", list));
  }
  return Status::Ok();
}

// obj[name] as base64 bytes into `out`; a missing field is an error when
// `required`, else leaves `out` as it is. `*present` says whether it was there.
Status ReadBytes(const json& obj, std::string_view where, const char* name, bool required, std::string* out,
                 bool* present = nullptr) {
  const auto it = obj.find(name);
  if (present != nullptr) *present = it != obj.end();
  const std::string place = Place(where, name);
  if (it == obj.end()) return required ? Bad(place, "missing (base64 bytes)") : Status::Ok();
  if (!it->is_string()) return Bad(place, fmt::format("not a string (base64 bytes), got {}", it->type_name()));
  auto bytes = core::Base64Decode(it->get_ref<const std::string&>());
  if (!bytes) return Bad(place, fmt::format("not base64 ({})", bytes.error().message()));
  *out = std::move(*bytes);
  return Status::Ok();
}

// A whole number: a JSON number or a decimal string, up to `max`.
Status ReadNumber(const json& value, std::string_view place, uint64_t max, uint64_t* out) {
  bool ok = false;
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
    ok = true;
  } else if (value.is_string()) {
    ok = api::ParseUint(value.get_ref<const std::string&>(), out);
  }
  if (!ok || *out > max) {
    return Bad(place, fmt::format("not a whole number from 0 to {} (a JSON number or a decimal string), got {}",
                                  max, api::Dump(value)));
  }
  return Status::Ok();
}

Status ReadCompare(const json& j, const std::string& where, TxnCompare* c) {
  if (!j.is_object()) return Bad(where, "not an object ({\"key\",\"target\",\"op\",\"value\"})");
  if (Status s = OnlyFields(j, where, {"key", "target", "op", "value"}); !s.ok()) return s;
  if (Status s = ReadBytes(j, where, "key", true, &c->key); !s.ok()) return s;
  const auto target = j.find("target");
  if (target == j.end()) return Bad(Place(where, "target"), "missing (value, revision, create_revision, version or lease)");
  static constexpr TxnCompare::Target kTargets[] = {TxnCompare::Target::kValue, TxnCompare::Target::kRevision,
                                                    TxnCompare::Target::kCreateRevision,
                                                    TxnCompare::Target::kVersion, TxnCompare::Target::kLease};
  bool known = false;
  for (TxnCompare::Target t : kTargets) {
    if (target->is_string() && target->get_ref<const std::string&>() == core::TargetName(t)) {
      c->target = t;
      known = true;
    }
  }
  if (!known) {
    return Bad(Place(where, "target"),
               fmt::format("not one of value, revision, create_revision, version, lease: got {}", api::Dump(*target)));
  }
  const auto op = j.find("op");
  if (op == j.end()) return Bad(Place(where, "op"), "missing (=, !=, < or >)");
  const std::string op_text = op->is_string() ? op->get<std::string>() : std::string();
  if (op_text == "=") {
    c->op = TxnCompare::Op::kEqual;
  } else if (op_text == "!=") {
    c->op = TxnCompare::Op::kNotEqual;
  } else if (op_text == "<") {
    c->op = TxnCompare::Op::kLess;
  } else if (op_text == ">") {
    c->op = TxnCompare::Op::kGreater;
  } else {
    return Bad(Place(where, "op"), fmt::format("not one of =, !=, <, >: got {}", api::Dump(*op)));
  }
  if (c->target == TxnCompare::Target::kValue) return ReadBytes(j, where, "value", true, &c->value);
  const auto value = j.find("value");
  if (value == j.end()) {
    return Bad(Place(where, "value"), fmt::format("missing (a whole number, for target {})", core::TargetName(c->target)));
  }
  return ReadNumber(*value, Place(where, "value"), UINT64_MAX, &c->number);
}

// {"key"} or {"prefix"}: which one into `op` (kinds `one` / `many`).
Status ReadKeyOrPrefix(const json& j, const std::string& where, TxnOp::Kind one, TxnOp::Kind many, TxnOp* op) {
  bool has_key = false, has_prefix = false;
  if (Status s = ReadBytes(j, where, "key", false, &op->key, &has_key); !s.ok()) return s;
  std::string prefix;
  if (Status s = ReadBytes(j, where, "prefix", false, &prefix, &has_prefix); !s.ok()) return s;
  if (has_key == has_prefix) {
    return Bad(where, has_key ? "has both key and prefix (give one)" : "has neither key nor prefix (give one)");
  }
  op->kind = has_key ? one : many;
  if (has_prefix) op->key = std::move(prefix);
  return Status::Ok();
}

Status ReadOp(const json& j, const std::string& where, TxnOp* op) {
  if (!j.is_object()) return Bad(where, "not an object ({\"put\":{...}}, {\"delete\":{...}} or {\"get\":{...}})");
  if (Status s = OnlyFields(j, where, {"put", "delete", "get"}); !s.ok()) return s;
  if (j.size() != 1) {
    return Bad(where, j.empty() ? "is empty (an op is one of put, delete, get)"
                                : "has more than one of put, delete, get (an op is one of them: make two ops)");
  }
  const std::string& kind = j.begin().key();
  const json& body = j.begin().value();
  const std::string place = Place(where, kind);
  if (!body.is_object()) return Bad(place, fmt::format("not an object, got {}", body.type_name()));
  if (kind == "put") {
    op->kind = TxnOp::Kind::kPut;
    if (Status s = OnlyFields(body, place, {"key", "value", "lease"}); !s.ok()) return s;
    if (Status s = ReadBytes(body, place, "key", true, &op->key); !s.ok()) return s;
    if (Status s = ReadBytes(body, place, "value", false, &op->value); !s.ok()) return s;
    const auto lease = body.find("lease");
    if (lease != body.end()) return ReadNumber(*lease, Place(place, "lease"), UINT64_MAX, &op->lease);
    return Status::Ok();
  }
  if (kind == "delete") {
    if (Status s = OnlyFields(body, place, {"key", "prefix"}); !s.ok()) return s;
    return ReadKeyOrPrefix(body, place, TxnOp::Kind::kDelete, TxnOp::Kind::kDeletePrefix, op);
  }
  if (Status s = OnlyFields(body, place, {"key", "prefix", "limit"}); !s.ok()) return s;
  if (Status s = ReadKeyOrPrefix(body, place, TxnOp::Kind::kGet, TxnOp::Kind::kGetPrefix, op); !s.ok()) return s;
  const auto limit = body.find("limit");
  if (limit == body.end()) return Status::Ok();
  if (op->kind != TxnOp::Kind::kGetPrefix) return Bad(Place(place, "limit"), "only with prefix");
  uint64_t n = 0;
  if (Status s = ReadNumber(*limit, Place(place, "limit"), core::kMaxTxnGetKeys, &n); !s.ok()) return s;
  op->limit = static_cast<size_t>(n);
  return Status::Ok();
}

Status ReadBranch(const json& body, const char* name, std::vector<TxnOp>* ops) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return Bad(name, fmt::format("not an array of ops, got {}", it->type_name()));
  ops->resize(it->size());
  for (size_t i = 0; i < it->size(); ++i) {
    if (Status s = ReadOp((*it)[i], fmt::format("{}[{}]", name, i), &(*ops)[i]); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ReadCheckedBody(std::string_view text, core::TxnRequest* txn) {
  if (text.empty()) {
    return Status::InvalidArgument(
        "the body is empty: send the transaction as JSON, {\"compare\":[...],\"success\":[...],\"failure\":[...]}");
  }
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(fmt::format("the body is not JSON: {}", e.what()));
  }
  if (!body.is_object()) {
    return Status::InvalidArgument(fmt::format(
        "the body is not a JSON object ({{\"compare\":[...],\"success\":[...],\"failure\":[...]}}), got {}",
        body.type_name()));
  }
  if (Status s = OnlyFields(body, "", {"compare", "success", "failure"}); !s.ok()) return s;
  if (const auto it = body.find("compare"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return Bad("compare", fmt::format("not an array of compares, got {}", it->type_name()));
    txn->compare.resize(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
      if (Status s = ReadCompare((*it)[i], fmt::format("compare[{}]", i), &txn->compare[i]); !s.ok()) return s;
    }
  }
  if (Status s = ReadBranch(body, "success", &txn->success); !s.ok()) return s;
  return ReadBranch(body, "failure", &txn->failure);
}


}  // namespace

core::Status ReadTxnBody(std::string_view body, size_t max_ops, core::TxnRequest* txn) {
  if (txn_json::ReadPlain(body, max_ops, txn)) return Status::Ok();
  *txn = {};
  return txn_json::ReadChecked(body, txn);
}

namespace txn_json {

bool ReadPlain(std::string_view body, size_t max_ops, core::TxnRequest* txn) {
  return PlainReader(body, max_ops).Read(txn);
}

core::Status ReadChecked(std::string_view body, core::TxnRequest* txn) { return ReadCheckedBody(body, txn); }

}  // namespace txn_json
}  // namespace kvctl::server
