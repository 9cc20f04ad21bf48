// POST /v1/txn (SPEC §6): the JSON body read into a core::TxnRequest (by
// txn_json.h), the caller's grants judged for every key it names, the
// store's TxnResult written back as JSON. What a transaction means is the
// store's (lib/core/txn.h).
//
// A choice where the SPEC is silent (docs/http-api.md, "Transactions"):
// - Grants are judged for the compares and both branches, whichever runs
//   (as etcd does): which branch runs must not decide whether a caller is
//   refused. A prefix op needs one grant that covers the whole prefix.
#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/core/utf8.h"
#include "lib/server/api.h"
#include "lib/server/api_internal.h"
#include "lib/server/txn_json.h"

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

using core::Status;
using core::TxnOp;

std::string_view OpField(TxnOp::Kind kind) {
  switch (kind) {
    case TxnOp::Kind::kPut: return "put.key";
    case TxnOp::Kind::kDelete: return "delete.key";
    case TxnOp::Kind::kDeletePrefix: return "delete.prefix";
    case TxnOp::Kind::kGet: return "get.key";
    case TxnOp::Kind::kGetPrefix: return "get.prefix";
    // Not in this face's transactions (etcd's kv/txn makes them).
    case TxnOp::Kind::kGetRange: return "get.range";
    case TxnOp::Kind::kDeleteRange: return "delete.range";
    case TxnOp::Kind::kTxn: return "txn";
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
    case TxnOp::Kind::kDeleteRange:
      out->append("{\"delete\":{\"deleted\":").append(std::to_string(r.deleted)).append("}}");
      return;
    case TxnOp::Kind::kGet:
    case TxnOp::Kind::kGetPrefix:
    case TxnOp::Kind::kGetRange:
      out->append("{\"get\":{\"items\":[");
      for (size_t i = 0; i < r.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        const core::TxnOpResult::Item& item = r.items[i];
        api::AppendListItem(item.key, &item.value, item.revision, item.meta, out);
      }
      out->append(r.more ? "],\"more\":true}}" : "],\"more\":false}}");
      return;
    case TxnOp::Kind::kTxn:  // not in this face's transactions
      out->append("{}");
      return;
  }
}

}  // namespace

std::optional<HttpResponse> KvApi::AuthorizeTxn(const Principal* caller, const core::TxnRequest& txn) {
  if (caller == nullptr) return std::nullopt;
  auto refuse = [&](Op op, const std::string& key, const std::string& where, bool prefix) {
    admission_.CountForbidden();
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
  Status s = ReadTxnBody(req.body, options_.max_txn_ops, txn);
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
