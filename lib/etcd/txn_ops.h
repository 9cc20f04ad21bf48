// etcd's txn over KvStore::Txn, with no wire format: etcd's compares and
// requests become kvctl's (lib/core/txn.h), one etcd request as one or two
// kvctl ops (a get before a write for prev_kv), a request_txn as a nested
// kvctl transaction; the results are put back in etcd's shape. What a txn
// means (compares over ranges, the path through nested txns, keys written
// twice, ignore_value and ignore_lease) is the core's; this translates.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/kv_store.h"
#include "lib/etcd/kv_ops.h"
#include "lib/etcd/types.h"

namespace kvctl::server::etcd {

struct CompareAsk {
  std::string key, range_end, value;
  int target = 0;  // etcd's CompareTarget: VERSION, CREATE, MOD, VALUE, LEASE
  int result = 0;  // etcd's CompareResult: EQUAL, GREATER, LESS, NOT_EQUAL
  int64_t version = 0, create_revision = 0, mod_revision = 0, lease = 0;
};

struct TxnAsk;
// One request of a branch: the ask its kind names.
struct RequestAsk {
  enum class Kind { kPut, kRange, kDelete, kTxn } kind = Kind::kPut;
  PutAsk put;
  RangeAsk range;
  DeleteAsk del;
  std::shared_ptr<TxnAsk> txn;
};

struct TxnAsk {
  std::vector<CompareAsk> compare;
  std::vector<RequestAsk> success, failure;
};

// A key or range a txn reads or writes, for the face's grant check.
struct KeyAccess {
  bool write = false;
  std::string key, range_end;
};
// Everything a txn's compares and requests touch, nested txns included.
std::vector<KeyAccess> TxnAccess(const TxnAsk& ask);

struct TxnReply;
// One response of the branch that ran, as its request's kind.
struct ResponseReply {
  RequestAsk::Kind kind = RequestAsk::Kind::kPut;
  uint64_t revision = 0;  // its header's; etcd leaves a nested txn's empty (0)
  PutReply put;
  RangeReply range;
  DeleteReply del;
  std::shared_ptr<TxnReply> txn;
};

struct TxnReply {
  uint64_t revision = 0;
  bool succeeded = false;
  std::vector<ResponseReply> responses;
};

// Whether a txn has a range at a past revision (nested txns too). Txn()
// reads those before it queues the txn, from the retained history, which
// may read the log or the database: a caller that must not block sends
// such a txn where it may.
bool ReadsPast(const TxnAsk& ask);

// Runs a txn without holding the thread (but for reading its ranges at a
// past revision first, ReadsPast): `done` gets the error or the reply
// exactly once, at once when refused, else on the store's committer thread
// once it is durable. `options` bounds its ops, keys and values.
void Txn(core::KvStore& store, const EtcdOptions& options, const TxnAsk& ask, Done<TxnReply> done);

}  // namespace kvctl::server::etcd
