// etcd's kv/txn over KvStore::Txn: etcd's compares and requests become
// kvctl's (txn.h), one etcd request as one or two kvctl ops (a get before
// a write for prev_kv), a request_txn as a nested kvctl transaction, and
// the results are put back in etcd's shape. What a txn means (the compares
// over ranges, the path through nested txns, keys written twice,
// ignore_value and ignore_lease) is the core's; this file only translates.
#include <algorithm>
#include <future>

#include <fmt/format.h>

#include "lib/core/txn.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;

namespace {

const std::vector<std::string_view> kTargets = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
const std::vector<std::string_view> kResults = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};

// One etcd request of a branch and where its results are.
struct Planned {
  enum class Kind { kPut, kRange, kDelete, kTxn } kind = Kind::kPut;
  bool prev_kv = false;     // put, delete: a get ran first
  etcd::RangeShape shape;   // range
  size_t ops = 1;           // kvctl ops it became
  std::vector<Planned> success, failure;  // txn: its branches' requests
};

struct Access {
  Op op;
  std::string key, range_end;
};

// etcd's range end as the core's: "" (one key) stays, "\0" (from the key
// on) becomes "" on a range.
std::string CoreRangeEnd(const std::string& range_end) {
  return etcd::IsFromKeyOn(range_end) ? std::string() : range_end;
}

std::optional<Error> ReadCompare(const nlohmann::json& c, core::TxnCompare* out, std::vector<Access>* access) {
  std::string key, range_end, value;
  int target = 0, result = 0;
  int64_t version = 0, create = 0, mod = 0, lease = 0;
  for (auto e : {etcd::ReadBytes(c, "key", &key), etcd::ReadBytes(c, "range_end", &range_end),
                 etcd::ReadEnum(c, "target", "etcdserverpb.Compare_CompareTarget", kTargets, &target),
                 etcd::ReadEnum(c, "result", "etcdserverpb.Compare_CompareResult", kResults, &result),
                 etcd::ReadBytes(c, "value", &value), etcd::ReadInt(c, "version", &version),
                 etcd::ReadInt(c, "create_revision", &create), etcd::ReadInt(c, "mod_revision", &mod),
                 etcd::ReadInt(c, "lease", &lease)}) {
    if (e) return e;
  }
  if (key.empty()) return etcd::KeyNotProvided();
  out->key = key;
  if (!range_end.empty()) out->range_end = CoreRangeEnd(range_end);
  using T = core::TxnCompare::Target;
  using O = core::TxnCompare::Op;
  static constexpr T kTargetOf[] = {T::kVersion, T::kCreateRevision, T::kRevision, T::kValue, T::kLease};
  static constexpr O kOpOf[] = {O::kEqual, O::kGreater, O::kLess, O::kNotEqual};
  if (target < 0 || target > 4) return Error{etcd::kInvalidArgument, "etcdserver: unknown compare target"};
  if (result < 0 || result > 3) return Error{etcd::kInvalidArgument, "etcdserver: unknown compare result"};
  out->target = kTargetOf[target];
  out->op = kOpOf[result];
  const int64_t number = target == 0 ? version : target == 1 ? create : target == 2 ? mod : lease;
  out->number = static_cast<uint64_t>(std::max<int64_t>(0, number));
  out->value = value;
  access->push_back({Op::kRead, key, range_end});
  return std::nullopt;
}

// A kvctl op over etcd's [key, range_end): the key alone, or a range.
core::TxnOp RangeOp(core::TxnOp::Kind one, core::TxnOp::Kind range, const std::string& key,
                    const std::string& range_end) {
  core::TxnOp op = etcd::TxnOpOf(range_end.empty() ? one : range, key);
  if (!range_end.empty()) op.range_end = CoreRangeEnd(range_end);
  return op;
}

std::optional<Error> ReadRequest(const nlohmann::json& body, core::TxnRequest* txn, std::vector<Planned>* success,
                                 std::vector<Planned>* failure, std::vector<Access>* access, size_t depth);

std::optional<Error> ReadOp(const nlohmann::json& op, std::vector<core::TxnOp>* ops, std::vector<Planned>* plan,
                            std::vector<Access>* access, size_t depth) {
  if (!op.is_object()) return Error{etcd::kInvalidArgument, "json: a request op must be an object"};
  using K = core::TxnOp::Kind;
  Planned p;
  if (auto it = op.find("request_put"); it != op.end() && it->is_object()) {
    std::string key, value;
    int64_t lease = 0;
    bool ignore_value = false, ignore_lease = false;
    for (auto e : {etcd::ReadBytes(*it, "key", &key), etcd::ReadBytes(*it, "value", &value),
                   etcd::ReadInt(*it, "lease", &lease), etcd::ReadBool(*it, "prev_kv", &p.prev_kv),
                   etcd::ReadBool(*it, "ignore_value", &ignore_value),
                   etcd::ReadBool(*it, "ignore_lease", &ignore_lease)}) {
      if (e) return e;
    }
    if (key.empty()) return etcd::KeyNotProvided();
    if (ignore_value && !value.empty()) return Error{etcd::kInvalidArgument, "etcdserver: value is provided"};
    if (ignore_lease && lease != 0) return Error{etcd::kInvalidArgument, "etcdserver: lease is provided"};
    if (lease < 0) return etcd::LeaseNotFound();
    p.kind = Planned::Kind::kPut;
    if (p.prev_kv) ops->push_back(etcd::TxnOpOf(K::kGet, key));
    core::TxnOp put = etcd::TxnOpOf(K::kPut, key, value, static_cast<uint64_t>(lease));
    put.keep_value = ignore_value;
    put.keep_lease = ignore_lease;
    ops->push_back(std::move(put));
    p.ops = p.prev_kv ? 2 : 1;
    access->push_back({Op::kWrite, key, ""});
  } else if (auto range = op.find("request_range"); range != op.end() && range->is_object()) {
    std::string key, range_end;
    int64_t revision = 0;
    for (auto e : {etcd::ReadBytes(*range, "key", &key), etcd::ReadBytes(*range, "range_end", &range_end),
                   etcd::ReadInt(*range, "revision", &revision), etcd::ReadRangeShape(*range, &p.shape)}) {
      if (e) return e;
    }
    if (key.empty()) return etcd::KeyNotProvided();
    if (revision != 0) return etcd::Unimplemented("a range at a given revision inside a txn");
    p.kind = Planned::Kind::kRange;
    ops->push_back(RangeOp(K::kGet, K::kGetRange, key, range_end));
    access->push_back({Op::kRead, key, range_end});
  } else if (auto del = op.find("request_delete_range"); del != op.end() && del->is_object()) {
    std::string key, range_end;
    for (auto e : {etcd::ReadBytes(*del, "key", &key), etcd::ReadBytes(*del, "range_end", &range_end),
                   etcd::ReadBool(*del, "prev_kv", &p.prev_kv)}) {
      if (e) return e;
    }
    if (key.empty()) return etcd::KeyNotProvided();
    p.kind = Planned::Kind::kDelete;
    if (p.prev_kv) ops->push_back(RangeOp(K::kGet, K::kGetRange, key, range_end));
    ops->push_back(RangeOp(K::kDelete, K::kDeleteRange, key, range_end));
    p.ops = p.prev_kv ? 2 : 1;
    access->push_back({Op::kWrite, key, range_end});
  } else if (auto nested = op.find("request_txn"); nested != op.end() && nested->is_object()) {
    // The depth is bounded here too: the walk below is recursive.
    if (depth >= core::kMaxTxnDepth) {
      return Error{etcd::kInvalidArgument, fmt::format("kvctl: txns nest more than {} deep, the most kvctl takes: "
                                                       "flatten the txn",
                                                       core::kMaxTxnDepth)};
    }
    auto inner = std::make_shared<core::TxnRequest>();
    p.kind = Planned::Kind::kTxn;
    if (auto e = ReadRequest(*nested, inner.get(), &p.success, &p.failure, access, depth + 1)) return e;
    core::TxnOp txn;
    txn.kind = K::kTxn;
    txn.txn = std::move(inner);
    ops->push_back(std::move(txn));
  } else {
    return Error{etcd::kInvalidArgument, "etcdserver: key not found"};
  }
  plan->push_back(std::move(p));
  return std::nullopt;
}

std::optional<Error> ReadBranch(const nlohmann::json& body, const char* name, std::vector<core::TxnOp>* ops,
                                std::vector<Planned>* plan, std::vector<Access>* access, size_t depth) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) return Error{etcd::kInvalidArgument, fmt::format("json: \"{}\" must be an array", name)};
  for (const auto& op : *it) {
    if (auto e = ReadOp(op, ops, plan, access, depth)) return e;
  }
  return std::nullopt;
}

std::optional<Error> ReadRequest(const nlohmann::json& body, core::TxnRequest* txn, std::vector<Planned>* success,
                                 std::vector<Planned>* failure, std::vector<Access>* access, size_t depth) {
  if (auto it = body.find("compare"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return Error{etcd::kInvalidArgument, "json: \"compare\" must be an array"};
    for (const auto& c : *it) {
      if (!c.is_object()) return Error{etcd::kInvalidArgument, "json: a compare must be an object"};
      txn->compare.emplace_back();
      if (auto e = ReadCompare(c, &txn->compare.back(), access)) return e;
    }
  }
  if (auto e = ReadBranch(body, "success", &txn->success, success, access, depth)) return e;
  return ReadBranch(body, "failure", &txn->failure, failure, access, depth);
}

std::vector<core::ListItem> ListItems(std::vector<core::TxnOpResult::Item>& items) {
  std::vector<core::ListItem> out;
  out.reserve(items.size());
  for (auto& it : items) out.push_back({std::move(it.key), std::move(it.value), it.revision, it.meta});
  return out;
}

// The revision each response's header reports, as etcd's write txn does:
// before its first write the revision the txn started from, from then on
// the txn's own.
struct Revisions {
  uint64_t before = 0, after = 0;
  bool wrote = false;
  Json Header(bool writes) {
    wrote = wrote || writes;
    Json header;
    header["revision"] = std::to_string(wrote ? after : before);
    return header;
  }
};

Json Responses(const std::vector<Planned>& ran, std::vector<core::TxnOpResult>& results, Revisions& revisions) {
  Json responses = Json::array();
  size_t next = 0;
  for (const Planned& p : ran) {
    switch (p.kind) {
      case Planned::Kind::kPut: {
        Json response;
        response["header"] = revisions.Header(true);
        if (p.prev_kv) {
          const auto& got = results[next].items;
          if (!got.empty()) response["prev_kv"] = etcd::KeyValue(got[0].key, got[0].value, got[0].revision, got[0].meta);
        }
        responses.push_back(Json{{"response_put", std::move(response)}});
        break;
      }
      case Planned::Kind::kRange: {
        Json response;
        response["header"] = revisions.Header(false);
        etcd::RangeReply range;
        etcd::ShapeRange(p.shape, ListItems(results[next].items), results[next].more, &range);
        etcd::AddRangeReply(range, p.shape.keys_only, &response);
        responses.push_back(Json{{"response_range", std::move(response)}});
        break;
      }
      case Planned::Kind::kDelete: {
        const core::TxnOpResult& del = results[next + p.ops - 1];
        Json response;
        response["header"] = revisions.Header(del.deleted != 0);
        if (del.deleted != 0) response["deleted"] = std::to_string(del.deleted);
        if (p.prev_kv && !results[next].items.empty()) {
          Json kvs = Json::array();
          for (const auto& it : results[next].items) kvs.push_back(etcd::KeyValue(it.key, it.value, it.revision, it.meta));
          response["prev_kvs"] = std::move(kvs);
        }
        responses.push_back(Json{{"response_delete_range", std::move(response)}});
        break;
      }
      case Planned::Kind::kTxn: {
        core::TxnOpResult& nested = results[next];
        Json response;
        response["header"] = Json::object();  // etcd fills only the outer txn's header
        if (nested.succeeded) response["succeeded"] = true;
        Json inner = Responses(nested.succeeded ? p.success : p.failure, nested.results, revisions);
        if (!inner.empty()) response["responses"] = std::move(inner);
        responses.push_back(Json{{"response_txn", std::move(response)}});
        break;
      }
    }
    next += p.ops;
  }
  return responses;
}

// A store's refusal in etcd's words.
Error TxnError(const core::Status& s) {
  switch (s.code()) {
    case core::Code::kNotFound: return etcd::LeaseNotFound();
    // ignore_value / ignore_lease on a key that does not exist
    case core::Code::kFailedPrecondition: return {etcd::kInvalidArgument, "etcdserver: key not found"};
    default: return etcd::FromStatus(s);
  }
}

}  // namespace

void EtcdApi::StartTxn(Call& call, std::function<void(HttpResponse)> done) {
  core::TxnRequest txn;
  std::vector<Planned> success, failure;
  std::vector<Access> access;
  if (auto e = ReadRequest(call.body, &txn, &success, &failure, &access, 1)) return done(ErrorAnswer(*e));
  for (const Access& a : access) {
    if (!etcd::RangePermitted(call.caller, a.op, a.key, a.range_end)) {
      admission_.CountForbidden();
      return done(ErrorAnswer(etcd::PermissionDenied()));
    }
  }
  if (core::Status s = core::ValidateTxn(txn, options_.max_txn_ops, options_.max_key_bytes, options_.max_value_bytes);
      !s.ok()) {
    // Keys written twice on a path are what etcd names a duplicate key.
    return done(ErrorAnswer({etcd::kInvalidArgument,
                             s.message().find("writes each key once") != std::string::npos
                                 ? std::string("etcdserver: duplicate key given in txn request")
                                 : s.message()}));
  }
  store_.TxnAsync(txn, [this, success = std::move(success), failure = std::move(failure),
                        done = std::move(done)](core::Result<core::TxnResult> result) {
    if (!result) return done(ErrorAnswer(TxnError(result.error())));
    HttpResponse answer;
    try {  // on the committer thread: nothing may escape
      Revisions revisions{result->changed ? result->revision - 1 : result->revision, result->revision};
      Json responses = Responses(result->succeeded ? success : failure, result->results, revisions);
      Json body;
      body["header"] = etcd::Header(options_, result->revision);
      if (result->succeeded) body["succeeded"] = true;
      if (!responses.empty()) body["responses"] = std::move(responses);
      answer = etcd::Answer(body);
    } catch (const std::exception& e) {
      answer = ErrorAnswer({etcd::kInternal, fmt::format("internal error: {}", e.what())});
    }
    done(std::move(answer));
  });
}

HttpResponse EtcdApi::Txn(Call& call) {
  std::promise<HttpResponse> answered;
  StartTxn(call, [&answered](HttpResponse res) { answered.set_value(std::move(res)); });
  return answered.get_future().get();
}

}  // namespace kvctl::server
