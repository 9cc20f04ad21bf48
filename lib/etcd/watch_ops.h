// etcd's watch over the store's watch hub (lib/core/watch.h), with no
// wire format: the watches of one stream, what each create, cancel and
// progress request is answered, and the stream's next message. Both etcd
// faces read their requests into asks and write the replies their own
// way: the JSON gateway (etcd_watch.cpp, whose requests all come in the
// POST's body) and gRPC (etcd_grpc_watch.cpp, a bidirectional stream).
//
// A WatchSet holds no queue of events: each watch pulls from its own
// cursor in the hub when the client can take more (Next), so a client
// that does not read grows nothing here but its watcher's distance behind
// (the hub cuts it off past server.watch_max_lag).
//
// Thread safety: a WatchSet is used by one thread at a time (its face
// serialises); `notify` is called from the hub's threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/key_range.h"
#include "lib/core/kv_store.h"
#include "lib/core/watch.h"
#include "lib/etcd/types.h"

namespace kvctl::server::etcd {

// etcd's watch id of a create that made no watch, and of a progress
// request's answer.
inline constexpr int64_t kNoWatchId = -1;

struct WatchAsk {
  std::string key, range_end;  // as a range's; key "" is the smallest key
  int64_t start_revision = 0;  // 0 or negative: the next revision
  int64_t watch_id = 0;        // 0: the set picks one
  bool prev_kv = false, progress_notify = false;
  bool no_put = false, no_delete = false;  // etcd's NOPUT and NODELETE filters
};

struct WatchEventReply {
  std::shared_ptr<const core::WatchEvent> event;  // a DELETE's value and meta are empty
  std::optional<core::ListItem> prev;             // with prev_kv, when the key was there
};

// One message of the stream: an answer to a request, or a watch's events,
// progress mark or end.
struct WatchReply {
  uint64_t revision = 0;  // the header's; 0 on an end
  int64_t watch_id = 0;
  bool created = false, canceled = false;
  uint64_t compact_revision = 0;  // with canceled: the history is gone up to it
  std::string cancel_reason;
  std::vector<WatchEventReply> events;
};

// Whether the caller may see an event of `key` (null: every key).
using KeyFilter = std::function<bool(std::string_view key)>;

class WatchSet {
 public:
  // `notify` is called, from the hub's threads, whenever a watch may have
  // a message; it may be called after the set is gone, so what it touches
  // must be shared. At most `max_watches` are open at once (what one
  // stream can make the server hold).
  WatchSet(core::KvStore& store, size_t max_watches, std::function<void()> notify);
  ~WatchSet();  // cancels every watch
  WatchSet(const WatchSet&) = delete;
  WatchSet& operator=(const WatchSet&) = delete;

  // A create the face has checked the caller's grants for; `readable`
  // filters its events by key (a prefix watch that may read part of its
  // prefix). Appends its answers: "created" (and "canceled" with the
  // compact revision when its start is compacted away), or etcd's
  // refusal in the stream (an empty range, a duplicate id, too many
  // watches). A store failure is returned instead, nothing appended: the
  // face refuses the stream, or answers Refusal(ask.watch_id, message).
  std::optional<Error> Create(const WatchAsk& ask, KeyFilter readable, std::vector<WatchReply>* answers);
  // etcd's answer to a create that made no watch: created and canceled.
  WatchReply Refusal(int64_t watch_id, std::string reason) const;
  // Ends watch `id` and appends its "canceled"; nothing when no such watch
  // is open (as etcd).
  void Cancel(int64_t id, std::vector<WatchReply>* answers);
  // The answer to a progress request: the store's revision, watch id -1.
  WatchReply Progress() const;

  enum class Pulled { kNothing, kMessage, kStoreClosed };
  // The next message of the watches, which take turns so one busy watch
  // does not hold back the rest; about `max_bytes` of events at most (at
  // least one event). kNothing: none now, `notify` comes when there is.
  // kStoreClosed: the store stopped; the stream should end.
  Pulled Next(size_t max_bytes, WatchReply* out);

  // Ends every watch; `notify` may still come once from a hub thread.
  void CancelAll();

  size_t size() const { return watches_.size(); }

 private:
  struct OneWatch;
  OneWatch* Find(int64_t id);
  Pulled NextOf(size_t i, size_t max_bytes, WatchReply* out);

  core::KvStore& store_;
  const size_t max_watches_;
  std::function<void()> notify_;
  std::vector<std::unique_ptr<OneWatch>> watches_;  // open ones, in the order they were made
  size_t turn_ = 0;
  int64_t next_id_ = 0;  // etcd's next automatic watch id
  core::Watcher::Batch batch_;
};

}  // namespace kvctl::server::etcd
