// etcd's kv/put, kv/range, kv/deleterange and kv/compaction over KvStore.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include <fmt/format.h>

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

// Whether no key of [key, range_end) changed in (since, now]: then what
// the range holds now is exactly what it held at `since`. Asked of the
// store's retained history through a watcher from since + 1; an error when
// that history is gone (compacted), or when the answer takes too long.
core::Result<bool> UnchangedSince(core::KvStore& store, const std::string& key, const std::string& range_end,
                                  uint64_t since, uint64_t now) {
  core::WatchFilter filter;
  if (range_end.empty()) {
    filter.key = key;
  } else {
    filter.prefix = true;
    if (!etcd::IsFromKeyOn(range_end)) {
      size_t common = 0;
      while (common < key.size() && common < range_end.size() && key[common] == range_end[common]) ++common;
      filter.key = key.substr(0, common);
    }
  }
  auto in_range = [&](const std::string& k) {
    if (range_end.empty()) return k == key;
    return k >= key && (etcd::IsFromKeyOn(range_end) || k < range_end);
  };
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  auto wake = std::make_shared<Wake>();
  auto watcher = store.Watch(filter, since + 1, [wake] {
    std::lock_guard lock(wake->mu);
    wake->woken = true;
    wake->cv.notify_all();
  });
  if (!watcher) return watcher.error();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  core::Watcher::Batch batch;
  for (;;) {
    (*watcher)->Poll(1 << 20, &batch);
    for (const auto& e : batch.events) {
      if (e->revision > now) break;
      if (in_range(e->key)) {
        (*watcher)->Cancel();
        return false;
      }
    }
    if (batch.end == core::Watcher::End::kCompacted) return core::Status::Compacted("compacted");
    if (batch.end != core::Watcher::End::kNone) {
      return core::Status::Unavailable(batch.why.empty() ? "the history could not be read" : batch.why);
    }
    if ((*watcher)->next_revision() > now) {
      (*watcher)->Cancel();
      return true;
    }
    if (!batch.events.empty()) continue;
    std::unique_lock lock(wake->mu);
    if (!wake->cv.wait_until(lock, deadline, [&] { return wake->woken; })) {
      (*watcher)->Cancel();
      return core::Status::Unavailable("kvctl: reading the history took too long");
    }
    wake->woken = false;
  }
}

}  // namespace

HttpResponse EtcdApi::Put(Call& call) {
  std::string key, value;
  int64_t lease = 0;
  bool prev_kv = false, ignore_value = false, ignore_lease = false;
  for (auto e : {etcd::ReadBytes(call.body, "key", &key), etcd::ReadBytes(call.body, "value", &value),
                 etcd::ReadInt(call.body, "lease", &lease), etcd::ReadBool(call.body, "prev_kv", &prev_kv),
                 etcd::ReadBool(call.body, "ignore_value", &ignore_value),
                 etcd::ReadBool(call.body, "ignore_lease", &ignore_lease)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (auto e = CheckKey(key, options_.max_key_bytes)) return ErrorAnswer(*e);
  if (ignore_value && !value.empty()) return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: value is provided"});
  if (ignore_lease && lease != 0) return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: lease is provided"});
  if (value.size() > options_.max_value_bytes) {
    return ErrorAnswer({etcd::kInvalidArgument, "etcdserver: request is too large"});
  }
  if (!etcd::RangePermitted(call.caller, Op::kWrite, key, "")) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  if (lease < 0) return ErrorAnswer(etcd::LeaseNotFound());
  auto store_error = [](const core::Status& s) {
    return ErrorAnswer(s.code() == core::Code::kNotFound ? etcd::LeaseNotFound() : etcd::FromStatus(s));
  };
  if (!prev_kv && !ignore_value && !ignore_lease) {
    auto put = store_.Put(key, value, {}, static_cast<uint64_t>(lease));
    if (!put) return store_error(put.error());
    Json body;
    body["header"] = etcd::Header(options_, put->changed ? put->revision : store_.revision());
    return etcd::Answer(body);
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
  etcd::RangeRead read = etcd::ReadRange(store_, key, range_end, shape.keys_only || shape.count_only);
  if (revision > 0 && static_cast<uint64_t>(revision) > read.revision) return ErrorAnswer(etcd::FutureRevision());
  if (revision > 0 && static_cast<uint64_t>(revision) < read.revision) {
    // A past revision is answered only when the retained history shows
    // that nothing in the range changed since: never the current data as
    // if it were the past.
    auto unchanged = UnchangedSince(store_, key, range_end, static_cast<uint64_t>(revision), read.revision);
    if (!unchanged) {
      return ErrorAnswer(unchanged.error().IsCompacted() ? etcd::CompactedRevision()
                                                         : etcd::FromStatus(unchanged.error()));
    }
    if (!*unchanged) {
      return ErrorAnswer(etcd::Unimplemented("a range at a past revision when the range changed since"));
    }
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

HttpResponse EtcdApi::Compaction(Call& call) {
  int64_t revision = 0;
  if (auto e = etcd::ReadInt(call.body, "revision", &revision)) return ErrorAnswer(*e);
  if (revision > 0 && static_cast<uint64_t>(revision) > store_.revision()) {
    return ErrorAnswer(etcd::FutureRevision());
  }
  return ErrorAnswer(etcd::Unimplemented(
      "kv/compaction (kvctl compacts by storage.history_retention and POST /v1/admin/compact)"));
}

}  // namespace kvctl::server
