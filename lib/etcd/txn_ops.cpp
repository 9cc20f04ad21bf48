#include "lib/etcd/txn_ops.h"

#include <algorithm>

#include <fmt/format.h>

#include "lib/core/txn.h"

namespace kvctl::server::etcd {

namespace {

using K = core::TxnOp::Kind;
using Kind = RequestAsk::Kind;

// One etcd request of a branch and where its results are.
struct Planned {
  Kind kind = Kind::kPut;
  bool prev_kv = false;                   // put, delete: a get ran first
  RangeShape shape;                       // range
  size_t ops = 1;                         // kvctl ops it became
  std::vector<Planned> success, failure;  // txn: its branches' requests
  // A range at a past revision: no kvctl op. What it held then cannot
  // change, so it is read before the txn is queued (ReadPast) and its
  // answer kept here.
  std::optional<RangeAsk> past;
  RangeReply past_reply;
};

core::TxnOp OpOf(K kind, std::string key, std::string value = {}, uint64_t lease = 0) {
  core::TxnOp op;
  op.kind = kind;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

// etcd's range end as the core's: "" (one key) stays, "\0" (from the key
// on) becomes "" on a range.
std::string CoreRangeEnd(const std::string& range_end) { return IsFromKeyOn(range_end) ? std::string() : range_end; }

// A kvctl op over etcd's [key, range_end): the key alone, or a range.
core::TxnOp RangeOp(K one, K range, const std::string& key, const std::string& range_end) {
  core::TxnOp op = OpOf(range_end.empty() ? one : range, key);
  if (!range_end.empty()) op.range_end = CoreRangeEnd(range_end);
  return op;
}

std::optional<Error> PlanCompare(const CompareAsk& c, core::TxnCompare* out) {
  if (c.key.empty()) return KeyNotProvided();
  using T = core::TxnCompare::Target;
  using O = core::TxnCompare::Op;
  static constexpr T kTargetOf[] = {T::kVersion, T::kCreateRevision, T::kRevision, T::kValue, T::kLease};
  static constexpr O kOpOf[] = {O::kEqual, O::kGreater, O::kLess, O::kNotEqual};
  if (c.target < 0 || c.target > 4) return Error{kInvalidArgument, "etcdserver: unknown compare target"};
  if (c.result < 0 || c.result > 3) return Error{kInvalidArgument, "etcdserver: unknown compare result"};
  out->key = c.key;
  if (!c.range_end.empty()) out->range_end = CoreRangeEnd(c.range_end);
  out->target = kTargetOf[c.target];
  out->op = kOpOf[c.result];
  const int64_t number = c.target == 0   ? c.version
                         : c.target == 1 ? c.create_revision
                         : c.target == 2 ? c.mod_revision
                                         : c.lease;
  out->number = static_cast<uint64_t>(std::max<int64_t>(0, number));
  out->value = c.value;
  return std::nullopt;
}

std::optional<Error> PlanTxn(const TxnAsk& ask, core::TxnRequest* txn, std::vector<Planned>* success,
                             std::vector<Planned>* failure, size_t depth);

std::optional<Error> PlanRequest(const RequestAsk& r, std::vector<core::TxnOp>* ops, std::vector<Planned>* plan,
                                 size_t depth) {
  Planned p;
  p.kind = r.kind;
  switch (r.kind) {
    case Kind::kPut: {
      const PutAsk& put = r.put;
      if (put.key.empty()) return KeyNotProvided();
      if (put.ignore_value && !put.value.empty()) return Error{kInvalidArgument, "etcdserver: value is provided"};
      if (put.ignore_lease && put.lease != 0) return Error{kInvalidArgument, "etcdserver: lease is provided"};
      if (put.lease < 0) return LeaseNotFound();
      p.prev_kv = put.prev_kv;
      if (p.prev_kv) ops->push_back(OpOf(K::kGet, put.key));
      core::TxnOp op = OpOf(K::kPut, put.key, put.value, static_cast<uint64_t>(put.lease));
      op.keep_value = put.ignore_value;
      op.keep_lease = put.ignore_lease;
      ops->push_back(std::move(op));
      p.ops = p.prev_kv ? 2 : 1;
      break;
    }
    case Kind::kRange: {
      const RangeAsk& range = r.range;
      if (range.key.empty()) return KeyNotProvided();
      // 0 and below read now, inside the txn, as in etcd (and in kv/range).
      if (range.revision > 0) {
        p.past = range;
        p.ops = 0;
        break;
      }
      p.shape = range.shape;
      ops->push_back(RangeOp(K::kGet, K::kGetRange, range.key, range.range_end));
      break;
    }
    case Kind::kDelete: {
      const DeleteAsk& del = r.del;
      if (del.key.empty()) return KeyNotProvided();
      p.prev_kv = del.prev_kv;
      if (p.prev_kv) ops->push_back(RangeOp(K::kGet, K::kGetRange, del.key, del.range_end));
      ops->push_back(RangeOp(K::kDelete, K::kDeleteRange, del.key, del.range_end));
      p.ops = p.prev_kv ? 2 : 1;
      break;
    }
    case Kind::kTxn: {
      // The depth is bounded here too: the walk below is recursive.
      if (depth >= core::kMaxTxnDepth) {
        return Error{kInvalidArgument,
                     fmt::format("kvctl: txns nest more than {} deep, the most kvctl takes: flatten the txn",
                                 core::kMaxTxnDepth)};
      }
      if (!r.txn) return Error{kInvalidArgument, "etcdserver: key not found"};
      auto inner = std::make_shared<core::TxnRequest>();
      if (auto e = PlanTxn(*r.txn, inner.get(), &p.success, &p.failure, depth + 1)) return e;
      core::TxnOp op;
      op.kind = K::kTxn;
      op.txn = std::move(inner);
      ops->push_back(std::move(op));
      break;
    }
  }
  plan->push_back(std::move(p));
  return std::nullopt;
}

std::optional<Error> PlanTxn(const TxnAsk& ask, core::TxnRequest* txn, std::vector<Planned>* success,
                             std::vector<Planned>* failure, size_t depth) {
  for (const CompareAsk& c : ask.compare) {
    txn->compare.emplace_back();
    if (auto e = PlanCompare(c, &txn->compare.back())) return e;
  }
  for (const RequestAsk& r : ask.success) {
    if (auto e = PlanRequest(r, &txn->success, success, depth)) return e;
  }
  for (const RequestAsk& r : ask.failure) {
    if (auto e = PlanRequest(r, &txn->failure, failure, depth)) return e;
  }
  return std::nullopt;
}

// Reads every range at a past revision of a plan, both branches of every
// txn in it: which ones run is known only once the compares are judged,
// inside the txn. A revision this store no longer holds or does not hold
// yet refuses the whole txn, where etcd refuses only one on the path its
// compares take (docs/etcd.md, "Differences").
std::optional<Error> ReadPast(core::KvStore& store, std::vector<Planned>& plan) {
  for (Planned& p : plan) {
    if (p.past) {
      if (auto e = Range(store, *p.past, &p.past_reply)) return e;
    }
    if (auto e = ReadPast(store, p.success)) return e;
    if (auto e = ReadPast(store, p.failure)) return e;
  }
  return std::nullopt;
}

// How many ranges at a past revision a plan reads (ReadPast): they count
// toward limits.max_txn_ops as the txn's own ops do.
size_t CountPast(const std::vector<Planned>& plan) {
  size_t n = 0;
  for (const Planned& p : plan) n += (p.past ? 1 : 0) + CountPast(p.success) + CountPast(p.failure);
  return n;
}

void AddAccess(const TxnAsk& ask, std::vector<KeyAccess>* out) {
  for (const CompareAsk& c : ask.compare) out->push_back({false, c.key, c.range_end});
  for (const auto* branch : {&ask.success, &ask.failure}) {
    for (const RequestAsk& r : *branch) {
      switch (r.kind) {
        case Kind::kPut: out->push_back({true, r.put.key, ""}); break;
        case Kind::kRange: out->push_back({false, r.range.key, r.range.range_end}); break;
        case Kind::kDelete: out->push_back({true, r.del.key, r.del.range_end}); break;
        case Kind::kTxn:
          if (r.txn) AddAccess(*r.txn, out);
          break;
      }
    }
  }
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
  uint64_t Next(bool writes) {
    wrote = wrote || writes;
    return wrote ? after : before;
  }
};

std::vector<ResponseReply> Responses(const std::vector<Planned>& ran, std::vector<core::TxnOpResult>& results,
                                     Revisions& revisions) {
  std::vector<ResponseReply> responses;
  size_t next = 0;
  for (const Planned& p : ran) {
    ResponseReply response;
    response.kind = p.kind;
    switch (p.kind) {
      case Kind::kPut: {
        response.revision = revisions.Next(true);
        if (p.prev_kv && !results[next].items.empty()) {
          response.put.prev_kv = std::move(ListItems(results[next].items).front());
        }
        break;
      }
      case Kind::kRange:
        response.revision = revisions.Next(false);
        if (p.past) {
          response.range = p.past_reply;
        } else {
          ShapeRange(p.shape, ListItems(results[next].items), results[next].more, &response.range);
        }
        break;
      case Kind::kDelete: {
        const core::TxnOpResult& del = results[next + p.ops - 1];
        response.revision = revisions.Next(del.deleted != 0);
        response.del.deleted = del.deleted;
        if (p.prev_kv) response.del.prev_kvs = ListItems(results[next].items);
        break;
      }
      case Kind::kTxn: {
        core::TxnOpResult& nested = results[next];
        response.txn = std::make_shared<TxnReply>();
        response.txn->succeeded = nested.succeeded;
        response.txn->responses = Responses(nested.succeeded ? p.success : p.failure, nested.results, revisions);
        break;
      }
    }
    responses.push_back(std::move(response));
    next += p.ops;
  }
  return responses;
}

// A store's refusal in etcd's words.
Error TxnError(const core::Status& s) {
  switch (s.code()) {
    case core::Code::kNotFound: return LeaseNotFound();
    // ignore_value / ignore_lease on a key that does not exist
    case core::Code::kFailedPrecondition: return {kInvalidArgument, "etcdserver: key not found"};
    default: return FromStatus(s);
  }
}

}  // namespace

bool ReadsPast(const TxnAsk& ask) {
  for (const auto* branch : {&ask.success, &ask.failure}) {
    for (const RequestAsk& r : *branch) {
      if (r.kind == Kind::kRange && r.range.revision > 0) return true;
      if (r.kind == Kind::kTxn && r.txn && ReadsPast(*r.txn)) return true;
    }
  }
  return false;
}

std::vector<KeyAccess> TxnAccess(const TxnAsk& ask) {
  std::vector<KeyAccess> out;
  AddAccess(ask, &out);
  return out;
}

void Txn(core::KvStore& store, const EtcdOptions& options, const TxnAsk& ask, Done<TxnReply> done) {
  core::TxnRequest txn;
  std::vector<Planned> success, failure;
  if (auto e = PlanTxn(ask, &txn, &success, &failure, 1)) return done(std::move(e), {});
  if (core::Status s = core::ValidateTxn(txn, options.max_txn_ops, options.max_key_bytes, options.max_value_bytes,
                                         CountPast(success) + CountPast(failure));
      !s.ok()) {
    // Keys written twice on a path are what etcd names a duplicate key.
    return done(Error{kInvalidArgument, s.message().find("writes each key once") != std::string::npos
                                            ? std::string("etcdserver: duplicate key given in txn request")
                                            : s.message()},
                {});
  }
  if (auto e = ReadPast(store, success)) return done(std::move(e), {});
  if (auto e = ReadPast(store, failure)) return done(std::move(e), {});
  store.TxnAsync(txn, [success = std::move(success), failure = std::move(failure),
                       done = std::move(done)](core::Result<core::TxnResult> result) {
    if (!result) return done(TxnError(result.error()), {});
    TxnReply reply;
    try {  // on the committer thread: nothing may escape
      Revisions revisions{result->changed ? result->revision - 1 : result->revision, result->revision};
      reply.revision = result->revision;
      reply.succeeded = result->succeeded;
      reply.responses = Responses(result->succeeded ? success : failure, result->results, revisions);
    } catch (const std::exception& e) {
      return done(Error{kInternal, fmt::format("internal error: {}", e.what())}, {});
    }
    done(std::nullopt, std::move(reply));
  });
}

}  // namespace kvctl::server::etcd
