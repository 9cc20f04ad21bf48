// etcd's kv/txn over KvStore::Txn: etcd's compares and requests become
// kvctl's (txn.h), one etcd request as one or two kvctl ops (a get before
// a write for prev_kv), and the results are put back in etcd's shape.
#include <algorithm>

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
const std::vector<std::string_view> kSortOrders = {"NONE", "ASCEND", "DESCEND"};
const std::vector<std::string_view> kSortTargets = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};

// One etcd request of a branch and where its results are.
struct Planned {
  enum class Kind { kPut, kRange, kDelete } kind = Kind::kPut;
  bool prev_kv = false;     // put, delete: a get ran first
  bool keys_only = false;   // range
  bool count_only = false;  // range
  int64_t limit = 0;        // range
  int sort_order = 0, sort_target = 0;
  int64_t min_mod = 0, max_mod = 0, min_create = 0, max_create = 0;
  size_t ops = 1;           // kvctl ops it became
};

struct Access {
  Op op;
  std::string key, range_end;
};

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
  if (!range_end.empty()) return etcd::Unimplemented("a compare over a range (range_end)");
  out->key = key;
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
  access->push_back({Op::kRead, key, ""});
  return std::nullopt;
}

std::optional<Error> ReadOp(const nlohmann::json& op, std::vector<core::TxnOp>* ops, std::vector<Planned>* plan,
                            std::vector<Access>* access) {
  if (!op.is_object()) return Error{etcd::kInvalidArgument, "json: a request op must be an object"};
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
    if (ignore_value || ignore_lease) return etcd::Unimplemented("ignore_value and ignore_lease inside a txn");
    if (lease < 0) return etcd::LeaseNotFound();
    p.kind = Planned::Kind::kPut;
    if (p.prev_kv) ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kGet, key));
    ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kPut, key, value, static_cast<uint64_t>(lease)));
    p.ops = p.prev_kv ? 2 : 1;
    access->push_back({Op::kWrite, key, ""});
  } else if (auto range = op.find("request_range"); range != op.end() && range->is_object()) {
    std::string key, range_end;
    int64_t revision = 0;
    for (auto e : {etcd::ReadBytes(*range, "key", &key), etcd::ReadBytes(*range, "range_end", &range_end),
                   etcd::ReadInt(*range, "limit", &p.limit), etcd::ReadInt(*range, "revision", &revision),
                   etcd::ReadEnum(*range, "sort_order", "etcdserverpb.RangeRequest_SortOrder", kSortOrders,
                                  &p.sort_order),
                   etcd::ReadEnum(*range, "sort_target", "etcdserverpb.RangeRequest_SortTarget", kSortTargets,
                                  &p.sort_target),
                   etcd::ReadBool(*range, "keys_only", &p.keys_only), etcd::ReadBool(*range, "count_only", &p.count_only),
                   etcd::ReadInt(*range, "min_mod_revision", &p.min_mod), etcd::ReadInt(*range, "max_mod_revision", &p.max_mod),
                   etcd::ReadInt(*range, "min_create_revision", &p.min_create),
                   etcd::ReadInt(*range, "max_create_revision", &p.max_create)}) {
      if (e) return e;
    }
    if (key.empty()) return etcd::KeyNotProvided();
    if (revision != 0) return etcd::Unimplemented("a range at a given revision inside a txn");
    p.kind = Planned::Kind::kRange;
    if (range_end.empty()) {
      ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kGet, key));
    } else if (auto prefix = etcd::AsPrefix(key, range_end)) {
      ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kGetPrefix, *prefix));
    } else {
      return etcd::Unimplemented("a range inside a txn that is not one key or one prefix");
    }
    access->push_back({Op::kRead, key, range_end});
  } else if (auto del = op.find("request_delete_range"); del != op.end() && del->is_object()) {
    std::string key, range_end;
    for (auto e : {etcd::ReadBytes(*del, "key", &key), etcd::ReadBytes(*del, "range_end", &range_end),
                   etcd::ReadBool(*del, "prev_kv", &p.prev_kv)}) {
      if (e) return e;
    }
    if (key.empty()) return etcd::KeyNotProvided();
    p.kind = Planned::Kind::kDelete;
    if (range_end.empty()) {
      if (p.prev_kv) ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kGet, key));
      ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kDelete, key));
    } else if (auto prefix = etcd::AsPrefix(key, range_end)) {
      if (p.prev_kv) ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kGetPrefix, *prefix));
      ops->push_back(etcd::TxnOpOf(core::TxnOp::Kind::kDeletePrefix, *prefix));
    } else {
      return etcd::Unimplemented("a delete inside a txn that is not one key or one prefix");
    }
    p.ops = p.prev_kv ? 2 : 1;
    access->push_back({Op::kWrite, key, range_end});
  } else if (op.contains("request_txn")) {
    return etcd::Unimplemented("a txn nested in a txn");
  } else {
    return Error{etcd::kInvalidArgument, "etcdserver: key not found"};
  }
  plan->push_back(p);
  return std::nullopt;
}

std::optional<Error> ReadBranch(const nlohmann::json& body, const char* name, std::vector<core::TxnOp>* ops,
                                std::vector<Planned>* plan, std::vector<Access>* access) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_array()) return Error{etcd::kInvalidArgument, fmt::format("json: \"{}\" must be an array", name)};
  for (const auto& op : *it) {
    if (auto e = ReadOp(op, ops, plan, access)) return e;
  }
  return std::nullopt;
}

Json KeyValues(const std::vector<core::TxnOpResult::Item>& items, bool keys_only) {
  Json kvs = Json::array();
  for (const auto& it : items) kvs.push_back(etcd::KeyValue(it.key, it.value, it.revision, it.meta, keys_only));
  return kvs;
}

Json RangeResponse(const Planned& p, core::TxnOpResult& r) {
  auto& items = r.items;
  const size_t count = items.size();
  auto outside = [&](const core::TxnOpResult::Item& it) {
    const auto mod = static_cast<int64_t>(it.revision);
    const auto create = static_cast<int64_t>(it.meta.create_revision);
    return (p.min_mod > 0 && mod < p.min_mod) || (p.max_mod > 0 && mod > p.max_mod) ||
           (p.min_create > 0 && create < p.min_create) || (p.max_create > 0 && create > p.max_create);
  };
  items.erase(std::remove_if(items.begin(), items.end(), outside), items.end());
  int order = p.sort_order;
  if (order == 0 && p.sort_target != 0) order = 1;
  if (order == 1 || order == 2) {
    auto less = [&](const auto& a, const auto& b) {
      switch (p.sort_target) {
        case 1: return a.meta.version < b.meta.version;
        case 2: return a.meta.create_revision < b.meta.create_revision;
        case 3: return a.revision < b.revision;
        case 4: return a.value < b.value;
        default: return a.key < b.key;
      }
    };
    if (order == 1) {
      std::stable_sort(items.begin(), items.end(), less);
    } else {
      std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) { return less(b, a); });
    }
  }
  bool more = r.more;
  if (p.limit > 0 && items.size() > static_cast<size_t>(p.limit)) {
    items.resize(static_cast<size_t>(p.limit));
    more = true;
  }
  Json body;
  if (!p.count_only && !items.empty()) body["kvs"] = KeyValues(items, p.keys_only);
  if (more) body["more"] = true;
  if (count != 0) body["count"] = std::to_string(count);
  return body;
}

}  // namespace

HttpResponse EtcdApi::Txn(Call& call) {
  core::TxnRequest txn;
  std::vector<Planned> success, failure;
  std::vector<Access> access;
  if (auto it = call.body.find("compare"); it != call.body.end() && !it->is_null()) {
    if (!it->is_array()) return ErrorAnswer({etcd::kInvalidArgument, "json: \"compare\" must be an array"});
    for (const auto& c : *it) {
      if (!c.is_object()) return ErrorAnswer({etcd::kInvalidArgument, "json: a compare must be an object"});
      txn.compare.emplace_back();
      if (auto e = ReadCompare(c, &txn.compare.back(), &access)) return ErrorAnswer(*e);
    }
  }
  if (auto e = ReadBranch(call.body, "success", &txn.success, &success, &access)) return ErrorAnswer(*e);
  if (auto e = ReadBranch(call.body, "failure", &txn.failure, &failure, &access)) return ErrorAnswer(*e);
  for (const Access& a : access) {
    if (!etcd::RangePermitted(call.caller, a.op, a.key, a.range_end)) {
      admission_.CountForbidden();
      return ErrorAnswer(etcd::PermissionDenied());
    }
  }
  if (core::Status s = core::ValidateTxn(txn, options_.max_txn_ops, options_.max_key_bytes, options_.max_value_bytes);
      !s.ok()) {
    // Keys written twice in a branch are what etcd names a duplicate key.
    return ErrorAnswer({etcd::kInvalidArgument, s.message().find("writes each key once") != std::string::npos
                                                    ? std::string("etcdserver: duplicate key given in txn request")
                                                    : s.message()});
  }
  auto result = store_.Txn(txn);
  if (!result) {
    return ErrorAnswer(result.error().code() == core::Code::kNotFound ? etcd::LeaseNotFound()
                                                                       : etcd::FromStatus(result.error()));
  }
  const std::vector<Planned>& ran = result->succeeded ? success : failure;
  Json responses = Json::array();
  size_t next = 0;
  Json inner_header;
  inner_header["revision"] = std::to_string(result->revision);
  for (const Planned& p : ran) {
    Json response;
    response["header"] = inner_header;
    switch (p.kind) {
      case Planned::Kind::kPut: {
        if (p.prev_kv) {
          const auto& got = result->results[next].items;
          if (!got.empty()) response["prev_kv"] = etcd::KeyValue(got[0].key, got[0].value, got[0].revision, got[0].meta);
        }
        responses.push_back(Json{{"response_put", std::move(response)}});
        break;
      }
      case Planned::Kind::kRange: {
        Json range = RangeResponse(p, result->results[next]);
        for (auto& [k, v] : range.items()) response[k] = v;
        responses.push_back(Json{{"response_range", std::move(response)}});
        break;
      }
      case Planned::Kind::kDelete: {
        const core::TxnOpResult& del = result->results[next + p.ops - 1];
        if (del.deleted != 0) response["deleted"] = std::to_string(del.deleted);
        if (p.prev_kv && !result->results[next].items.empty()) {
          response["prev_kvs"] = KeyValues(result->results[next].items, false);
        }
        responses.push_back(Json{{"response_delete_range", std::move(response)}});
        break;
      }
    }
    next += p.ops;
  }
  Json body;
  body["header"] = etcd::Header(options_, result->revision);
  if (result->succeeded) body["succeeded"] = true;
  if (!responses.empty()) body["responses"] = std::move(responses);
  return etcd::Answer(body);
}

}  // namespace kvctl::server
