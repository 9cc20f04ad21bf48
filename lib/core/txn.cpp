#include "lib/core/txn.h"

#include <fmt/format.h>

namespace kvctl::core {
namespace {

bool Writes(TxnOp::Kind kind) {
  return kind == TxnOp::Kind::kPut || kind == TxnOp::Kind::kDelete || kind == TxnOp::Kind::kDeletePrefix;
}

std::string_view KindName(TxnOp::Kind kind) {
  switch (kind) {
    case TxnOp::Kind::kPut: return "put";
    case TxnOp::Kind::kDelete: return "delete";
    case TxnOp::Kind::kDeletePrefix: return "delete prefix";
    case TxnOp::Kind::kGet: return "get";
    case TxnOp::Kind::kGetPrefix: return "get prefix";
  }
  return "op";
}

Status ValidateBranch(const std::vector<TxnOp>& ops, std::string_view branch, size_t max_key_bytes,
                      size_t max_value_bytes) {
  for (size_t i = 0; i < ops.size(); ++i) {
    const TxnOp& op = ops[i];
    const bool prefix = op.kind == TxnOp::Kind::kDeletePrefix || op.kind == TxnOp::Kind::kGetPrefix;
    if (!prefix && op.key.empty()) {
      return Status::InvalidArgument(fmt::format("{}[{}] ({}): the key is empty", branch, i, KindName(op.kind)));
    }
    if (op.key.size() > max_key_bytes) {
      return Status::InvalidArgument(fmt::format("{}[{}] ({}): the key is {} bytes, over limits.max_key_bytes = {}",
                                                 branch, i, KindName(op.kind), op.key.size(), max_key_bytes));
    }
    if (op.kind == TxnOp::Kind::kPut && op.value.size() > max_value_bytes) {
      return Status::InvalidArgument(fmt::format("{}[{}] (put): the value is {} bytes, over limits.max_value_bytes = {}",
                                                 branch, i, op.value.size(), max_value_bytes));
    }
    if (!Writes(op.kind)) continue;
    // One key written twice: by two ops on the key, or by an op on a key
    // and a delete of a prefix of it (which would write it too).
    for (size_t j = 0; j < i; ++j) {
      const TxnOp& before = ops[j];
      if (!Writes(before.kind)) continue;
      const bool clash =
          before.kind == TxnOp::Kind::kDeletePrefix
              ? op.key.starts_with(before.key) || (op.kind == TxnOp::Kind::kDeletePrefix && before.key.starts_with(op.key))
              : op.kind == TxnOp::Kind::kDeletePrefix ? before.key.starts_with(op.key) : before.key == op.key;
      if (clash) {
        return Status::InvalidArgument(
            fmt::format("{}[{}] ({}) writes a key that {}[{}] ({}) writes too: a transaction writes each key once",
                        branch, i, KindName(op.kind), branch, j, KindName(before.kind)));
      }
    }
  }
  return Status::Ok();
}

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

Status ValidateTxn(const TxnRequest& request, size_t max_ops, size_t max_key_bytes, size_t max_value_bytes) {
  const size_t ops = request.compare.size() + request.success.size() + request.failure.size();
  if (ops > max_ops) {
    return Status::InvalidArgument(fmt::format(
        "the transaction has {} compares and ops, over limits.max_txn_ops = {}: split it, or raise the limit", ops,
        max_ops));
  }
  for (size_t i = 0; i < request.compare.size(); ++i) {
    const TxnCompare& c = request.compare[i];
    if (c.key.empty()) return Status::InvalidArgument(fmt::format("compare[{}]: the key is empty", i));
    if (c.key.size() > max_key_bytes) {
      return Status::InvalidArgument(fmt::format("compare[{}]: the key is {} bytes, over limits.max_key_bytes = {}", i,
                                                 c.key.size(), max_key_bytes));
    }
  }
  if (Status s = ValidateBranch(request.success, "success", max_key_bytes, max_value_bytes); !s.ok()) return s;
  return ValidateBranch(request.failure, "failure", max_key_bytes, max_value_bytes);
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
