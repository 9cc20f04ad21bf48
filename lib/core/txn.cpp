#include "lib/core/txn.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace kvctl::core {
namespace {

std::string_view KindName(TxnOp::Kind kind) {
  switch (kind) {
    case TxnOp::Kind::kPut: return "put";
    case TxnOp::Kind::kDelete: return "delete";
    case TxnOp::Kind::kDeletePrefix: return "delete prefix";
    case TxnOp::Kind::kGet: return "get";
    case TxnOp::Kind::kGetPrefix: return "get prefix";
    case TxnOp::Kind::kGetRange: return "get range";
    case TxnOp::Kind::kDeleteRange: return "delete range";
    case TxnOp::Kind::kTxn: return "txn";
  }
  return "op";
}

// An op that writes, for the duplicate-key rule: its name ("success[2]
// (put)") and its place in the tree (the op indices from the top), which
// orders two of them as the request does.
struct Writer {
  std::string by;
  std::vector<size_t> at;
};
// The keys one op or a subtree deletes, and those it puts.
struct DeletedRange {
  std::string start, end;  // [start, end), "" end: to the last key
  bool point = false;      // a delete of the key `start` alone
  Writer writer;
  bool Holds(std::string_view key) const { return point ? key == start : InRange(key, start, end); }
};
struct BranchWrites {
  std::map<std::string, Writer, std::less<>> puts;
  std::vector<DeletedRange> deletes;
};

// The later of the two ops named first.
Status WrittenTwice(const Writer& one, const Writer& other) {
  const bool one_later = other.at < one.at;
  return Status::InvalidArgument(fmt::format("{} writes a key that {} writes too: a transaction writes each key once",
                                             one_later ? one.by : other.by, one_later ? other.by : one.by));
}

// The put of `key` by `writer` against what `w` writes already.
Status AddPut(BranchWrites& w, const std::string& key, const Writer& writer) {
  if (auto it = w.puts.find(key); it != w.puts.end()) return WrittenTwice(writer, it->second);
  for (const DeletedRange& d : w.deletes) {
    if (d.Holds(key)) return WrittenTwice(writer, d.writer);
  }
  w.puts.emplace(key, writer);
  return Status::Ok();
}

struct Checker {
  size_t max_key_bytes, max_value_bytes;
  size_t ops = 0;

  Status CheckKey(const std::string& key, const std::string& where, bool may_be_empty) const {
    if (!may_be_empty && key.empty()) return Status::InvalidArgument(fmt::format("{}: the key is empty", where));
    if (key.size() > max_key_bytes) {
      return Status::InvalidArgument(
          fmt::format("{}: the key is {} bytes, over limits.max_key_bytes = {}", where, key.size(), max_key_bytes));
    }
    return Status::Ok();
  }

  // One transaction of the tree: its compares, then each branch, whose
  // writes land in `then` and `otherwise`.
  Status Request(const TxnRequest& r, const std::string& path, const std::vector<size_t>& at, BranchWrites& then,
                 BranchWrites& otherwise) {
    const size_t depth = at.size() + 1;
    if (depth > kMaxTxnDepth) {
      return Status::InvalidArgument(fmt::format(
          "{}: transactions nest more than {} deep, the most kvctl takes: flatten the transaction", path,
          kMaxTxnDepth));
    }
    ops += r.compare.size() + r.success.size() + r.failure.size();
    for (size_t i = 0; i < r.compare.size(); ++i) {
      if (Status s = CheckKey(r.compare[i].key, fmt::format("{}compare[{}]", path, i), false); !s.ok()) return s;
    }
    if (Status s = Branch(r.success, path + "success", at, then); !s.ok()) return s;
    return Branch(r.failure, path + "failure", at, otherwise);
  }

  // etcd's checkIntervals over one branch: its deletes first, then each
  // nested transaction's writes (either of its branches may run, not both),
  // then its own puts; `out` is everything the branch may write. kvctl also
  // refuses what etcd 3.4 lets through and would write a key twice at one
  // revision: a nested transaction deleting what an earlier one puts, and a
  // put under a delete to the last key (etcd's "\0" end).
  Status Branch(const std::vector<TxnOp>& branch, const std::string& name, const std::vector<size_t>& at,
                BranchWrites& out) {
    BranchWrites w;
    auto writer = [&](size_t i, std::string by) {
      Writer named{std::move(by), at};
      named.at.push_back(i);
      return named;
    };
    for (size_t i = 0; i < branch.size(); ++i) {
      const TxnOp& op = branch[i];
      const std::string where = fmt::format("{}[{}] ({})", name, i, KindName(op.kind));
      const bool ranged = op.kind == TxnOp::Kind::kDeletePrefix || op.kind == TxnOp::Kind::kGetPrefix ||
                          op.kind == TxnOp::Kind::kGetRange || op.kind == TxnOp::Kind::kDeleteRange;
      if (op.kind == TxnOp::Kind::kTxn) {
        if (op.txn == nullptr) return Status::InvalidArgument(fmt::format("{}: holds no transaction", where));
        continue;
      }
      if (Status s = CheckKey(op.key, where, ranged); !s.ok()) return s;
      if (op.range_end.size() > max_key_bytes) {
        return Status::InvalidArgument(fmt::format("{}: the range end is {} bytes, over limits.max_key_bytes = {}",
                                                   where, op.range_end.size(), max_key_bytes));
      }
      if (op.kind == TxnOp::Kind::kPut && op.value.size() > max_value_bytes) {
        return Status::InvalidArgument(fmt::format("{}: the value is {} bytes, over limits.max_value_bytes = {}",
                                                   where, op.value.size(), max_value_bytes));
      }
      if (op.kind == TxnOp::Kind::kDelete) w.deletes.push_back({op.key, "", true, writer(i, where)});
      if (op.kind == TxnOp::Kind::kDeletePrefix) {
        w.deletes.push_back({op.key, PrefixEnd(op.key), false, writer(i, where)});
      }
      if (op.kind == TxnOp::Kind::kDeleteRange) w.deletes.push_back({op.key, op.range_end, false, writer(i, where)});
    }
    for (size_t i = 0; i < branch.size(); ++i) {
      const TxnOp& op = branch[i];
      if (op.kind != TxnOp::Kind::kTxn) continue;
      const std::string where = fmt::format("{}[{}].", name, i);
      BranchWrites then, otherwise;
      if (Status s = Request(*op.txn, where, writer(i, where).at, then, otherwise); !s.ok()) return s;
      for (const auto* nested : {&then.deletes, &otherwise.deletes}) {
        for (const DeletedRange& d : *nested) {
          for (const auto& [key, put] : w.puts) {
            if (d.Holds(key)) return WrittenTwice(d.writer, put);
          }
        }
      }
      for (const auto& [key, put] : then.puts) {
        if (Status s = AddPut(w, key, put); !s.ok()) return s;
      }
      for (const auto& [key, put] : otherwise.puts) {
        if (then.puts.contains(key)) continue;  // the two branches exclude each other
        if (Status s = AddPut(w, key, put); !s.ok()) return s;
      }
      w.deletes.insert(w.deletes.end(), then.deletes.begin(), then.deletes.end());
      w.deletes.insert(w.deletes.end(), otherwise.deletes.begin(), otherwise.deletes.end());
    }
    for (size_t i = 0; i < branch.size(); ++i) {
      if (branch[i].kind != TxnOp::Kind::kPut) continue;
      if (Status s = AddPut(w, branch[i].key, writer(i, fmt::format("{}[{}] (put)", name, i))); !s.ok()) return s;
    }
    out = std::move(w);
    return Status::Ok();
  }
};

// Judges every compare on the path the tree takes, in etcd's order: a
// transaction's compares, then those of the nested transactions of the
// branch they chose, depth first. One entry per transaction on the path.
void ChoosePath(const TxnRequest& request, const TxnCompareHolds& holds, std::vector<bool>* path) {
  const bool succeeded = std::all_of(request.compare.begin(), request.compare.end(), holds);
  path->push_back(succeeded);
  for (const TxnOp& op : succeeded ? request.success : request.failure) {
    if (op.kind == TxnOp::Kind::kTxn) ChoosePath(*op.txn, holds, path);
  }
}

Status RunPath(const TxnRequest& request, const std::vector<bool>& path, size_t* at, const std::string& prefix,
               const TxnRunOp& run_op, bool* succeeded, std::vector<TxnOpResult>* results) {
  *succeeded = path[(*at)++];
  const std::vector<TxnOp>& ops = *succeeded ? request.success : request.failure;
  const std::string branch = prefix + (*succeeded ? "success" : "failure");
  results->reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    TxnOpResult& r = results->emplace_back();
    r.kind = ops[i].kind;
    const std::string where = fmt::format("{}[{}]", branch, i);
    Status s = ops[i].kind == TxnOp::Kind::kTxn
                   ? RunPath(*ops[i].txn, path, at, where + ".", run_op, &r.succeeded, &r.results)
                   : run_op(ops[i], where, r);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

Status RunTxnTree(const TxnRequest& request, const TxnCompareHolds& holds, const TxnRunOp& run_op, bool* succeeded,
                  std::vector<TxnOpResult>* results) {
  std::vector<bool> path;
  ChoosePath(request, holds, &path);
  size_t at = 0;
  return RunPath(request, path, &at, "", run_op, succeeded, results);
}

namespace {

template <typename T>
bool Compare(const T& a, const T& b, TxnCompare::Op op) {
  switch (op) {
    case TxnCompare::Op::kEqual: return a == b;
    case TxnCompare::Op::kNotEqual: return a != b;
    case TxnCompare::Op::kLess: return a < b;
    case TxnCompare::Op::kGreater: return a > b;
  }
  return false;
}

}  // namespace

Status ValidateTxn(const TxnRequest& request, size_t max_ops, size_t max_key_bytes, size_t max_value_bytes,
                   size_t ops_beside) {
  Checker checker{max_key_bytes, max_value_bytes};
  BranchWrites then, otherwise;
  Status s = checker.Request(request, "", {}, then, otherwise);
  if (checker.ops + ops_beside > max_ops) {
    return Status::InvalidArgument(fmt::format(
        "the transaction has {} compares and ops, over limits.max_txn_ops = {}: split it, or raise the limit",
        checker.ops + ops_beside, max_ops));
  }
  return s;
}

bool CompareHolds(const TxnCompare& compare, const TxnKeyState& state) {
  switch (compare.target) {
    case TxnCompare::Target::kValue:
      if (!state.value) return false;  // etcd: a value compare on a missing key always fails
      return Compare(*state.value, std::string_view(compare.value), compare.op);
    case TxnCompare::Target::kRevision: return Compare(state.revision, compare.number, compare.op);
    case TxnCompare::Target::kCreateRevision: return Compare(state.meta.create_revision, compare.number, compare.op);
    case TxnCompare::Target::kVersion: return Compare(state.meta.version, compare.number, compare.op);
    case TxnCompare::Target::kLease: return Compare(state.meta.lease, compare.number, compare.op);
  }
  return false;
}

std::string_view TargetName(TxnCompare::Target target) {
  switch (target) {
    case TxnCompare::Target::kValue: return "value";
    case TxnCompare::Target::kRevision: return "revision";
    case TxnCompare::Target::kCreateRevision: return "create_revision";
    case TxnCompare::Target::kVersion: return "version";
    case TxnCompare::Target::kLease: return "lease";
  }
  return "value";
}

}  // namespace kvctl::core
