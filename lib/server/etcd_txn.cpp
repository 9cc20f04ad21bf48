// etcd's kv/txn in JSON: the request read into a TxnAsk, the caller's
// grants checked for every key and range it touches, the txn run
// (lib/etcd/txn_ops.h), its reply written as grpc-gateway writes it.
#include <future>

#include <fmt/format.h>

#include "lib/core/txn.h"
#include "lib/etcd/txn_ops.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;
using Kind = etcd::RequestAsk::Kind;

namespace {

const std::vector<std::string_view> kTargets = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
const std::vector<std::string_view> kResults = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

std::optional<Error> ReadCompare(const nlohmann::json& c, etcd::CompareAsk* out) {
  for (auto e : {etcd::ReadBytes(c, "key", &out->key), etcd::ReadBytes(c, "range_end", &out->range_end),
                 etcd::ReadEnum(c, "target", "etcdserverpb.Compare_CompareTarget", kTargets, &out->target),
                 etcd::ReadEnum(c, "result", "etcdserverpb.Compare_CompareResult", kResults, &out->result),
                 etcd::ReadBytes(c, "value", &out->value), etcd::ReadInt(c, "version", &out->version),
                 etcd::ReadInt(c, "create_revision", &out->create_revision),
                 etcd::ReadInt(c, "mod_revision", &out->mod_revision), etcd::ReadInt(c, "lease", &out->lease)}) {
    if (e) return e;
  }
  return std::nullopt;
}

std::optional<Error> ReadTxn(const nlohmann::json& body, etcd::TxnAsk* txn, size_t depth);

std::optional<Error> ReadOp(const nlohmann::json& op, etcd::RequestAsk* out, size_t depth) {
  if (!op.is_object()) return Error{etcd::kInvalidArgument, "json: a request op must be an object"};
  if (auto it = op.find("request_put"); it != op.end() && it->is_object()) {
    out->kind = Kind::kPut;
    etcd::PutAsk& put = out->put;
    for (auto e : {etcd::ReadBytes(*it, "key", &put.key), etcd::ReadBytes(*it, "value", &put.value),
                   etcd::ReadInt(*it, "lease", &put.lease), etcd::ReadBool(*it, "prev_kv", &put.prev_kv),
                   etcd::ReadBool(*it, "ignore_value", &put.ignore_value),
                   etcd::ReadBool(*it, "ignore_lease", &put.ignore_lease)}) {
      if (e) return e;
    }
  } else if (auto range = op.find("request_range"); range != op.end() && range->is_object()) {
    out->kind = Kind::kRange;
    etcd::RangeAsk& r = out->range;
    for (auto e : {etcd::ReadBytes(*range, "key", &r.key), etcd::ReadBytes(*range, "range_end", &r.range_end),
                   etcd::ReadInt(*range, "revision", &r.revision), etcd::ReadRangeShape(*range, &r.shape)}) {
      if (e) return e;
    }
  } else if (auto del = op.find("request_delete_range"); del != op.end() && del->is_object()) {
    out->kind = Kind::kDelete;
    etcd::DeleteAsk& d = out->del;
    for (auto e : {etcd::ReadBytes(*del, "key", &d.key), etcd::ReadBytes(*del, "range_end", &d.range_end),
                   etcd::ReadBool(*del, "prev_kv", &d.prev_kv)}) {
      if (e) return e;
    }
  } else if (auto nested = op.find("request_txn"); nested != op.end() && nested->is_object()) {
    // Bounded here too, as this reader recurses (the txn's own check
    // refuses the same depth with the same words).
    if (depth >= core::kMaxTxnDepth) {
      return Error{etcd::kInvalidArgument,
                   fmt::format("kvctl: txns nest more than {} deep, the most kvctl takes: flatten the txn",
                               core::kMaxTxnDepth)};
    }
    out->kind = Kind::kTxn;
    out->txn = std::make_shared<etcd::TxnAsk>();
    return ReadTxn(*nested, out->txn.get(), depth + 1);
  } else {
    return Error{etcd::kInvalidArgument, "etcdserver: key not found"};
  }
  return std::nullopt;
}

std::optional<Error> ReadBranch(const nlohmann::json& body, const char* name, std::vector<etcd::RequestAsk>* out,
                                size_t depth) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) return Error{etcd::kInvalidArgument, fmt::format("json: \"{}\" must be an array", name)};
  for (const auto& op : *it) {
    out->emplace_back();
    if (auto e = ReadOp(op, &out->back(), depth)) return e;
  }
  return std::nullopt;
}

std::optional<Error> ReadTxn(const nlohmann::json& body, etcd::TxnAsk* txn, size_t depth) {
  if (auto it = body.find("compare"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return Error{etcd::kInvalidArgument, "json: \"compare\" must be an array"};
    for (const auto& c : *it) {
      if (!c.is_object()) return Error{etcd::kInvalidArgument, "json: a compare must be an object"};
      txn->compare.emplace_back();
      if (auto e = ReadCompare(c, &txn->compare.back())) return e;
    }
  }
  if (auto e = ReadBranch(body, "success", &txn->success, depth)) return e;
  return ReadBranch(body, "failure", &txn->failure, depth);
}

Json KeyValues(const std::vector<core::ListItem>& items) {
  Json kvs = Json::array();
  for (const auto& it : items) kvs.push_back(etcd::KeyValue(it.key, it.value, it.revision, it.meta));
  return kvs;
}

Json Responses(const std::vector<etcd::ResponseReply>& replies, const std::vector<etcd::RequestAsk>& asked) {
  Json responses = Json::array();
  for (size_t i = 0; i < replies.size(); ++i) {
    const etcd::ResponseReply& r = replies[i];
    Json response;
    response["header"] = Json::object();  // etcd fills only the outer txn's header with ids
    if (r.kind != Kind::kTxn) response["header"]["revision"] = std::to_string(r.revision);
    switch (r.kind) {
      case Kind::kPut:
        if (r.put.prev_kv) {
          const core::ListItem& prev = *r.put.prev_kv;
          response["prev_kv"] = etcd::KeyValue(prev.key, prev.value, prev.revision, prev.meta);
        }
        responses.push_back(Json{{"response_put", std::move(response)}});
        break;
      case Kind::kRange:
        etcd::AddRangeReply(r.range, asked[i].range.shape.keys_only, &response);
        responses.push_back(Json{{"response_range", std::move(response)}});
        break;
      case Kind::kDelete:
        if (r.del.deleted != 0) response["deleted"] = std::to_string(r.del.deleted);
        if (!r.del.prev_kvs.empty()) response["prev_kvs"] = KeyValues(r.del.prev_kvs);
        responses.push_back(Json{{"response_delete_range", std::move(response)}});
        break;
      case Kind::kTxn: {
        const etcd::TxnAsk& inner_ask = *asked[i].txn;
        if (r.txn->succeeded) response["succeeded"] = true;
        Json inner = Responses(r.txn->responses, r.txn->succeeded ? inner_ask.success : inner_ask.failure);
        if (!inner.empty()) response["responses"] = std::move(inner);
        responses.push_back(Json{{"response_txn", std::move(response)}});
        break;
      }
    }
  }
  return responses;
}

}  // namespace

std::optional<HttpResponse> EtcdApi::ReadTxnAsk(const Call& call, etcd::TxnAsk* ask) {
  if (auto e = ReadTxn(call.body, ask, 1)) return ErrorAnswer(*e);
  if (!etcd::TxnPermitted(call.caller, *ask)) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  return std::nullopt;
}

void EtcdApi::StartTxn(std::shared_ptr<const etcd::TxnAsk> ask, std::function<void(HttpResponse)> done) {
  etcd::Txn(store_, options_, *ask,
            [this, ask, done = std::move(done)](std::optional<Error> error, etcd::TxnReply reply) {
              if (error) return done(ErrorAnswer(*error));
              HttpResponse answer;
              try {  // on the committer thread: nothing may escape
                Json body;
                body["header"] = etcd::Header(options_, reply.revision);
                if (reply.succeeded) body["succeeded"] = true;
                Json responses = Responses(reply.responses, reply.succeeded ? ask->success : ask->failure);
                if (!responses.empty()) body["responses"] = std::move(responses);
                answer = etcd::Answer(body);
              } catch (const std::exception& e) {
                answer = ErrorAnswer({etcd::kInternal, fmt::format("internal error: {}", e.what())});
              }
              done(std::move(answer));
            });
}

HttpResponse EtcdApi::Txn(Call& call) {
  auto ask = std::make_shared<etcd::TxnAsk>();
  if (auto refused = ReadTxnAsk(call, ask.get())) return std::move(*refused);
  std::promise<HttpResponse> answered;
  StartTxn(std::move(ask), [&answered](HttpResponse res) { answered.set_value(std::move(res)); });
  return answered.get_future().get();
}

}  // namespace kvctl::server
