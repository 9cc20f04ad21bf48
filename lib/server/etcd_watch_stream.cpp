#include "lib/server/etcd_watch_stream.h"

#include <algorithm>
#include <mutex>

#include "lib/server/etcd_internal.h"

namespace kvctl::server::etcd {

Json WatchResult(const EtcdOptions& etcd, uint64_t revision, int64_t watch_id) {
  Json result;
  result["header"] = Header(etcd, revision);
  if (watch_id != 0) result["watch_id"] = std::to_string(watch_id);
  return result;
}

std::string WatchMessage(const Json& result) {
  std::string out = Json{{"result", result}}.dump(-1, ' ', false, Json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

EtcdWatchStream::EtcdWatchStream(const EtcdOptions& etcd, std::shared_ptr<WakeSlot> slot,
                                 std::vector<std::string> answers, std::vector<std::unique_ptr<OneWatch>> watches)
    : etcd_(etcd), slot_(std::move(slot)), answers_(std::move(answers)), watches_(std::move(watches)) {}

EtcdWatchStream::~EtcdWatchStream() {
  for (const auto& w : watches_) {
    if (w) w->watcher->Cancel();
  }
}

void EtcdWatchStream::Start(std::function<void()> wake) {
  std::lock_guard lock(slot_->mu);
  slot_->wake = std::move(wake);
}

// One message per Pull: the watches take turns, so one busy watch does not
// hold back the rest.
bool EtcdWatchStream::Pull(size_t max_bytes, std::string* out) {
  if (next_answer_ < answers_.size()) {
    out->append(answers_[next_answer_++]);
    if (next_answer_ == answers_.size()) answers_ = {};
    return true;
  }
  for (size_t n = 0; n < watches_.size(); ++n) {
    const size_t i = (turn_ + n) % watches_.size();
    if (!watches_[i]) continue;
    switch (PullFrom(i, max_bytes, out)) {
      case Pulled::kNothing:
        continue;
      case Pulled::kMessage:
        turn_ = i + 1;
        return true;
      case Pulled::kStoreClosed:
        return false;
    }
  }
  return true;  // nothing now: a notify wakes us
}

void EtcdWatchStream::Cancel() {
  {
    std::lock_guard lock(slot_->mu);
    slot_->wake = nullptr;
  }
  for (const auto& w : watches_) {
    if (w) w->watcher->Cancel();
  }
}

// The next message of watch `i`, if it has one now.
EtcdWatchStream::Pulled EtcdWatchStream::PullFrom(size_t i, size_t max_bytes, std::string* out) {
  OneWatch& w = *watches_[i];
  for (;;) {
    batch_.events.clear();
    w.watcher->Poll(std::max<size_t>(max_bytes / 2, 1), &batch_);
    if (!batch_.events.empty()) {
      Json events = Json::array();
      uint64_t revision = 0;
      for (const auto& e : batch_.events) {
        if (!w.range.Contains(e->key)) continue;
        const bool put = e->type == core::RecordType::kPut;
        std::optional<core::ListItem> before;
        if (w.with_prev) before = TakeEvent(w, *e);
        if (e->revision < w.send_from) continue;
        revision = e->revision;
        if ((put && w.no_put) || (!put && w.no_delete)) continue;
        if (w.readable != nullptr && !w.readable->Permits(Op::kRead, e->key)) continue;
        Json event;
        if (!put) event["type"] = "DELETE";
        event["kv"] = put ? etcd::KeyValue(e->key, e->value, e->revision, e->meta)
                          : etcd::KeyValue(e->key, "", e->revision, core::KeyMeta{});
        if (before) event["prev_kv"] = etcd::KeyValue(before->key, before->value, before->revision, before->meta);
        events.push_back(std::move(event));
      }
      if (events.empty()) continue;  // none for this client: look on
      Json result = WatchResult(etcd_, revision, w.id);
      result["events"] = std::move(events);
      out->append(WatchMessage(result));
      return Pulled::kMessage;
    }
    if (batch_.progress != 0) {
      if (!w.progress_notify || batch_.progress < w.send_from) continue;
      out->append(WatchMessage(WatchResult(etcd_, batch_.progress, w.id)));
      return Pulled::kMessage;
    }
    if (batch_.end == core::Watcher::End::kNone) return Pulled::kNothing;
    // The watch is over: the stream goes on with the others.
    const int64_t id = w.id;
    watches_[i].reset();
    if (batch_.end == core::Watcher::End::kClosed) return Pulled::kStoreClosed;
    Json result = WatchResult(etcd_, 0, id);
    result["canceled"] = true;
    if (batch_.end == core::Watcher::End::kCompacted) {
      result["compact_revision"] = std::to_string(batch_.compact_revision);
    } else {
      result["cancel_reason"] = batch_.why.empty() ? std::string("kvctl: the watch ended") : batch_.why;
    }
    out->append(WatchMessage(result));
    return Pulled::kMessage;
  }
}

// Brings `w.prev` past event `e`; what the key held before it.
std::optional<core::ListItem> EtcdWatchStream::TakeEvent(OneWatch& w, const core::WatchEvent& e) {
  std::optional<core::ListItem> before;
  auto it = w.prev.find(e.key);
  if (it != w.prev.end()) {
    before = std::move(it->second);
    w.prev.erase(it);
  }
  if (e.type == core::RecordType::kPut) w.prev.emplace(e.key, core::ListItem{e.key, e.value, e.revision, e.meta});
  return before;
}

}  // namespace kvctl::server::etcd
