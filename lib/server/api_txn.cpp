// POST /v1/txn (SPEC §6): the JSON body translated into a core::TxnRequest,
// the caller's grants judged for every key it names, the store's
// TxnResult translated back. What a transaction means is the store's
// (lib/core/txn.h); this file only reads and writes JSON.
//
// Choices where the SPEC is silent (docs/http-api.md, "Transactions"):
// - The body is strict: an unknown field, a wrong type, bad base64 or an op
//   of two kinds is 400 bad_txn naming the place ("success[2].put.key: not
//   base64"), never ignored. Missing arrays are empty; a put's value is ""
//   and its lease 0 when left out (etcd's JSON leaves out empty fields).
// - A number (a compare's value for the non-value targets, a put's lease, a
//   get's limit) is a JSON number or a decimal string (etcd's JSON writes
//   64-bit numbers as strings).
// - Grants are judged for the compares and both branches, whichever runs
//   (as etcd does): which branch runs must not decide whether a caller is
//   refused. A prefix op needs one grant that covers the whole prefix.
#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/core/utf8.h"
#include "lib/server/api.h"
#include "lib/server/api_internal.h"

namespace kvctl::server {

namespace api {

std::string QuotedKey(std::string_view bytes) {
  bool printable = core::IsValidUtf8(bytes);
  for (size_t i = 0; printable && i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    // C0 controls, DEL, and C1 controls (U+0080..U+009F: 0xC2 0x80..0x9F).
    if (c < 0x20 || c == 0x7f ||
        (c == 0xc2 && i + 1 < bytes.size() && static_cast<unsigned char>(bytes[i + 1]) < 0xa0)) {
      printable = false;
    }
  }
  if (!printable) return "base64:" + core::Base64Encode(bytes);
  std::string out = "\"";
  for (char c : bytes) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace api

namespace {

using api::json;
using core::Status;
using core::TxnCompare;
using core::TxnOp;

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

Status ParseTxn(std::string_view text, core::TxnRequest* txn) {
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

std::string_view OpField(TxnOp::Kind kind) {
  switch (kind) {
    case TxnOp::Kind::kPut: return "put.key";
    case TxnOp::Kind::kDelete: return "delete.key";
    case TxnOp::Kind::kDeletePrefix: return "delete.prefix";
    case TxnOp::Kind::kGet: return "get.key";
    case TxnOp::Kind::kGetPrefix: return "get.prefix";
  }
  return "op";
}

void AppendResult(const core::TxnOpResult& r, std::string* out) {
  switch (r.kind) {
    case TxnOp::Kind::kPut:
      out->append("{\"put\":{\"revision\":").append(std::to_string(r.revision));
      out->append(",\"create_revision\":").append(std::to_string(r.meta.create_revision));
      out->append(",\"version\":").append(std::to_string(r.meta.version)).append("}}");
      return;
    case TxnOp::Kind::kDelete:
    case TxnOp::Kind::kDeletePrefix:
      out->append("{\"delete\":{\"deleted\":").append(std::to_string(r.deleted)).append("}}");
      return;
    case TxnOp::Kind::kGet:
    case TxnOp::Kind::kGetPrefix:
      out->append("{\"get\":{\"items\":[");
      for (size_t i = 0; i < r.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        const core::TxnOpResult::Item& item = r.items[i];
        api::AppendListItem(item.key, &item.value, item.revision, item.meta, out);
      }
      out->append(r.more ? "],\"more\":true}}" : "],\"more\":false}}");
      return;
  }
}

}  // namespace

std::optional<HttpResponse> KvApi::AuthorizeTxn(const Principal* caller, const core::TxnRequest& txn) {
  if (caller == nullptr) return std::nullopt;
  auto refuse = [&](Op op, const std::string& key, const std::string& where, bool prefix) {
    metrics_.CountAuthFailure(AuthFailure::kForbidden);
    return Error(403, "forbidden",
                 prefix ? fmt::format("{} may not {} every key under the prefix {} ({}): no grant of {} covers the "
                                      "whole prefix",
                                      caller->name, OpName(op), api::QuotedKey(key), where, OpName(op))
                        : fmt::format("{} may not {} the key {} ({}): no grant of {} covers it", caller->name,
                                      OpName(op), api::QuotedKey(key), where, OpName(op)));
  };
  for (size_t i = 0; i < txn.compare.size(); ++i) {
    if (!caller->Permits(Op::kRead, txn.compare[i].key)) {
      return refuse(Op::kRead, txn.compare[i].key, fmt::format("compare[{}].key", i), false);
    }
  }
  for (const auto& [name, ops] : {std::pair{"success", &txn.success}, std::pair{"failure", &txn.failure}}) {
    for (size_t i = 0; i < ops->size(); ++i) {
      const TxnOp& op = (*ops)[i];
      const bool reads = op.kind == TxnOp::Kind::kGet || op.kind == TxnOp::Kind::kGetPrefix;
      const bool prefix = op.kind == TxnOp::Kind::kGetPrefix || op.kind == TxnOp::Kind::kDeletePrefix;
      const Op needs = reads ? Op::kRead : Op::kWrite;
      // A grant covers a whole prefix exactly when it covers the prefix as a key.
      if (!caller->Permits(needs, op.key)) {
        return refuse(needs, op.key, fmt::format("{}[{}].{}", name, i, OpField(op.kind)), prefix);
      }
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> KvApi::ReadTxn(const HttpRequest& req, const Principal* caller, core::TxnRequest* txn) {
  Status s = ParseTxn(req.body, txn);
  if (s.ok()) s = core::ValidateTxn(*txn, options_.max_txn_ops, options_.max_key_bytes, options_.max_value_bytes);
  if (!s.ok()) return Error(400, "bad_txn", s.message());
  return AuthorizeTxn(caller, *txn);
}

HttpResponse KvApi::TxnAnswer(const core::Result<core::TxnResult>& result) {
  if (!result) {
    const Status& s = result.error();
    if (s.IsInvalidArgument()) return Error(400, "bad_txn", s.message());
    if (s.IsNotFound()) return Error(404, "no_such_lease", s.message());
    if (s.IsUnavailable()) return Error(503, "unavailable", s.message());
    return Error(500, "internal", s.message());
  }
  HttpResponse res;
  res.status = 200;
  res.revision = result->revision;
  res.content_type = "application/json";
  res.body.append(result->succeeded ? "{\"succeeded\":true" : "{\"succeeded\":false");
  res.body.append(",\"revision\":").append(std::to_string(result->revision)).append(",\"results\":[");
  for (size_t i = 0; i < result->results.size(); ++i) {
    if (i > 0) res.body.push_back(',');
    AppendResult(result->results[i], &res.body);
  }
  res.body.append("]}\n");
  return res;
}

HttpResponse KvApi::HandleTxn(const HttpRequest& req, const Principal* caller) {
  core::TxnRequest txn;
  if (std::optional<HttpResponse> refusal = ReadTxn(req, caller, &txn)) return std::move(*refusal);
  return TxnAnswer(store_.Txn(txn));
}

}  // namespace kvctl::server
