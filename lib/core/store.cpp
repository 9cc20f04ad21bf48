#include "lib/core/store.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

namespace kvctl::core {

Store::Store(StoreOptions options)
    : options_(options),
      logger_(options.logger != nullptr ? *options.logger : NullLogger()),
      map_(&EncodedRecordSize) {}

Store::~Store() { (void)Close(); }

void Store::ApplyRecovered(const LogRecord& record) {
  map_.Apply(record);
  ApplyRecoveredLease(record);
  // A snapshot's records come in key order, not revision order.
  if (record.revision > committed_revision_.load()) committed_revision_ = record.revision;
}

void Store::NoteRecoveredRevision(uint64_t revision) {
  map_.NoteRevision(revision);
  if (revision > committed_revision_.load()) committed_revision_ = revision;
}

Result<CompactionStats> Store::Compact() {
  ChangeLog* log = nullptr;
  {
    std::lock_guard lock(write_mu_);
    log = log_.get();
  }
  if (log == nullptr) return Status::Unavailable("the store is not open yet");
  return log->Compact();
}

uint64_t Store::LogDiskBytes() const {
  std::lock_guard lock(write_mu_);
  return log_ ? log_->DiskBytes() : 0;
}

void Store::Start(std::unique_ptr<ChangeLog> log) {
  std::lock_guard lock(write_mu_);
  log_ = std::move(log);
  next_revision_ = committed_revision_.load() + 1;
  hub_ = std::make_unique<WatchHub>(options_.watch, log_->history(), committed_revision_.load());
  refused_ = Status::Ok();
  committer_ = std::thread([this] { CommitLoop(); });
  StartLeaseClock();
}

Result<std::shared_ptr<Watcher>> Store::Watch(const WatchFilter& filter, uint64_t from,
                                              std::function<void()> notify) {
  if (hub_ == nullptr) return Status::Unavailable("the store is not open yet");
  // "The next revision" is the one after what writers were told and readers
  // see: the hub learns of a commit only after its writers were answered,
  // so its own head may still be behind, and a watch from there would
  // bring back a change acknowledged before the watch began.
  if (from == 0) from = committed_revision_.load() + 1;
  return hub_->Watch(filter, from, std::move(notify));
}

uint64_t Store::HistoryFloor() const { return hub_ != nullptr ? hub_->Floor() : 1; }

WatchStats Store::watch_stats() const { return hub_ != nullptr ? hub_->stats() : WatchStats{}; }

Store::Current Store::LatestLocked(std::string_view key) const {
  if (!pending_.empty()) {
    if (auto it = pending_.find(key); it != pending_.end()) {
      const Pending& p = it->second;
      if (!p.value) return {std::nullopt, p.revision, {}};
      return {std::string_view(*p.value), p.revision, p.meta};
    }
  }
  if (auto item = map_.Find(key)) return {item->value, item->revision, item->meta};
  return {};
}

uint64_t Store::EnqueueLocked(RecordType type, std::string_view key, std::string_view value,
                              const Current& current, uint64_t lease) {
  const uint64_t revision = next_revision_++;
  const KeyMeta meta = type == RecordType::kPut
                           ? KeyMeta::AfterPut(current.value ? &current.meta : nullptr, revision, lease)
                           : KeyMeta{};
  ReattachLocked(key, current.value ? current.meta.lease : 0, type == RecordType::kPut ? lease : 0);
  auto it = pending_.find(key);
  if (it == pending_.end()) it = pending_.emplace(std::string(key), Pending{}).first;
  Pending& p = it->second;
  p.revision = revision;
  p.meta = meta;
  if (type == RecordType::kPut) {
    p.value = std::string(value);
  } else {
    p.value.reset();
  }
  {
    std::lock_guard lock(queue_mu_);
    queue_.push_back(Change{revision, type, std::string(key), std::string(value), meta});
  }
  queue_cv_.notify_one();
  return revision;
}

Result<PutOutcome> Store::BeginPut(std::string_view key, std::string_view value, const Precondition& pre,
                                   uint64_t lease) {
  std::lock_guard lock(write_mu_);
  if (!refused_.ok()) return refused_;
  const Current cur = LatestLocked(key);
  if (Status s = CheckPrecondition(cur.value.has_value(), cur.revision, pre); !s.ok()) return s;
  if (Status s = CheckLeaseLocked(lease); !s.ok()) return s;
  if (cur.value && *cur.value == value && cur.meta.lease == lease) {
    return PutOutcome{cur.revision, false, false};  // idempotent: no revision, no record
  }
  return PutOutcome{EnqueueLocked(RecordType::kPut, key, value, cur, lease), !cur.value, true};
}

Result<std::pair<DeleteOutcome, uint64_t>> Store::BeginDelete(std::string_view key, const Precondition& pre) {
  std::lock_guard lock(write_mu_);
  if (!refused_.ok()) return refused_;
  const Current cur = LatestLocked(key);
  if (Status s = CheckPrecondition(cur.value.has_value(), cur.revision, pre); !s.ok()) return s;
  // A missing key: wait for its delete when that is still pending (nonzero).
  if (!cur.value) return std::pair{DeleteOutcome{}, cur.revision};
  const uint64_t revision = EnqueueLocked(RecordType::kDelete, key, {}, cur);
  return std::pair{DeleteOutcome{true, revision}, revision};
}

Result<PutOutcome> Store::Put(std::string_view key, std::string_view value, const Precondition& pre,
                              uint64_t lease) {
  auto out = BeginPut(key, value, pre, lease);
  if (!out) return out;
  if (Status s = WaitDurable(out->revision); !s.ok()) return s;
  return out;
}

Result<DeleteOutcome> Store::Delete(std::string_view key, const Precondition& pre) {
  auto begun = BeginDelete(key, pre);
  if (!begun) return begun.error();
  if (Status s = WaitDurable(begun->second); !s.ok()) return s;
  return begun->first;
}

namespace {

// The callback that answers an async writer once its wait is over. It runs
// once, so the outcome is moved along, not copied (a transaction's results
// are a vector).
template <typename T>
std::function<void(const Status&)> Answer(T outcome, std::function<void(Result<T>)> done) {
  return [outcome = std::move(outcome), done = std::move(done)](const Status& s) mutable {
    if (s.ok()) {
      done(std::move(outcome));
    } else {
      done(s);
    }
  };
}

}  // namespace

void Store::PutAsync(std::string_view key, std::string_view value, const Precondition& pre, uint64_t lease,
                     PutDone done) {
  auto out = BeginPut(key, value, pre, lease);
  if (!out) return done(out.error());
  WhenDurable(out->revision, Answer(*out, std::move(done)));
}

void Store::DeleteAsync(std::string_view key, const Precondition& pre, DeleteDone done) {
  auto begun = BeginDelete(key, pre);
  if (!begun) return done(begun.error());
  WhenDurable(begun->second, Answer(begun->first, std::move(done)));
}

Result<TxnResult> Store::Txn(const TxnRequest& request) {
  auto begun = BeginTxn(request);
  if (!begun) return begun.error();
  if (Status s = WaitDurable(begun->second); !s.ok()) return s;
  return std::move(begun->first);
}

void Store::TxnAsync(const TxnRequest& request, TxnDone done) {
  auto begun = BeginTxn(request);
  if (!begun) return done(begun.error());
  WhenDurable(begun->second, Answer(std::move(begun->first), std::move(done)));
}

namespace {

// What a transaction has written so far, which its later ops see.
struct OwnWrite {
  std::optional<std::string> value;  // nullopt: deleted
  KeyMeta meta;
  // The lease the key had before the transaction, noted when it is first
  // written: the one it leaves (no second lookup of the key to find it).
  uint64_t lease_before = 0;
};

}  // namespace

std::vector<std::string> Store::KeysInRangeLocked(std::string_view start, std::string_view end,
                                                  size_t at_most) const {
  // The committed keys, then those only pending: each is judged by its
  // latest state afterwards, so a key in both is only listed twice here.
  std::vector<std::string> keys;
  map_.Scan(start, end, [&](const KeyTable::Item& item) {
    if (keys.size() == at_most) return false;
    keys.emplace_back(item.key);
    return true;
  });
  for (const auto& [key, p] : pending_) {
    if (InRange(key, start, end)) keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

bool Store::RangeCompareHoldsLocked(const TxnCompare& compare) const {
  const std::string_view start = compare.key, end = *compare.range_end;
  RangeCompare judge(compare);
  // Key by key, no list held: the range may be every key.
  bool going = true;
  map_.Scan(start, end, [&](const KeyTable::Item& item) {
    TxnKeyState state{item.value, item.revision, item.meta};
    if (auto p = pending_.find(item.key); p != pending_.end()) {
      if (!p->second.value) return true;  // deleted, the delete not yet committed
      state = {std::string_view(*p->second.value), p->second.revision, p->second.meta};
    }
    going = judge.Next(state);
    return going;
  });
  if (!going) return false;
  for (const auto& [key, p] : pending_) {
    // Those the map has were judged above, by their pending state.
    if (!p.value || !InRange(key, start, end) || map_.Find(key)) continue;
    if (!judge.Next({std::string_view(*p.value), p.revision, p.meta})) return false;
  }
  return judge.Holds();
}

Result<std::pair<TxnResult, uint64_t>> Store::BeginTxn(const TxnRequest& request) {
  std::lock_guard lock(write_mu_);
  if (!refused_.ok()) return refused_;
  using OwnWrites = std::map<std::string, OwnWrite, std::less<>>;
  OwnWrites own;
  std::vector<OwnWrites::iterator> order;  // the keys written, in the order their ops came
  // Notes a write of `key` (value nullopt: a delete); `before` is the key's
  // state as the op saw it.
  auto write = [&](const std::string& key, const std::string* value, const KeyMeta& meta, const TxnKeyState& before) {
    auto [it, first] = own.try_emplace(key);
    if (first) it->second.lease_before = before.value ? before.meta.lease : 0;
    if (value != nullptr) {
      it->second.value = *value;
    } else {
      it->second.value.reset();
    }
    it->second.meta = meta;
    order.push_back(it);
  };
  auto latest = [&](std::string_view key) -> TxnKeyState {
    if (auto it = own.find(key); it != own.end()) {
      if (!it->second.value) return {};
      return {std::string_view(*it->second.value), next_revision_, it->second.meta};
    }
    const Current cur = LatestLocked(key);
    if (!cur.value) return {};
    return {cur.value, cur.revision, cur.meta};
  };
  // The compares are all judged before any op runs (RunTxnTree), so
  // against the state before the transaction.
  auto holds = [&](const TxnCompare& c) {
    return c.range_end ? RangeCompareHoldsLocked(c) : CompareHolds(c, latest(c.key));
  };

  TxnResult result;
  size_t read_bytes = 0;  // kMaxTxnReadBytes
  const uint64_t revision = next_revision_;  // taken only if something is written
  auto run_op = [&](const TxnOp& op, const std::string& where, TxnOpResult& r) -> Status {
    const bool prefix = op.kind == TxnOp::Kind::kDeletePrefix || op.kind == TxnOp::Kind::kGetPrefix;
    const std::string end = prefix ? PrefixEnd(op.key) : op.range_end;
    switch (op.kind) {
      case TxnOp::Kind::kPut: {
        const TxnKeyState cur = latest(op.key);
        if ((op.keep_value || op.keep_lease) && !cur.value) {
          return Status::FailedPrecondition(fmt::format(
              "{} (put): it keeps the value or lease of key \"{}\", which does not exist", where, op.key));
        }
        const std::string value = op.keep_value ? std::string(*cur.value) : op.value;
        const uint64_t lease = op.keep_lease ? cur.meta.lease : op.lease;
        if (Status s = CheckLeaseLocked(lease); !s.ok()) return s;
        if (cur.value && *cur.value == value && cur.meta.lease == lease) {
          r.revision = cur.revision;  // unchanged: no write
          r.meta = cur.meta;
          break;
        }
        r.meta = KeyMeta::AfterPut(cur.value ? &cur.meta : nullptr, revision, lease);
        r.revision = revision;
        r.created = !cur.value;
        write(op.key, &value, r.meta, cur);
        break;
      }
      case TxnOp::Kind::kDelete:
        if (const TxnKeyState cur = latest(op.key); cur.value) {
          write(op.key, nullptr, {}, cur);
          r.deleted = 1;
        }
        break;
      case TxnOp::Kind::kDeletePrefix:
      case TxnOp::Kind::kDeleteRange: {
        for (const std::string& key : KeysInRangeLocked(op.key, end, kMaxTxnDeleteKeys + 1)) {
          const TxnKeyState cur = latest(key);
          if (!cur.value) continue;
          if (++r.deleted > kMaxTxnDeleteKeys) {
            return Status::InvalidArgument(fmt::format(
                "{} ({}): it would delete more than {} keys, the most one transaction deletes: "
                "delete them in parts (a narrower range per transaction)",
                where, prefix ? "delete prefix" : "delete range", kMaxTxnDeleteKeys));
          }
          write(key, nullptr, {}, cur);
        }
        break;
      }
      case TxnOp::Kind::kGet:
        if (const TxnKeyState cur = latest(op.key); cur.value) {
          r.items.push_back({op.key, std::string(*cur.value), cur.revision, cur.meta});
          read_bytes += op.key.size() + cur.value->size();
        }
        break;
      case TxnOp::Kind::kGetPrefix:
      case TxnOp::Kind::kGetRange: {
        const size_t limit = op.limit == 0 ? kMaxTxnGetKeys : std::min(op.limit, kMaxTxnGetKeys);
        // Enough committed keys that those this transaction or a pending
        // change deleted cannot leave the page short.
        std::vector<std::string> keys = KeysInRangeLocked(op.key, end, limit + pending_.size() + own.size() + 1);
        for (const auto& [key, w] : own) {
          if (InRange(key, op.key, end) && w.value) keys.push_back(key);
        }
        std::sort(keys.begin(), keys.end());
        keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
        for (const std::string& key : keys) {
          const TxnKeyState cur = latest(key);
          if (!cur.value) continue;
          if (r.items.size() == limit || (!r.items.empty() && read_bytes >= kMaxTxnReadBytes)) {
            r.more = true;
            break;
          }
          r.items.push_back({key, std::string(*cur.value), cur.revision, cur.meta});
          read_bytes += key.size() + cur.value->size();
        }
        break;
      }
      case TxnOp::Kind::kTxn: break;  // RunTxnTree runs nested transactions itself
    }
    return Status::Ok();
  };
  if (Status s = RunTxnTree(request, holds, run_op, &result.succeeded, &result.results); !s.ok()) return s;
  if (order.empty()) {
    // Nothing written: the reads reflect every revision handed out so far,
    // which the answer waits for (as a read of a pending change would).
    result.revision = next_revision_ - 1;
    return std::pair{std::move(result), result.revision};
  }
  // One revision, and the changes queued together: the committer takes
  // them in one batch, and the log writes them as one record.
  ++next_revision_;
  result.revision = revision;
  result.changed = true;
  std::vector<Change> changes;
  changes.reserve(order.size());
  for (OwnWrites::iterator written : order) {
    const std::string& key = written->first;
    OwnWrite& w = written->second;
    ReattachLocked(key, w.lease_before, w.value ? w.meta.lease : 0);
    auto it = pending_.find(key);
    if (it == pending_.end()) it = pending_.emplace(key, Pending{}).first;
    it->second.revision = revision;
    it->second.meta = w.meta;
    it->second.value = w.value;
    changes.push_back(Change{revision, w.value ? RecordType::kPut : RecordType::kDelete, key,
                             w.value ? std::move(*w.value) : std::string(), w.value ? w.meta : KeyMeta{}});
  }
  QueueLocked(std::move(changes));
  return std::pair{std::move(result), revision};
}

void Store::QueueLocked(std::vector<Change> changes) {
  {
    std::lock_guard queue_lock(queue_mu_);
    for (Change& c : changes) queue_.push_back(std::move(c));
  }
  queue_cv_.notify_one();
}

void Store::WhenDurable(uint64_t revision, std::function<void(const Status&)> then) {
  Status now;
  {
    std::lock_guard lock(durable_mu_);
    if (committed_revision_.load() < revision) {
      if (log_failure_.ok()) {
        waiters_.emplace_back(revision, std::move(then));
        return;
      }
      now = NotDurableLocked();
    }
  }
  then(now);
}

Status Store::NotDurableLocked() const {
  return Status::Unavailable(fmt::format(
      "the write was not made durable and is not acknowledged: {}", log_failure_.message()));
}

Result<Entry> Store::Get(std::string_view key, uint64_t* at_revision) const {
  return map_.Get(key, at_revision);
}

ListPage Store::List(const ListOptions& options) const { return map_.List(options); }

Status Store::Writable() const {
  std::lock_guard lock(write_mu_);
  return refused_;
}

Status Store::WaitDurable(uint64_t revision) {
  if (committed_revision_.load() >= revision) return Status::Ok();
  std::unique_lock lock(durable_mu_);
  durable_cv_.wait(lock, [&] { return committed_revision_.load() >= revision || !log_failure_.ok(); });
  if (committed_revision_.load() >= revision) return Status::Ok();
  return NotDurableLocked();
}

void Store::CommitLoop() {
  using Clock = std::chrono::steady_clock;
  const bool periodic_sync = !log_->SyncsOnAppend() && options_.sync_interval.count() > 0;
  bool unsynced = false;
  Clock::time_point sync_due{};

  std::vector<Change> batch;
  std::unique_lock lock(queue_mu_);
  for (;;) {
    auto ready = [&] { return !queue_.empty() || stopping_; };
    if (unsynced) {
      queue_cv_.wait_until(lock, sync_due, ready);
    } else {
      queue_cv_.wait(lock, ready);
    }
    if (unsynced && Clock::now() >= sync_due) {
      lock.unlock();
      if (Status s = log_->Sync(); s.ok()) {
        ++interval_syncs_;
      } else {
        Fail(s);
      }
      unsynced = false;
      lock.lock();
    }
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // The queue takes the emptied batch's room: no regrowing it each round.
    batch.clear();
    batch.swap(queue_);
    lock.unlock();

    if (Status s = log_->Append(batch); !s.ok()) {
      Fail(s);
    } else {
      if (periodic_sync && !unsynced) {
        unsynced = true;
        sync_due = Clock::now() + options_.sync_interval;
      }
      ApplyCommitted(batch);
    }
    lock.lock();
  }
}

void Store::ApplyCommitted(const std::vector<Change>& batch) {
  {
    std::lock_guard write_lock(write_mu_);
    for (const Change& c : batch) {
      if (!ChangesKey(c.type)) continue;  // a lease's grant or end
      if (auto it = pending_.find(c.key); it != pending_.end() && it->second.revision == c.revision) {
        pending_.erase(it);
      }
      ++(c.type == RecordType::kPut ? puts_ : deletes_);
    }
    map_.Apply(batch);
  }
  ++batches_;
  committed_changes_ += batch.size();
  if (options_.on_commit) options_.on_commit(batch.size());
  std::vector<std::function<void(const Status&)>> ready;
  {
    std::lock_guard lock(durable_mu_);
    const uint64_t committed = batch.back().revision;
    committed_revision_ = committed;
    auto waiting = std::partition(waiters_.begin(), waiters_.end(),
                                  [committed](const auto& w) { return w.first > committed; });
    for (auto it = waiting; it != waiters_.end(); ++it) ready.push_back(std::move(it->second));
    waiters_.erase(waiting, waiters_.end());
  }
  durable_cv_.notify_all();
  for (auto& then : ready) then(Status::Ok());
  // Watchers next: the writers have their answers. Events are made only
  // while someone watches; with no one, the hub only learns the head (a
  // watcher that arrives later reads what it needs from the log).
  const uint64_t head = batch.back().revision;
  if (hub_->watching()) {
    std::vector<WatchEvent> events;
    events.reserve(batch.size());
    for (const Change& c : batch) {
      if (ChangesKey(c.type)) events.push_back({c.revision, c.type, c.key, c.value, c.meta});
    }
    hub_->Publish(std::move(events), head);
  } else {
    hub_->Advance(head);
  }
}

void Store::Fail(const Status& cause) {
  bool first = false;
  {
    // Both under one hold (lock order write_mu_, durable_mu_): a writer woken
    // by the failure must find writes already refused, or a client could get
    // its 503 while /readyz still reports ready.
    std::lock_guard write_lock(write_mu_);
    std::lock_guard durable_lock(durable_mu_);
    if (log_failure_.ok()) {
      first = true;
      log_failure_ = cause;
      refused_ = Status::Unavailable(fmt::format(
          "writes are disabled since the log failed: {} (reads still work; fix the disk, then "
          "restart kvctl, which recovers everything that was acknowledged)",
          cause.message()));
    }
  }
  if (first) {
    logger_.Error("the log failed; refusing writes from now on, still serving reads",
                  {{"cause", cause.message()}});
  }
  durable_cv_.notify_all();
  FailWaiters();
}

void Store::FailWaiters() {
  std::vector<std::pair<uint64_t, std::function<void(const Status&)>>> failed;
  Status why;
  {
    std::lock_guard lock(durable_mu_);
    failed.swap(waiters_);
    why = log_failure_.ok() ? Status::Unavailable("kvctl is shutting down; the write was not acknowledged")
                            : NotDurableLocked();
  }
  for (auto& [revision, then] : failed) then(why);
}

StoreStats Store::stats() const {
  StoreStats s;
  s.keys = map_.size();
  s.live_bytes = map_.live_bytes();
  s.revision = committed_revision_.load();
  s.puts = puts_.load();
  s.deletes = deletes_.load();
  s.commit_batches = batches_.load();
  s.committed_changes = committed_changes_.load();
  s.interval_syncs = interval_syncs_.load();
  return s;
}

std::vector<BackendMetric> Store::BackendMetrics() const {
  // log_ is set once by Start() and kept until the Store is destroyed.
  return log_ ? log_->Metrics() : std::vector<BackendMetric>{};
}

Status Store::Close() {
  StopLeaseClock();  // it writes: it stops before the writes do
  {
    std::lock_guard lock(write_mu_);
    if (refused_.ok()) refused_ = Status::Unavailable("kvctl is shutting down");
  }
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  FailWaiters();  // none are left once the queue is drained; this is a guard
  // log_ stays (closed) until the store is destroyed: a compaction running
  // on another thread may still hold it, and gets Unavailable from it.
  if (hub_) hub_->Shutdown();  // every watcher ends before the log's history goes
  Status closed = log_ ? log_->Close() : Status::Ok();
  std::lock_guard lock(durable_mu_);
  return log_failure_.ok() ? closed : log_failure_;
}

}  // namespace kvctl::core
