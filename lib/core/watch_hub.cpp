#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "lib/core/watch.h"

namespace kvctl::core {
namespace {

using Clock = std::chrono::steady_clock;
using EventPtr = std::shared_ptr<const WatchEvent>;

// A watcher that keeps up is handed the revisions of its matches as they
// are published; past this many waiting, it is moved to reading the
// history in order, which needs no list at all.
constexpr size_t kMaxMatched = 4096;

// How a watcher finds its next events.
enum class Mode {
  kMatched,  // `matched` holds every matching revision from `cursor` on, all in memory
  kScan,     // scan the events in memory from `cursor` (all of them are there)
  kHistory,  // `cursor` is below what memory holds: read the durable history
};

}  // namespace

struct Watcher::State {
  std::weak_ptr<Watcher> self;
  std::function<void()> notify;
  uint64_t cursor = 0;  // the next revision to look at
  Mode mode = Mode::kScan;
  std::deque<uint64_t> matched;   // with kMatched: increasing revisions >= cursor
  bool caught_up_once = false;    // for the lag rule: only a watcher that kept up can lag
  End end = End::kNone;
  std::string why;
  uint64_t compact_revision = 0;
  // History mode: what the history thread read, and whether a read is
  // queued or running.
  std::deque<EventPtr> fetched;
  bool fetching = false;
  std::unique_ptr<EventHistory::Reader> reader;  // used on the history thread only
  Clock::time_point last_sent;
  bool progress_due = false;
};

struct Watcher::Hub {
  WatchHubOptions options;
  EventHistory* history = nullptr;

  mutable std::mutex mu;
  std::deque<EventPtr> memory;  // revision order
  size_t memory_bytes = 0;
  uint64_t head = 0;
  uint64_t memory_floor = 1;  // every event from here on is in `memory`
  bool stopped = false;

  std::unordered_set<Watcher*> watchers;
  // Publish's index: watchers by exact key, and by prefix with the set of
  // prefix lengths in use, so an event finds its watchers in a few lookups.
  std::unordered_map<std::string, std::vector<Watcher*>> by_key;
  std::unordered_map<std::string, std::vector<Watcher*>> by_prefix;
  std::map<size_t, size_t> prefix_lengths;  // length -> watchers with a prefix that long

  uint64_t events_sent = 0;
  uint64_t cut_off = 0;
  uint64_t compacted = 0;
  std::atomic<bool> watching{false};  // whether `watchers` holds any, read without mu

  // The history thread: reads for watchers behind memory, and the progress clock.
  std::condition_variable cv;
  std::deque<std::weak_ptr<Watcher>> fetch_queue;
  std::thread thread;

  uint64_t FloorLocked() const {
    const uint64_t durable = history != nullptr ? history->Floor() : memory_floor;
    return std::min(durable, memory_floor);
  }

  void Index(Watcher* w) {
    auto& list = w->filter().prefix ? by_prefix[w->filter().key] : by_key[w->filter().key];
    list.push_back(w);
    if (w->filter().prefix) ++prefix_lengths[w->filter().key.size()];
  }

  void Unindex(Watcher* w) {
    auto& map = w->filter().prefix ? by_prefix : by_key;
    auto it = map.find(w->filter().key);
    if (it != map.end()) {
      std::erase(it->second, w);
      if (it->second.empty()) map.erase(it);
    }
    if (w->filter().prefix) {
      auto len = prefix_lengths.find(w->filter().key.size());
      if (len != prefix_lengths.end() && --len->second == 0) prefix_lengths.erase(len);
    }
  }

  // Ends `w` (under mu); its next Poll reports it.
  void EndLocked(Watcher* w, Watcher::End end, std::string why = {}) {
    Watcher::State& s = *w->state_;
    if (s.end != Watcher::End::kNone) return;
    s.end = end;
    s.why = std::move(why);
    if (end == Watcher::End::kLagging) ++cut_off;
    if (end == Watcher::End::kCompacted) {
      ++compacted;
      s.compact_revision = FloorLocked() - 1;
    }
    s.matched.clear();
    s.fetched.clear();
  }

  // Drops the oldest events while memory is over its bounds, whole
  // revisions at a time, and moves watchers whose matches went with them
  // to reading in order.
  // Once memory is over a bound, it is brought down to 7/8 of both bounds:
  // each eviction walks every watcher, and evicting a commit's worth at a
  // time would walk them all on every commit of a busy store.
  void EvictLocked() {
    if (memory.size() <= options.memory_events && memory_bytes <= options.memory_bytes) return;
    const uint64_t floor_before = memory_floor;
    const size_t events_goal = options.memory_events - options.memory_events / 8;
    const size_t bytes_goal = options.memory_bytes - options.memory_bytes / 8;
    while (!memory.empty() && (memory.size() > events_goal || memory_bytes > bytes_goal)) {
      const uint64_t revision = memory.front()->revision;
      while (!memory.empty() && memory.front()->revision == revision) {
        memory_bytes -= memory.front()->bytes();
        memory.pop_front();
      }
      memory_floor = revision + 1;
    }
    if (memory_floor == floor_before) return;
    for (Watcher* w : watchers) {
      Watcher::State& s = *w->state_;
      if (s.mode == Mode::kMatched && !s.matched.empty() && s.matched.front() < memory_floor) {
        s.mode = Mode::kScan;
        s.matched.clear();
      }
    }
  }

  // The first event in memory at or after `revision`.
  std::deque<EventPtr>::const_iterator LowerBound(uint64_t revision) const {
    return std::lower_bound(memory.begin(), memory.end(), revision,
                            [](const EventPtr& e, uint64_t r) { return e->revision < r; });
  }

  void QueueFetchLocked(Watcher* w) {
    Watcher::State& s = *w->state_;
    if (s.fetching || s.end != Watcher::End::kNone) return;
    s.fetching = true;
    fetch_queue.push_back(s.self);
    cv.notify_one();
  }

  void Run();
  void Fetch(const std::shared_ptr<Watcher>& w);
  void Tick();
};

// --------------------------------------------------------------- Watcher

Watcher::Watcher(std::shared_ptr<Hub> hub, WatchFilter filter, std::function<void()> notify)
    : hub_(std::move(hub)), filter_(std::move(filter)), state_(std::make_unique<State>()) {
  state_->notify = notify ? std::move(notify) : [] {};
  state_->last_sent = Clock::now();
}

Watcher::~Watcher() { Cancel(); }

void Watcher::Cancel() {
  Hub& hub = *hub_;
  std::lock_guard lock(hub.mu);
  if (hub.watchers.erase(this) == 0) return;
  hub.Unindex(this);
  hub.EndLocked(this, End::kClosed);
  hub.watching.store(!hub.watchers.empty(), std::memory_order_relaxed);
}

uint64_t Watcher::next_revision() const {
  std::lock_guard lock(hub_->mu);
  return state_->cursor;
}

void Watcher::Poll(size_t max_bytes, Batch* out) {
  out->events.clear();
  out->progress = 0;
  out->end = End::kNone;
  out->why.clear();
  Hub& hub = *hub_;
  std::lock_guard lock(hub.mu);
  State& s = *state_;
  size_t bytes = 0;
  auto full = [&] { return !out->events.empty() && bytes >= max_bytes; };
  auto take = [&](const EventPtr& e) {
    out->events.push_back(e);
    bytes += e->bytes();
  };

  // What the history thread read comes first.
  while (!s.fetched.empty() && !full()) {
    const uint64_t revision = s.fetched.front()->revision;
    while (!s.fetched.empty() && s.fetched.front()->revision == revision) {
      take(s.fetched.front());
      s.fetched.pop_front();
    }
  }
  for (;;) {
    if (s.end != End::kNone || full() || s.mode == Mode::kHistory) break;
    if (s.mode == Mode::kMatched) {
      while (!s.matched.empty() && !full()) {
        const uint64_t revision = s.matched.front();
        s.matched.pop_front();
        if (revision < s.cursor) continue;  // before where it asked to start
        for (auto it = hub.LowerBound(revision); it != hub.memory.end() && (*it)->revision == revision; ++it) {
          if (filter_.Matches((*it)->key)) take(*it);
        }
        s.cursor = revision + 1;
      }
      if (s.matched.empty() && s.cursor <= hub.head) s.cursor = hub.head + 1;
      break;
    }
    // kScan: every event from the cursor on is in memory, unless eviction
    // passed it.
    if (s.cursor < hub.memory_floor) {
      s.mode = Mode::kHistory;
      break;
    }
    auto it = hub.LowerBound(s.cursor);
    while (it != hub.memory.end() && !full()) {
      const uint64_t revision = (*it)->revision;
      for (; it != hub.memory.end() && (*it)->revision == revision; ++it) {
        if (filter_.Matches((*it)->key)) take(*it);
      }
      s.cursor = revision + 1;
    }
    if (it == hub.memory.end()) {
      // Up to date: from here on, Publish lists the matches.
      if (s.cursor <= hub.head) s.cursor = hub.head + 1;
      s.mode = Mode::kMatched;
      s.matched.clear();
    }
    break;
  }
  if (s.end == End::kNone && s.mode == Mode::kHistory && s.fetched.empty()) {
    if (hub.history == nullptr || s.cursor < hub.history->Floor()) {
      hub.EndLocked(this, End::kCompacted);
    } else if (s.cursor >= hub.memory_floor) {
      s.mode = Mode::kScan;  // the history brought it up to what memory holds
    } else {
      hub.QueueFetchLocked(this);
    }
  }
  const bool caught_up = s.mode == Mode::kMatched && s.matched.empty() && s.cursor > hub.head;
  if (caught_up) s.caught_up_once = true;

  const auto now = Clock::now();
  if (!out->events.empty()) {
    hub.events_sent += out->events.size();
    s.last_sent = now;
    s.progress_due = false;
  } else if (s.end != End::kNone) {
    out->end = s.end;
    out->why = s.why;
    out->compact_revision = s.compact_revision;
  } else if (caught_up && (s.progress_due || now - s.last_sent >= hub.options.progress_interval)) {
    out->progress = s.cursor - 1;
    s.last_sent = now;
    s.progress_due = false;
  }
}

// --------------------------------------------------------------- WatchHub

WatchHub::WatchHub(WatchHubOptions options, EventHistory* history, uint64_t head)
    : impl_(std::make_shared<Watcher::Hub>()) {
  impl_->options = options;
  impl_->history = history;
  impl_->head = head;
  impl_->memory_floor = head + 1;
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

bool WatchHub::watching() const { return impl_->watching.load(std::memory_order_relaxed); }

WatchHub::~WatchHub() { Shutdown(); }

void WatchHub::Shutdown() {
  std::vector<std::shared_ptr<Watcher>> to_notify;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    for (Watcher* w : impl_->watchers) {
      impl_->EndLocked(w, Watcher::End::kClosed);
      if (auto sp = w->state_->self.lock()) to_notify.push_back(std::move(sp));
    }
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  for (const auto& w : to_notify) {
    w->state_->notify();
  }
}

uint64_t WatchHub::head() const {
  std::lock_guard lock(impl_->mu);
  return impl_->head;
}

uint64_t WatchHub::Floor() const {
  std::lock_guard lock(impl_->mu);
  return impl_->FloorLocked();
}

WatchStats WatchHub::stats() const {
  std::lock_guard lock(impl_->mu);
  return {impl_->watchers.size(), impl_->events_sent, impl_->cut_off,     impl_->compacted,
          impl_->memory.size(),   impl_->memory_bytes};
}

Result<std::shared_ptr<Watcher>> WatchHub::Watch(WatchFilter filter, uint64_t from,
                                                 std::function<void()> notify) {
  // Made before the lock is taken: one that is not kept ends (Cancel)
  // after it is released.
  std::shared_ptr<Watcher> w(new Watcher(impl_, std::move(filter), std::move(notify)));
  Watcher::Hub& hub = *impl_;
  std::unique_lock lock(hub.mu);
  if (hub.stopped) {
    lock.unlock();
    return Status::Unavailable("kvctl is shutting down");
  }
  if (from == 0) from = hub.head + 1;
  const uint64_t floor = hub.FloorLocked();
  if (from < floor) {
    lock.unlock();
    return Status::Compacted(fmt::format(
        "the history before revision {} was compacted: a watch can start from {} at the earliest",
        floor, floor));
  }
  Watcher::State& s = *w->state_;
  s.self = w;
  s.cursor = from;
  if (from > hub.head) {
    s.mode = Mode::kMatched;  // all it will see is still to come
  } else if (from >= hub.memory_floor) {
    s.mode = Mode::kScan;
  } else {
    s.mode = Mode::kHistory;
  }
  hub.watchers.insert(w.get());
  hub.Index(w.get());
  hub.watching.store(true, std::memory_order_relaxed);
  return w;
}

void WatchHub::Publish(std::vector<WatchEvent> events, uint64_t head) {
  std::vector<std::shared_ptr<Watcher>> to_notify;
  {
    Watcher::Hub& hub = *impl_;
    std::lock_guard lock(hub.mu);
    if (hub.stopped) return;
    for (WatchEvent& e : events) {
      auto event = std::make_shared<const WatchEvent>(std::move(e));
      const uint64_t revision = event->revision;
      const std::string& key = event->key;
      hub.memory_bytes += event->bytes();
      hub.memory.push_back(event);
      // Every watcher of this key or of a prefix of it.
      auto visit = [&](const std::vector<Watcher*>& list) {
        for (Watcher* w : list) {
          Watcher::State& s = *w->state_;
          if (s.end != Watcher::End::kNone) continue;
          if (s.mode == Mode::kMatched && revision >= s.cursor &&
              (s.matched.empty() || s.matched.back() != revision)) {
            if (s.matched.size() >= kMaxMatched) {
              s.mode = Mode::kScan;  // it reads in order from its cursor instead
              s.matched.clear();
            } else {
              s.matched.push_back(revision);
            }
          }
          // How far behind its oldest unread match is (a watcher with none
          // waiting is up to date, however long ago it last polled).
          const uint64_t behind_from =
              s.mode != Mode::kMatched ? s.cursor : s.matched.empty() ? head : s.matched.front();
          if (s.caught_up_once && head > behind_from && head - behind_from > hub.options.max_lag) {
            hub.EndLocked(w, Watcher::End::kLagging,
                          fmt::format("the watcher fell more than server.watch_max_lag = {} revisions "
                                      "behind; start again with from = {}",
                                      hub.options.max_lag, std::min(behind_from, s.cursor)));
          }
          if (auto sp = s.self.lock()) to_notify.push_back(std::move(sp));
        }
      };
      if (auto it = hub.by_key.find(key); it != hub.by_key.end()) visit(it->second);
      for (const auto& [length, count] : hub.prefix_lengths) {
        if (length > key.size()) break;
        if (auto it = hub.by_prefix.find(key.substr(0, length)); it != hub.by_prefix.end()) visit(it->second);
      }
    }
    if (head > hub.head) hub.head = head;
    hub.EvictLocked();
  }
  // One notify per watcher per commit.
  std::sort(to_notify.begin(), to_notify.end());
  to_notify.erase(std::unique(to_notify.begin(), to_notify.end()), to_notify.end());
  for (const auto& w : to_notify) {
    w->state_->notify();
  }
}

void WatchHub::Advance(uint64_t head) { Reset(head); }

void WatchHub::Reset(uint64_t head) {
  std::vector<std::shared_ptr<Watcher>> to_notify;
  {
    Watcher::Hub& hub = *impl_;
    std::lock_guard lock(hub.mu);
    hub.memory.clear();
    hub.memory_bytes = 0;
    hub.head = std::max(hub.head, head);
    hub.memory_floor = hub.head + 1;
    // Watchers that memory no longer serves (none, when this is Advance
    // with no one watching, but for one that arrived meanwhile) read the
    // history from their cursor on.
    for (Watcher* w : hub.watchers) {
      Watcher::State& s = *w->state_;
      if (s.mode != Mode::kHistory && s.cursor <= hub.head) {
        s.mode = Mode::kScan;  // its next Poll finds it below memory: history
        s.matched.clear();
        if (auto sp = s.self.lock()) to_notify.push_back(std::move(sp));
      }
    }
  }
  for (const auto& w : to_notify) w->state_->notify();
}

// --------------------------------------------------------------- history thread

void Watcher::Hub::Run() {
  std::unique_lock lock(mu);
  auto next_tick = Clock::now() + std::chrono::seconds(1);
  while (!stopped) {
    cv.wait_until(lock, next_tick, [&] { return stopped || !fetch_queue.empty(); });
    if (stopped) break;
    if (!fetch_queue.empty()) {
      std::shared_ptr<Watcher> w = fetch_queue.front().lock();
      fetch_queue.pop_front();
      lock.unlock();
      if (w) Fetch(w);
      w.reset();  // the last reference may end it, which takes `mu`
      lock.lock();
    }
    if (Clock::now() >= next_tick) {
      lock.unlock();
      Tick();
      lock.lock();
      next_tick = Clock::now() + std::chrono::seconds(1);
    }
  }
}

// One bounded read of the durable history for `w`, on the history thread.
void Watcher::Hub::Fetch(const std::shared_ptr<Watcher>& w) {
  Watcher::State& s = *w->state_;
  uint64_t from = 0, to = 0;
  {
    std::lock_guard lock(mu);
    if (s.end != Watcher::End::kNone) return;
    from = s.cursor;
    to = memory_floor - 1;  // what memory holds is read from there
    if (from > to) {
      s.fetching = false;
      s.mode = Mode::kScan;
      from = 0;  // nothing to read: notify, outside the lock
    }
  }
  if (from == 0) {
    s.notify();
    return;
  }
  if (!s.reader) s.reader = history->OpenReader(w->filter());
  std::vector<WatchEvent> read;
  Result<uint64_t> next = s.reader->Read(from, to, options.history_batch_bytes, &read);
  std::function<void()> notify;
  {
    std::lock_guard lock(mu);
    s.fetching = false;
    if (s.end != Watcher::End::kNone) return;
    if (!next) {
      if (next.error().IsCompacted()) {
        EndLocked(w.get(), Watcher::End::kCompacted);
      } else {
        EndLocked(w.get(), Watcher::End::kFailed, next.error().message());
      }
    } else {
      for (WatchEvent& e : read) s.fetched.push_back(std::make_shared<const WatchEvent>(std::move(e)));
      s.cursor = *next;
      if (s.cursor >= memory_floor) s.mode = Mode::kScan;
    }
    notify = s.notify;
  }
  notify();
}

// Progress marks for watchers that have had nothing to say for a while.
void Watcher::Hub::Tick() {
  std::vector<std::shared_ptr<Watcher>> due;
  {
    std::lock_guard lock(mu);
    const auto now = Clock::now();
    for (Watcher* w : watchers) {
      Watcher::State& s = *w->state_;
      if (s.end != Watcher::End::kNone || s.progress_due) continue;
      if (now - s.last_sent >= options.progress_interval) {
        s.progress_due = true;
        if (auto sp = s.self.lock()) due.push_back(std::move(sp));
      }
    }
  }
  for (const auto& w : due) {
    w->state_->notify();
  }
}

}  // namespace kvctl::core
