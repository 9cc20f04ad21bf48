// etcd's kv/put, kv/range, kv/deleterange and kv/compaction over KvStore.
#include <algorithm>

#include <fmt/format.h>

#include "lib/core/range_history.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;

namespace {

// How often a read-then-write (prev_kv, ignore_value) is tried again when
// another writer changed the key in between.
constexpr int kMaxRetries = 100;

std::optional<Error> CheckKey(const std::string& key, size_t max_key_bytes) {
  if (key.empty()) return etcd::KeyNotProvided();
  if (key.size() > max_key_bytes) {
    return Error{etcd::kInvalidArgument,
                 fmt::format("kvctl: the key is {} bytes, over limits.max_key_bytes ({})", key.size(), max_key_bytes)};
  }
  return std::nullopt;
}

}  // namespace

std::optional<HttpResponse> EtcdApi::ReadPut(Call& call, PutAsk* ask) {
  for (auto e : {etcd::ReadBytes(call.body, "key", &ask->key), etcd::ReadBytes(call.body, "value", &ask->value),
                 etcd::ReadInt(call.body, "lease", &ask->lease), etcd::ReadBool(call.body, "prev_kv", &ask->prev_kv),
                 etcd::ReadBool(call.body, "ignore_value", &ask->ignore_value),
                 etcd::ReadBool(call.body, "ignore_lease", &ask->ignore_lease)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (auto e = CheckKey(ask->key, options_.max_key_bytes)) return ErrorAnswer(*e);
  if (ask->ignore_value && !ask->value.empty()) {
    return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: value is provided"});
  }
  if (ask->ignore_lease && ask->lease != 0) {
    return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: lease is provided"});
  }
  if (ask->value.size() > options_.max_value_bytes) {
    return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: request is too large"});
  }
  if (!etcd::RangePermitted(call.caller, Op::kWrite, ask->key, "")) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  if (ask->lease < 0) return ErrorAnswer(etcd::LeaseNotFound());
  return std::nullopt;
}

namespace {

HttpResponse PutStoreError(const core::Status& s) {
  return ErrorAnswer(s.code() == core::Code::kNotFound ? etcd::LeaseNotFound() : etcd::FromStatus(s));
}

}  // namespace

HttpResponse EtcdApi::PlainPutAnswer(const core::Result<core::PutOutcome>& put) const {
  if (!put) return PutStoreError(put.error());
  Json body;
  body["header"] = etcd::Header(options_, put->changed ? put->revision : store_.revision());
  return etcd::Answer(body);
}

HttpResponse EtcdApi::Put(Call& call) {
  PutAsk ask;
  if (auto refused = ReadPut(call, &ask)) return std::move(*refused);
  const auto& [key, value, lease, prev_kv, ignore_value, ignore_lease] = ask;
  const auto store_error = PutStoreError;
  if (!prev_kv && !ignore_value && !ignore_lease) {
    return PlainPutAnswer(store_.Put(key, value, {}, static_cast<uint64_t>(lease)));
  }
  // What the key holds is read, then written on condition that it is still
  // what was read (its revision, or its absence): the previous key-value
  // and the write are then of one moment, as etcd's are.
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    auto before = store_.Get(key);
    if (!before && before.error().code() != core::Code::kNotFound) return store_error(before.error());
    if (!before && (ignore_value || ignore_lease)) {
      return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: key not found"});
    }
    core::Precondition pre;
    pre.if_revision = before ? before->revision : 0;
    const std::string& new_value = ignore_value ? before->value : value;
    const uint64_t new_lease = ignore_lease ? before->meta.lease : static_cast<uint64_t>(lease);
    auto put = store_.Put(key, new_value, pre, new_lease);
    if (!put && put.error().code() == core::Code::kFailedPrecondition) continue;
    if (!put) return store_error(put.error());
    Json body;
    body["header"] = etcd::Header(options_, put->changed ? put->revision : store_.revision());
    if (prev_kv && before) body["prev_kv"] = etcd::KeyValue(key, before->value, before->revision, before->meta);
    return etcd::Answer(body);
  }
  return ErrorAnswer({etcd::kUnavailable, "kvctl: the key kept changing; try again"});
}

HttpResponse EtcdApi::Range(Call& call) {
  std::string key, range_end;
  int64_t revision = 0;
  bool serializable = false;
  etcd::RangeShape shape;
  for (auto e : {etcd::ReadBytes(call.body, "key", &key), etcd::ReadBytes(call.body, "range_end", &range_end),
                 etcd::ReadInt(call.body, "revision", &revision),
                 etcd::ReadBool(call.body, "serializable", &serializable), etcd::ReadRangeShape(call.body, &shape)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (key.empty()) return ErrorAnswer(etcd::KeyNotProvided());
  if (!etcd::RangePermitted(call.caller, Op::kRead, key, range_end)) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  if (revision > 0 && static_cast<uint64_t>(revision) > store_.revision()) {
    return ErrorAnswer(etcd::FutureRevision());
  }
  if (revision > 0 && static_cast<uint64_t>(revision) < store_.HistoryFloor()) {
    return ErrorAnswer(etcd::CompactedRevision());
  }
  etcd::RangeRead read;
  if (revision > 0) {
    // What the range held then, from the retained history (never the
    // current data as if it were the past); the header is the store's
    // revision now, as etcd's is.
    auto past = core::RangeAt(store_, core::KeyRange{key, range_end}, static_cast<uint64_t>(revision),
                              shape.keys_only || shape.count_only);
    if (!past) {
      if (past.error().IsCompacted()) return ErrorAnswer(etcd::CompactedRevision());
      if (past.error().IsInvalidArgument()) return ErrorAnswer(etcd::FutureRevision());
      return ErrorAnswer(etcd::FromStatus(past.error()));
    }
    read.items = std::move(past->items);
    read.revision = past->read_revision;
  } else {
    read = etcd::ReadRange(store_, key, range_end, shape.keys_only || shape.count_only);
  }
  Json body;
  body["header"] = etcd::Header(options_, read.revision);
  etcd::AddRangeAnswer(shape, std::move(read.items), false, &body);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::DeleteRange(Call& call) {
  std::string key, range_end;
  bool prev_kv = false;
  for (auto e : {etcd::ReadBytes(call.body, "key", &key), etcd::ReadBytes(call.body, "range_end", &range_end),
                 etcd::ReadBool(call.body, "prev_kv", &prev_kv)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (key.empty()) return ErrorAnswer(etcd::KeyNotProvided());
  if (!etcd::RangePermitted(call.caller, Op::kWrite, key, range_end)) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  auto answer = [&](uint64_t revision, uint64_t deleted, const std::vector<core::ListItem>& prev) {
    Json body;
    body["header"] = etcd::Header(options_, revision);
    if (deleted != 0) body["deleted"] = std::to_string(deleted);
    if (prev_kv && !prev.empty()) {
      Json kvs = Json::array();
      for (const auto& it : prev) kvs.push_back(etcd::KeyValue(it.key, it.value, it.revision, it.meta));
      body["prev_kvs"] = std::move(kvs);
    }
    return etcd::Answer(body);
  };
  // The keys are read, then deleted on condition that each still has the
  // revision read: the previous key-values and the delete are of one moment.
  // (A key created in the range in between is not deleted: docs/etcd.md.)
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    etcd::RangeRead read = etcd::ReadRange(store_, key, range_end, !prev_kv);
    if (read.items.empty()) return answer(read.revision, 0, {});
    if (read.items.size() > core::kMaxTxnDeleteKeys) {
      return ErrorAnswer({etcd::kInvalidArgument,
                          fmt::format("kvctl: a delete of more than {} keys at once is refused",
                                      core::kMaxTxnDeleteKeys)});
    }
    core::TxnRequest txn;
    for (const core::ListItem& it : read.items) {
      core::TxnCompare same;
      same.key = it.key;
      same.target = core::TxnCompare::Target::kRevision;
      same.op = core::TxnCompare::Op::kEqual;
      same.number = it.revision;
      txn.compare.push_back(std::move(same));
      txn.success.push_back(etcd::TxnOpOf(core::TxnOp::Kind::kDelete, it.key));
    }
    auto result = store_.Txn(txn);
    if (!result) return ErrorAnswer(etcd::FromStatus(result.error()));
    if (!result->succeeded) continue;
    return answer(result->revision, read.items.size(), read.items);
  }
  return ErrorAnswer({etcd::kUnavailable, "kvctl: the keys kept changing; try again"});
}

// etcd's compaction at R drops every revision below R at once. kvctl's
// compaction folds whole sealed log segments (or kv_log rows) into a
// snapshot and keeps the newest storage.history_retention revisions for
// watchers, so it cannot stop exactly at R: a compaction here runs kvctl's
// own, and the history floor rises as far as that goes (docs/etcd.md).
// What etcd refuses, kvctl refuses alike: a future revision, and one
// already below the floor.
HttpResponse EtcdApi::Compaction(Call& call) {
  int64_t revision = 0;
  if (auto e = etcd::ReadInt(call.body, "revision", &revision)) return ErrorAnswer(*e);
  if (revision > 0 && static_cast<uint64_t>(revision) > store_.revision()) {
    return ErrorAnswer(etcd::FutureRevision());
  }
  if (revision <= 0 || static_cast<uint64_t>(revision) < store_.HistoryFloor()) {
    return ErrorAnswer(etcd::CompactedRevision());
  }
  auto compacted = store_.Compact();
  if (!compacted) return ErrorAnswer(etcd::FromStatus(compacted.error()));
  Json body;
  body["header"] = etcd::Header(options_, store_.revision());
  return etcd::Answer(body);
}

}  // namespace kvctl::server
