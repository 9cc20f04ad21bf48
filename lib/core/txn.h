// Transactions (SPEC §6): compares judged together, then one list of ops or
// the other, all writes at one revision, as one log record (or one
// database transaction), all or none. The shape is etcd's Txn; the faces
// (POST /v1/txn, etcd's kv/txn) translate into these types and back.
//
// What both backends share lives here: checking a request before it is
// judged (ValidateTxn) and judging one compare against a key's state
// (CompareHolds). Where the judging happens is the backend's: the file
// store under its write lock, PostgreSQL inside the database transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/key_meta.h"
#include "lib/core/status.h"

namespace kvctl::core {

struct TxnCompare {
  enum class Target { kValue, kRevision, kCreateRevision, kVersion, kLease };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kValue;
  Op op = Op::kEqual;
  std::string value;    // with kValue
  uint64_t number = 0;  // with the other targets
};

struct TxnOp {
  enum class Kind { kPut, kDelete, kDeletePrefix, kGet, kGetPrefix };
  Kind kind = Kind::kGet;
  std::string key;     // the key, or the prefix ("" is every key) for the *Prefix kinds
  std::string value;   // with kPut
  uint64_t lease = 0;  // with kPut: the lease to attach the key to (0: none)
  size_t limit = 0;    // with kGetPrefix: at most this many keys (0: up to kMaxTxnGetKeys)
};

struct TxnRequest {
  std::vector<TxnCompare> compare;
  std::vector<TxnOp> success;
  std::vector<TxnOp> failure;
};

// One op's outcome, in the order of the ops that ran.
struct TxnOpResult {
  TxnOp::Kind kind = TxnOp::Kind::kGet;
  // kPut: the key's revision after it (the transaction's, unless the put
  // changed nothing) and its metadata.
  uint64_t revision = 0;
  KeyMeta meta;
  bool created = false;
  // kDelete, kDeletePrefix: how many keys it deleted.
  uint64_t deleted = 0;
  // kGet, kGetPrefix: the keys found, in key order, as the transaction saw
  // them (after its own earlier ops), and whether a prefix had more.
  struct Item {
    std::string key;
    std::string value;
    uint64_t revision = 0;
    KeyMeta meta;
  };
  std::vector<Item> items;
  bool more = false;
};

struct TxnResult {
  bool succeeded = false;  // every compare held (the success ops ran)
  // The transaction's revision when it wrote; else the store revision its
  // reads reflect.
  uint64_t revision = 0;
  bool changed = false;  // it wrote something (took a revision)
  std::vector<TxnOpResult> results;
};

// The most keys one get-prefix returns, and one delete-prefix may delete
// (a transaction is one log record; it stays a bounded size).
inline constexpr size_t kMaxTxnGetKeys = 10000;
// The most bytes of keys and values a transaction's gets return together,
// as a listing page is bounded (a get of a prefix stops there with `more`;
// a get of one key returns it whole, bounded by limits.max_value_bytes).
inline constexpr size_t kMaxTxnReadBytes = 4 << 20;
inline constexpr size_t kMaxTxnDeleteKeys = 10000;

// Checks what can be checked without the store: at most `max_ops` compares
// plus ops (limits.max_txn_ops), non-empty keys (prefixes may be empty),
// keys within `max_key_bytes`, values within `max_value_bytes`, and no key
// written twice in one branch (a put or delete of a key, or a put under a
// prefix the same branch deletes). InvalidArgument saying which op.
Status ValidateTxn(const TxnRequest& request, size_t max_ops, size_t max_key_bytes,
                   size_t max_value_bytes);

// A key's state as a compare sees it; nullopt value: the key does not
// exist (its revision, create revision, version and lease are then 0, and
// a value compare fails whatever its op, as in etcd).
struct TxnKeyState {
  std::optional<std::string_view> value;
  uint64_t revision = 0;
  KeyMeta meta;
};
bool CompareHolds(const TxnCompare& compare, const TxnKeyState& state);

std::string_view TargetName(TxnCompare::Target target);

}  // namespace kvctl::core
