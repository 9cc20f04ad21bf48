#include "lib/etcd/kv_ops.h"

#include <algorithm>

#include <fmt/format.h>

#include "lib/core/range_history.h"
#include "lib/core/txn.h"

namespace kvctl::server::etcd {

namespace {

// How often a read-then-write (prev_kv, ignore_value, a delete-range) is
// tried again when another writer changed a key in between.
constexpr int kMaxRetries = 100;

// The most bytes of keys (and, with prev_kv, values) one delete-range
// takes: etcd deletes any range at one revision, and so does kvctl, as one
// log record that holds every key; this bounds that record and the copies
// a delete makes on its way (its read, the transaction, the answer).
// `etcdctl check perf` ends by deleting every key it wrote, 60,000 (--load=m)
// to 500,000 (l) keys of about 30 bytes.
constexpr size_t kMaxDeleteRangeBytes = 64 << 20;

Error PutStoreError(const core::Status& s) {
  return s.code() == core::Code::kNotFound ? LeaseNotFound() : FromStatus(s);
}

}  // namespace

RangeRead ReadRange(const core::KvStore& store, const std::string& key, const std::string& range_end,
                    bool keys_only) {
  return core::ReadRange(store, core::KeyRange{key, range_end}, keys_only);
}

void ShapeRange(const RangeShape& shape, std::vector<core::ListItem> items, bool more, RangeReply* reply) {
  reply->count = items.size();
  auto outside = [&](const core::ListItem& it) {
    const auto mod = static_cast<int64_t>(it.revision);
    const auto create = static_cast<int64_t>(it.meta.create_revision);
    return (shape.min_mod > 0 && mod < shape.min_mod) || (shape.max_mod > 0 && mod > shape.max_mod) ||
           (shape.min_create > 0 && create < shape.min_create) ||
           (shape.max_create > 0 && create > shape.max_create);
  };
  items.erase(std::remove_if(items.begin(), items.end(), outside), items.end());
  // etcd: NONE with a target other than KEY sorts ascending; by KEY
  // ascending is the order the keys already have.
  int sort_order = shape.sort_order;
  if (sort_order == 0 && shape.sort_target != 0) sort_order = 1;
  if (sort_order == 1 || sort_order == 2) {
    auto less = [&](const core::ListItem& a, const core::ListItem& b) {
      switch (shape.sort_target) {
        case 1: return a.meta.version < b.meta.version;
        case 2: return a.meta.create_revision < b.meta.create_revision;
        case 3: return a.revision < b.revision;
        case 4: return a.value < b.value;
        default: return a.key < b.key;
      }
    };
    if (sort_order == 1) {
      std::stable_sort(items.begin(), items.end(), less);
    } else {
      std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) { return less(b, a); });
    }
  }
  if (shape.limit > 0 && items.size() > static_cast<size_t>(shape.limit)) {
    items.resize(static_cast<size_t>(shape.limit));
    more = true;
  }
  reply->more = more;
  reply->kvs.clear();
  if (!shape.count_only) reply->kvs = std::move(items);
}

std::optional<Error> Range(core::KvStore& store, const RangeAsk& ask, RangeReply* reply) {
  if (ask.key.empty()) return KeyNotProvided();
  const int64_t revision = ask.revision;
  if (revision > 0 && static_cast<uint64_t>(revision) > store.revision()) return FutureRevision();
  if (revision > 0 && static_cast<uint64_t>(revision) < store.HistoryFloor()) return CompactedRevision();
  const bool keys_only = ask.shape.keys_only || ask.shape.count_only;
  RangeRead read;
  if (revision > 0) {
    // What the range held then, from the retained history (never the
    // current data as if it were the past); the header is the store's
    // revision now, as etcd's is.
    auto past = core::RangeAt(store, core::KeyRange{ask.key, ask.range_end}, static_cast<uint64_t>(revision),
                              keys_only);
    if (!past) {
      if (past.error().IsCompacted()) return CompactedRevision();
      if (past.error().IsInvalidArgument()) return FutureRevision();
      return FromStatus(past.error());
    }
    read.items = std::move(past->items);
    read.revision = past->read_revision;
  } else {
    read = ReadRange(store, ask.key, ask.range_end, keys_only);
  }
  reply->revision = read.revision;
  ShapeRange(ask.shape, std::move(read.items), false, reply);
  return std::nullopt;
}

std::optional<Error> CheckPut(const EtcdOptions& options, const PutAsk& ask) {
  if (ask.key.empty()) return KeyNotProvided();
  if (ask.key.size() > options.max_key_bytes) {
    return Error{kInvalidArgument, fmt::format("kvctl: the key is {} bytes, over limits.max_key_bytes ({})",
                                               ask.key.size(), options.max_key_bytes)};
  }
  if (ask.ignore_value && !ask.value.empty()) return Error{kInvalidArgument, "etcdserver: value is provided"};
  if (ask.ignore_lease && ask.lease != 0) return Error{kInvalidArgument, "etcdserver: lease is provided"};
  if (ask.value.size() > options.max_value_bytes) return Error{kInvalidArgument, "etcdserver: request is too large"};
  return std::nullopt;
}

namespace {

std::optional<Error> PlainPutReply(const core::KvStore& store, const core::Result<core::PutOutcome>& put,
                                   PutReply* reply) {
  if (!put) return PutStoreError(put.error());
  reply->revision = put->changed ? put->revision : store.revision();
  return std::nullopt;
}

}  // namespace

void PlainPutAsync(core::KvStore& store, const PutAsk& ask, Done<PutReply> done) {
  if (ask.lease < 0) {
    done(LeaseNotFound(), {});
    return;
  }
  store.PutAsync(ask.key, ask.value, {}, static_cast<uint64_t>(ask.lease),
                 [&store, done = std::move(done)](core::Result<core::PutOutcome> put) {
                   PutReply reply;
                   auto error = PlainPutReply(store, put, &reply);
                   done(std::move(error), std::move(reply));
                 });
}

std::optional<Error> Put(core::KvStore& store, const PutAsk& ask, PutReply* reply) {
  if (ask.lease < 0) return LeaseNotFound();
  if (!ask.NeedsRead()) {
    return PlainPutReply(store, store.Put(ask.key, ask.value, {}, static_cast<uint64_t>(ask.lease)), reply);
  }
  // What the key holds is read, then written on condition that it is still
  // what was read (its revision, or its absence): the previous key-value
  // and the write are then of one moment, as etcd's are.
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    auto before = store.Get(ask.key);
    if (!before && before.error().code() != core::Code::kNotFound) return PutStoreError(before.error());
    if (!before && (ask.ignore_value || ask.ignore_lease)) return Error{kInvalidArgument, "etcdserver: key not found"};
    core::Precondition pre;
    pre.if_revision = before ? before->revision : 0;
    const std::string& new_value = ask.ignore_value ? before->value : ask.value;
    const uint64_t new_lease = ask.ignore_lease ? before->meta.lease : static_cast<uint64_t>(ask.lease);
    auto put = store.Put(ask.key, new_value, pre, new_lease);
    if (!put && put.error().code() == core::Code::kFailedPrecondition) continue;
    if (auto e = PlainPutReply(store, put, reply)) return e;
    if (ask.prev_kv && before) {
      reply->prev_kv = core::ListItem{ask.key, before->value, before->revision, before->meta};
    }
    return std::nullopt;
  }
  return Error{kUnavailable, "kvctl: the key kept changing; try again"};
}

std::optional<Error> DeleteRange(core::KvStore& store, const DeleteAsk& ask, DeleteReply* reply) {
  if (ask.key.empty()) return KeyNotProvided();
  // The keys are read, then deleted on condition that each still has the
  // revision read: the previous key-values and the delete are of one moment.
  // (A key created in the range in between is not deleted: docs/etcd.md.)
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    RangeRead read = ReadRange(store, ask.key, ask.range_end, !ask.prev_kv);
    if (read.items.empty()) {
      reply->revision = read.revision;
      return std::nullopt;
    }
    size_t bytes = 0;
    for (const core::ListItem& it : read.items) bytes += it.key.size() + it.value.size();
    if (bytes > kMaxDeleteRangeBytes) {
      return Error{kInvalidArgument,
                   fmt::format("kvctl: a delete of {} keys ({} MiB of keys{}) at once is refused: at most {} MiB; "
                               "delete the range in parts",
                               read.items.size(), bytes >> 20, ask.prev_kv ? " and values" : "",
                               kMaxDeleteRangeBytes >> 20)};
    }
    core::TxnRequest txn;
    for (const core::ListItem& it : read.items) {
      core::TxnCompare same;
      same.key = it.key;
      same.target = core::TxnCompare::Target::kRevision;
      same.op = core::TxnCompare::Op::kEqual;
      same.number = it.revision;
      txn.compare.push_back(std::move(same));
      core::TxnOp del;
      del.kind = core::TxnOp::Kind::kDelete;
      del.key = it.key;
      txn.success.push_back(std::move(del));
    }
    auto result = store.Txn(txn);
    if (!result) return FromStatus(result.error());
    if (!result->succeeded) continue;
    reply->revision = result->revision;
    reply->deleted = read.items.size();
    if (ask.prev_kv) reply->prev_kvs = std::move(read.items);
    return std::nullopt;
  }
  return Error{kUnavailable, "kvctl: the keys kept changing; try again"};
}

// etcd's compaction at R drops every revision below R at once. kvctl's
// compaction folds whole sealed log segments (or kv_log rows) into a
// snapshot and keeps the newest storage.history_retention revisions for
// watchers, so it cannot stop exactly at R: a compaction here runs kvctl's
// own, and the history floor rises as far as that goes (docs/etcd.md).
// What etcd refuses, kvctl refuses alike: a future revision, and one
// already below the floor.
std::optional<Error> Compaction(core::KvStore& store, int64_t revision, uint64_t* header_revision) {
  if (revision > 0 && static_cast<uint64_t>(revision) > store.revision()) return FutureRevision();
  if (revision <= 0 || static_cast<uint64_t>(revision) < store.HistoryFloor()) return CompactedRevision();
  auto compacted = store.Compact();
  if (!compacted) return FromStatus(compacted.error());
  *header_revision = store.revision();
  return std::nullopt;
}

}  // namespace kvctl::server::etcd
