// Watches (SPEC §6): every change from a revision on, in revision order,
// none lost, repeated or merged, on both backends.
//
// Shape (etcd's watchable store, STYLE.md "Streams are bounded queues"):
// - The backend's committer publishes each commit's events to a WatchHub
//   once they are applied (readable), in revision order.
// - The hub keeps the most recent events in memory (bounded in count and
//   bytes). A watcher is a cursor into the history: the next revision it
//   will look at, plus, while it keeps up, a short list of the revisions in
//   memory that match its filter. It holds no events of its own: whoever
//   serves it pulls (Poll) when its client can take more, so a client that
//   does not read grows nothing but its own distance behind.
// - Older events come from the backend's durable history (EventHistory:
//   the file backend's segments, PostgreSQL's kv_log), read on the hub's
//   own thread, never on the caller's, a bounded batch at a time.
// - A watcher that had caught up and then falls more than max_lag
//   revisions behind is cut off (kLagging); one whose next revision is no
//   longer in any history is cut off too (kCompacted). Either can start
//   again with `from` = its next revision.
// - While nothing matches, Poll offers a progress mark at least every
//   progress_interval: the watcher is up to date through that revision.
//
// Thread safety: every method may be called from any thread. `notify`
// callbacks run on the hub's threads or the publisher's, outside the hub's
// locks, and must be quick (wake whoever polls); one may still come just
// after Cancel().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/key_meta.h"
#include "lib/core/log_format.h"
#include "lib/core/status.h"

namespace kvctl::core {

// One change as a watcher sees it: a PUT with the key's value and metadata
// after it, or a DELETE (metadata zero).
struct WatchEvent {
  uint64_t revision = 0;
  RecordType type = RecordType::kPut;
  std::string key;
  std::string value;
  KeyMeta meta;

  size_t bytes() const { return key.size() + value.size(); }
};

// Which keys a watch covers: one key, or every key with a prefix ("" is
// every key).
struct WatchFilter {
  std::string key;
  bool prefix = false;

  bool Matches(std::string_view k) const { return prefix ? k.starts_with(key) : k == key; }
};

// A backend's durable history, for watchers behind what the hub keeps in
// memory. Calls may block (disk, database); the hub makes them on its own
// history thread.
class EventHistory {
 public:
  virtual ~EventHistory() = default;

  // The oldest revision it still holds; revisions before it were compacted.
  virtual uint64_t Floor() const = 0;

  // Reads one watcher's way through the history, keeping its place between
  // calls (a file offset, a query position).
  class Reader {
   public:
    virtual ~Reader() = default;
    // Appends the events matching the reader's filter with revisions in
    // [from, to], in revision order, stopping once `max_bytes` of keys and
    // values are out (at least one event is, when any matches). Returns the
    // revision to go on from: past the last event given, or to + 1 when the
    // range is done. Errors: Compacted (`from` is no longer held),
    // IOError or Unavailable (the read failed; the watcher ends).
    virtual Result<uint64_t> Read(uint64_t from, uint64_t to, size_t max_bytes,
                                  std::vector<WatchEvent>* out) = 0;
  };
  virtual std::unique_ptr<Reader> OpenReader(const WatchFilter& filter) = 0;
};

struct WatchHubOptions {
  // Recent events kept in memory for watchers: at most this many, and at
  // most this many bytes of keys and values.
  size_t memory_events = 100000;
  size_t memory_bytes = 64ull << 20;
  // A progress mark at least this often while nothing matches.
  std::chrono::milliseconds progress_interval{10000};
  // A watcher that caught up and then falls more than this many revisions
  // behind is cut off (server.watch_max_lag).
  uint64_t max_lag = 10000;
  // Bytes of history read for one watcher at a time.
  size_t history_batch_bytes = 256 << 10;
};

class WatchHub;

class Watcher {
 public:
  enum class End {
    kNone,       // open
    kCompacted,  // its next revision is no longer in any history
    kLagging,    // it fell more than max_lag revisions behind
    kClosed,     // the hub stopped, or Cancel()
    kFailed,     // reading the history failed (message in `why`)
  };

  struct Batch {
    std::vector<std::shared_ptr<const WatchEvent>> events;  // in revision order
    // When set (no events): nothing matching up to and including this
    // revision; the stream is alive and up to date through it.
    uint64_t progress = 0;
    End end = End::kNone;
    uint64_t compact_revision = 0;  // with kCompacted: the last revision compacted away
    std::string why;                // with kFailed or kLagging
  };

  // Takes what is ready without waiting, up to about `max_bytes` of keys
  // and values (at least one event when any is ready). An empty batch with
  // end == kNone: nothing now; `notify` will be called when there is.
  // Once a batch carries an end, the watcher is finished.
  void Poll(size_t max_bytes, Batch* out);
  // Ends the watch (the client went away): no notify starts after it
  // returns, but one already under way on another thread may still run, so
  // what `notify` touches must not die with the caller's handle (share it).
  void Cancel();

  // The next revision the watcher will look at.
  uint64_t next_revision() const;
  const WatchFilter& filter() const { return filter_; }

  ~Watcher();
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

 private:
  friend class WatchHub;
  struct State;
  struct Hub;  // WatchHub's shared state, which a watcher may outlive the hub with
  Watcher(std::shared_ptr<Hub> hub, WatchFilter filter, std::function<void()> notify);

  const std::shared_ptr<Hub> hub_;
  const WatchFilter filter_;
  std::unique_ptr<State> state_;  // guarded by the hub's lock
};

struct WatchStats {
  uint64_t watchers = 0;      // open now
  uint64_t events_sent = 0;   // handed out by Poll, in total
  uint64_t cut_off = 0;       // ended kLagging, in total
  uint64_t compacted = 0;     // ended kCompacted, in total
  uint64_t memory_events = 0;
  uint64_t memory_bytes = 0;
};

class WatchHub {
 public:
  // `history` (may be null: memory only) must outlive the hub. `head` is
  // the revision the store is at when the hub starts.
  WatchHub(WatchHubOptions options, EventHistory* history, uint64_t head);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // The events of one commit, in revision order, once readers can see them;
  // `head` is the store's revision after them (>= the last event's).
  void Publish(std::vector<WatchEvent> events, uint64_t head);
  // Instead of Publish while no one watches: the head moves on, and memory
  // holds nothing before it (a watcher arriving later reads the history).
  void Advance(uint64_t head);
  // Whether anyone watches now (a publisher that finds no one need not
  // make events).
  bool watching() const;
  // The backend dropped its history and state (a reload): events up to
  // `head` are no longer known to the hub; watchers behind it read the
  // durable history or are compacted.
  void Reset(uint64_t head);

  // A watcher of `filter` from revision `from` (0: the next revision; past
  // the head: it waits for it). Compacted when `from` is below Floor().
  Result<std::shared_ptr<Watcher>> Watch(WatchFilter filter, uint64_t from, std::function<void()> notify);

  uint64_t head() const;
  // The oldest revision a watch can start from.
  uint64_t Floor() const;
  WatchStats stats() const;

  // Ends every watcher (kClosed) and stops the hub's threads.
  void Shutdown();

 private:
  std::shared_ptr<Watcher::Hub> impl_;
};

}  // namespace kvctl::core
