#include "lib/etcd/watch_ops.h"

#include <algorithm>

#include <fmt/format.h>

#include "lib/core/range_history.h"

namespace kvctl::server::etcd {

struct WatchSet::OneWatch {
  int64_t id = 0;
  core::KeyRange range;  // its events are those of range; the watcher may cover
                         // more (Covering)
  bool no_put = false;
  bool no_delete = false;
  bool progress_notify = false;
  KeyFilter readable;  // null: every key
  std::shared_ptr<core::Watcher> watcher;
  // Events before this revision are not sent; with prev_kv they only bring
  // `prev` up to date (the watcher starts where `prev` was reconstructed).
  uint64_t send_from = 0;
  // With prev_kv: every key of the range as of the last event taken, so
  // that each event can carry the key-value before it (its cost: the
  // range's keys and values, for as long as the watch is open).
  bool with_prev = false;
  std::map<std::string, core::ListItem> prev;

  // Brings `prev` past event `e`; what the key held before it.
  std::optional<core::ListItem> Take(const core::WatchEvent& e) {
    std::optional<core::ListItem> before;
    auto it = prev.find(e.key);
    if (it != prev.end()) {
      before = std::move(it->second);
      prev.erase(it);
    }
    if (e.type == core::RecordType::kPut) prev.emplace(e.key, core::ListItem{e.key, e.value, e.revision, e.meta});
    return before;
  }
};

WatchSet::WatchSet(core::KvStore& store, size_t max_watches, std::function<void()> notify)
    : store_(store), max_watches_(max_watches), notify_(std::move(notify)) {}

WatchSet::~WatchSet() { CancelAll(); }

void WatchSet::CancelAll() {
  for (const auto& w : watches_) w->watcher->Cancel();
  watches_.clear();
}

WatchSet::OneWatch* WatchSet::Find(int64_t id) {
  for (auto& w : watches_) {
    if (w->id == id) return w.get();
  }
  return nullptr;
}

WatchReply WatchSet::Refusal(int64_t watch_id, std::string reason) const {
  WatchReply r;
  r.revision = store_.revision();
  r.watch_id = watch_id;
  r.created = true;
  r.canceled = true;
  r.cancel_reason = std::move(reason);
  return r;
}

WatchReply WatchSet::Progress() const {
  WatchReply r;
  r.revision = store_.revision();
  r.watch_id = kNoWatchId;
  return r;
}

std::optional<Error> WatchSet::Create(const WatchAsk& ask, KeyFilter readable, std::vector<WatchReply>* answers) {
  // etcd: no key is the smallest key, "\0"; a range end of "\0" is every
  // key from `key` on.
  auto w = std::make_unique<OneWatch>();
  w->range = core::KeyRange{ask.key.empty() ? std::string(1, '\0') : ask.key, ask.range_end};
  w->progress_notify = ask.progress_notify;
  w->with_prev = ask.prev_kv;
  w->no_put = ask.no_put;
  w->no_delete = ask.no_delete;
  w->readable = std::move(readable);
  if (w->range.IsEmpty()) {
    answers->push_back(Refusal(kNoWatchId, "mvcc: watcher range is empty"));
    return std::nullopt;
  }
  if (ask.watch_id != 0 && Find(ask.watch_id) != nullptr) {
    answers->push_back(Refusal(kNoWatchId, "mvcc: duplicate watch ID provided on the WatchStream"));
    return std::nullopt;
  }
  if (watches_.size() >= max_watches_) {
    answers->push_back(Refusal(
        kNoWatchId, fmt::format("kvctl: at most {} watches on one stream; open another stream", max_watches_)));
    return std::nullopt;
  }
  int64_t watch_id = ask.watch_id;
  if (watch_id == 0) {
    while (Find(next_id_) != nullptr) ++next_id_;
    watch_id = next_id_++;
  }
  w->id = watch_id;
  const uint64_t head = store_.revision();
  WatchReply created;
  created.revision = head;
  created.watch_id = watch_id;
  created.created = true;

  const uint64_t start = ask.start_revision > 0 ? static_cast<uint64_t>(ask.start_revision) : head + 1;
  w->send_from = start;
  uint64_t from = start;
  core::Status failed;
  if (ask.prev_kv) {
    // The range just before the start (or now, for a start still to come),
    // then kept up to date from the events the watcher takes.
    const uint64_t before = std::min(start - 1, head);
    auto past = core::RangeAt(store_, w->range, before, false);
    if (past) {
      from = before + 1;
      for (core::ListItem& item : past->items) {
        std::string k = item.key;
        w->prev.emplace(std::move(k), std::move(item));
      }
    } else {
      failed = past.error();
    }
  }
  if (failed.ok()) {
    auto watcher = store_.Watch(w->range.Covering(), from, notify_);
    if (watcher) {
      w->watcher = std::move(*watcher);
    } else {
      failed = watcher.error();
    }
  }
  if (failed.IsCompacted()) {
    // etcd: created, then canceled with the last revision compacted away.
    answers->push_back(std::move(created));
    WatchReply canceled;
    canceled.watch_id = watch_id;
    canceled.canceled = true;
    const uint64_t floor = store_.HistoryFloor();
    canceled.compact_revision = floor > 0 ? floor - 1 : 0;
    answers->push_back(std::move(canceled));
    return std::nullopt;
  }
  if (!failed.ok()) return FromStatus(failed);
  answers->push_back(std::move(created));
  watches_.push_back(std::move(w));
  return std::nullopt;
}

void WatchSet::Cancel(int64_t id, std::vector<WatchReply>* answers) {
  auto it = std::find_if(watches_.begin(), watches_.end(), [&](const auto& w) { return w->id == id; });
  if (it == watches_.end()) return;
  (*it)->watcher->Cancel();
  watches_.erase(it);
  WatchReply r;
  r.revision = store_.revision();
  r.watch_id = id;
  r.canceled = true;
  answers->push_back(std::move(r));
}

WatchSet::Pulled WatchSet::Next(size_t max_bytes, WatchReply* out) {
  for (size_t n = 0; n < watches_.size();) {
    const size_t i = (turn_ + n) % watches_.size();
    const size_t open = watches_.size();
    const Pulled pulled = NextOf(i, max_bytes, out);
    if (pulled == Pulled::kMessage) {
      // Watch i has had its turn (or ended, and i is now the one after it).
      turn_ = watches_.size() < open ? i : i + 1;
      return pulled;
    }
    if (pulled == Pulled::kStoreClosed) return pulled;
    ++n;
  }
  return Pulled::kNothing;  // nothing now: a notify wakes the face
}

// The next message of watch `i`, if it has one now; an ended watch is
// removed once its end is the message.
WatchSet::Pulled WatchSet::NextOf(size_t i, size_t max_bytes, WatchReply* out) {
  OneWatch& w = *watches_[i];
  for (;;) {
    batch_.events.clear();
    w.watcher->Poll(std::max<size_t>(max_bytes, 1), &batch_);
    if (!batch_.events.empty()) {
      *out = WatchReply{};
      for (auto& e : batch_.events) {
        if (!w.range.Contains(e->key)) continue;
        const bool put = e->type == core::RecordType::kPut;
        std::optional<core::ListItem> before;
        if (w.with_prev) before = w.Take(*e);
        if (e->revision < w.send_from) continue;
        out->revision = e->revision;
        if ((put && w.no_put) || (!put && w.no_delete)) continue;
        if (w.readable && !w.readable(e->key)) continue;
        out->events.push_back({std::move(e), std::move(before)});
      }
      if (out->events.empty()) continue;  // none for this client: look on
      out->watch_id = w.id;
      return Pulled::kMessage;
    }
    if (batch_.progress != 0) {
      if (!w.progress_notify || batch_.progress < w.send_from) continue;
      *out = WatchReply{};
      out->revision = batch_.progress;
      out->watch_id = w.id;
      return Pulled::kMessage;
    }
    if (batch_.end == core::Watcher::End::kNone) return Pulled::kNothing;
    // The watch is over: the stream goes on with the others.
    const int64_t id = w.id;
    watches_.erase(watches_.begin() + static_cast<ptrdiff_t>(i));
    if (batch_.end == core::Watcher::End::kClosed) return Pulled::kStoreClosed;
    *out = WatchReply{};
    out->watch_id = id;
    out->canceled = true;
    if (batch_.end == core::Watcher::End::kCompacted) {
      out->compact_revision = batch_.compact_revision;
    } else {
      out->cancel_reason = batch_.why.empty() ? std::string("kvctl: the watch ended") : batch_.why;
    }
    return Pulled::kMessage;
  }
}

}  // namespace kvctl::server::etcd
