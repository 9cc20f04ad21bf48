#include "lib/core/range_history.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace kvctl::core {

Status ReadHistory(KvStore& store, const WatchFilter& filter, uint64_t from, uint64_t to,
                   const std::function<void(const WatchEvent&)>& each) {
  if (from > to) return Status::Ok();
  struct Wake {
    std::mutex mu;
    std::condition_variable cv;
    bool woken = false;
  };
  auto wake = std::make_shared<Wake>();  // the notify may outlive this call (watch.h)
  auto watcher = store.Watch(filter, from, [wake] {
    std::lock_guard lock(wake->mu);
    wake->woken = true;
    wake->cv.notify_all();
  });
  if (!watcher) return watcher.error();
  struct CancelOnExit {
    Watcher& w;
    ~CancelOnExit() { w.Cancel(); }
  } cancel_on_exit{**watcher};
  constexpr auto kQuiet = std::chrono::seconds(5);
  Watcher::Batch batch;
  for (;;) {
    // Every event below the watcher's next revision has been taken or
    // waits to be (the history thread moves it on as it fetches): read
    // before the Poll, it says when an empty Poll means "done".
    const uint64_t next = (*watcher)->next_revision();
    (*watcher)->Poll(1 << 20, &batch);
    for (const auto& e : batch.events) {
      if (e->revision > to) return Status::Ok();
      each(*e);
    }
    if (batch.end == Watcher::End::kCompacted) {
      return Status::Compacted("the history from revision " + std::to_string(from) + " was compacted away");
    }
    if (batch.end != Watcher::End::kNone) {
      return Status::Unavailable(batch.why.empty() ? "the history could not be read" : batch.why);
    }
    if (!batch.events.empty() || batch.progress != 0) continue;
    if (next > to) return Status::Ok();
    // The Poll itself may have moved the watcher past `to` (nothing
    // matched): one more Poll, with that as its start, settles it.
    if ((*watcher)->next_revision() > to) continue;
    std::unique_lock lock(wake->mu);
    if (!wake->cv.wait_for(lock, kQuiet, [&] { return wake->woken; })) {
      return Status::Unavailable(
          "reading the history took too long (nothing "
          "came for 5 s); try again");
    }
    wake->woken = false;
  }
}

Result<PastRange> RangeAt(KvStore& store, const KeyRange& range, uint64_t revision, bool keys_only) {
  PastRange past;
  RangeRead now = ReadRange(store, range, keys_only);
  past.read_revision = now.revision;
  if (revision > now.revision) {
    return Status::InvalidArgument("revision " + std::to_string(revision) + " is a future revision: the store is at " +
                                   std::to_string(now.revision));
  }
  if (revision == now.revision || range.IsEmpty()) {
    past.items = std::move(now.items);
    return past;
  }
  if (revision == 0) return past;  // nothing existed before the first change
  const WatchFilter filter = range.Covering();

  // Each key of the range changed after `revision`: whether its first
  // change since created it (then it did not exist at `revision`).
  std::map<std::string, bool> changed;
  Status s = ReadHistory(store, filter, revision + 1, now.revision, [&](const WatchEvent& e) {
    if (!range.Contains(e.key) || changed.contains(e.key)) return;
    changed.emplace(e.key, e.type == RecordType::kPut && e.meta.create_revision == e.revision);
  });
  if (!s.ok()) return s;

  std::map<std::string, ListItem> state;  // the range at `revision`, as found so far
  for (ListItem& item : now.items) {
    if (!changed.contains(item.key)) state.emplace(item.key, std::move(item));
  }
  // The keys whose state at `revision` is their last event at or before it.
  std::set<std::string> wanted;
  for (const auto& [key, created_after] : changed) {
    if (!created_after) wanted.insert(key);
  }
  if (!wanted.empty()) {
    std::map<std::string, std::optional<ListItem>> last;  // nullopt: deleted
    s = ReadHistory(store, filter, store.HistoryFloor(), revision, [&](const WatchEvent& e) {
      if (!wanted.contains(e.key)) return;
      if (e.type == RecordType::kPut) {
        last[e.key] = ListItem{e.key, keys_only ? std::string() : e.value, e.revision, e.meta};
      } else {
        last[e.key] = std::nullopt;
      }
    });
    if (!s.ok()) return s;
    for (const std::string& key : wanted) {
      auto it = last.find(key);
      if (it == last.end()) {
        return Status::Compacted("the state of a key at revision " + std::to_string(revision) +
                                 " is older than the retained history");
      }
      if (it->second) state.emplace(key, std::move(*it->second));
    }
  }
  past.items.reserve(state.size());
  for (auto& [key, item] : state) past.items.push_back(std::move(item));
  return past;
}

}  // namespace kvctl::core
