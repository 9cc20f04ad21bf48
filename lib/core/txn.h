// Transactions (SPEC §6): compares judged together, then one list of ops or
// the other, all writes at one revision, as one log record (or one
// database transaction), all or none. The shape is etcd's Txn, nested
// transactions and compares over ranges included; the faces (POST /v1/txn,
// etcd's kv/txn) translate into these types and back.
//
// What both backends share lives here: checking a request before it is
// judged (ValidateTxn), judging one compare against a key's state
// (CompareHolds, RangeCompare) and walking a tree of nested transactions
// as etcd does (RunTxnTree). Where the judging happens is the backend's: the file
// store under its write lock, PostgreSQL inside the database transaction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/key_meta.h"
#include "lib/core/status.h"

namespace kvctl::core {

// A range of keys is [key, range_end) in byte order; an empty range_end
// means every key from `key` on (etcd's "\0"), and a range_end at or below
// `key` holds no key.
struct TxnCompare {
  enum class Target { kValue, kRevision, kCreateRevision, kVersion, kLease };
  enum class Op { kEqual, kNotEqual, kLess, kGreater };
  std::string key;
  Target target = Target::kValue;
  Op op = Op::kEqual;
  std::string value;    // with kValue
  uint64_t number = 0;  // with the other targets
  // Set: the compare is over the range [key, *range_end) and holds iff it
  // holds for every key there; with no key there, as for a missing key
  // (etcd's applyCompare).
  std::optional<std::string> range_end;
};

struct TxnRequest;

struct TxnOp {
  // kTxn: a transaction nested in this one (etcd's request_txn), whose
  // compares are judged with every other compare of the tree, before any
  // op runs.
  enum class Kind { kPut, kDelete, kDeletePrefix, kGet, kGetPrefix, kGetRange, kDeleteRange, kTxn };
  Kind kind = Kind::kGet;
  std::string key;        // the key, the prefix ("" is every key) for the *Prefix kinds, the range's start
  std::string range_end;  // with the *Range kinds: the range [key, range_end) ("": to the last key)
  std::string value;      // with kPut
  uint64_t lease = 0;     // with kPut: the lease to attach the key to (0: none)
  // With kPut: keep the value and/or the lease the key holds (etcd's
  // ignore_value, ignore_lease); the key must then exist (else
  // FailedPrecondition), and `value` / `lease` are not used.
  bool keep_value = false;
  bool keep_lease = false;
  size_t limit = 0;       // with kGetPrefix, kGetRange: at most this many keys (0: up to kMaxTxnGetKeys)
  std::shared_ptr<const TxnRequest> txn;  // with kTxn
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
  // kTxn: whether the nested transaction's compares held, and the results
  // of the branch that ran.
  bool succeeded = false;
  std::vector<TxnOpResult> results;
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
// How deep transactions nest (a request_txn in a request_txn ...): the
// tree is walked recursively, so its depth is bounded as its size is.
inline constexpr size_t kMaxTxnDepth = 32;

// Checks what can be checked without the store: at most `max_ops` compares
// plus ops in the whole tree (limits.max_txn_ops; a nested transaction
// counts as one op plus its own), at most kMaxTxnDepth levels, non-empty
// keys (prefixes and range starts may be empty), keys within
// `max_key_bytes`, values within `max_value_bytes`, and no key written
// twice on one path (etcd's checkIntervals: a put of a key another put or
// a delete of the same path writes; two deletes may overlap, the second
// deleting nothing). InvalidArgument saying which ops, ending in "a
// transaction writes each key once" for a key written twice.
// `ops_beside` counts toward `max_ops` too: reads a face runs beside the
// transaction for it (etcd's ranges at a past revision).
Status ValidateTxn(const TxnRequest& request, size_t max_ops, size_t max_key_bytes,
                   size_t max_value_bytes, size_t ops_beside = 0);

// The smallest key above every key starting with `prefix`, "" when there is
// none (every byte is 0xff, or the prefix is empty): a prefix as a range
// [prefix, PrefixEnd(prefix)).
std::string PrefixEnd(std::string_view prefix);
// Whether `key` is in [start, end) ("" end: no upper end).
inline bool InRange(std::string_view key, std::string_view start, std::string_view end) {
  return key >= start && (end.empty() || key < end);
}

// Runs a transaction tree as etcd 3.4 does (applyTxn after compareToPath):
// first every compare of the tree on the path taken is judged by `holds`
// (against the state before any op, the backend's to ensure), which fixes
// each branch; then the ops of those branches run in order through
// `run_op` (never called with kTxn: nested results are assembled here).
// Fills `succeeded` and `results` (of the top level); the first error of
// `run_op` stops it and is returned, `where` naming the op ("success[1]",
// "success[1].failure[0]").
using TxnCompareHolds = std::function<bool(const TxnCompare&)>;
using TxnRunOp = std::function<Status(const TxnOp&, const std::string& where, TxnOpResult&)>;
Status RunTxnTree(const TxnRequest& request, const TxnCompareHolds& holds, const TxnRunOp& run_op,
                  bool* succeeded, std::vector<TxnOpResult>* results);

// A key's state as a compare sees it; nullopt value: the key does not
// exist (its revision, create revision, version and lease are then 0, and
// a value compare fails whatever its op, as in etcd).
struct TxnKeyState {
  std::optional<std::string_view> value;
  uint64_t revision = 0;
  KeyMeta meta;
};
bool CompareHolds(const TxnCompare& compare, const TxnKeyState& state);
// A compare over a range, fed the states of the keys in it one at a time
// (`Next`) and then asked (`Holds`): etcd's rule, every key holds, and an
// empty range is judged as a missing key.
class RangeCompare {
 public:
  explicit RangeCompare(const TxnCompare& compare) : compare_(compare) {}
  // False once the answer is known (a key failed): the caller may stop.
  bool Next(const TxnKeyState& state) {
    seen_ = true;
    if (!CompareHolds(compare_, state)) failed_ = true;
    return !failed_;
  }
  bool Holds() const { return seen_ ? !failed_ : CompareHolds(compare_, TxnKeyState{}); }

 private:
  const TxnCompare& compare_;
  bool seen_ = false;
  bool failed_ = false;
};

std::string_view TargetName(TxnCompare::Target target);

}  // namespace kvctl::core
