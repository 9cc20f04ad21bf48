// The stream of one etcd watch POST (etcd_watch.cpp makes it): the
// answers to the body's requests, in order, then the events of its
// watches, which take turns, one message per Pull (the transport sends
// each as one chunk). It holds no queue of events: each watch pulls from
// its own cursor in the store's watch hub when the client can take more.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/core/key_range.h"
#include "lib/core/watch.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_api.h"
#include "lib/server/http_types.h"
#include "lib/server/wake_slot.h"

namespace kvctl::server::etcd {

// One watch of a stream.
struct OneWatch {
  int64_t id = 0;
  core::KeyRange range;  // its events are those of range; the watcher may cover
                         // more (Covering)
  bool no_put = false;
  bool no_delete = false;
  bool progress_notify = false;
  const Principal* readable = nullptr;  // filters events by its grants; null: all
  std::shared_ptr<core::Watcher> watcher;
  // Events before this revision are not sent; with prev_kv they only bring
  // `prev` up to date (the watcher starts where `prev` was reconstructed).
  uint64_t send_from = 0;
  // With prev_kv: every key of the range as of the last event taken, so
  // that each event can carry the key-value before it (its cost: the
  // range's keys and values, for as long as the watch is open).
  bool with_prev = false;
  std::map<std::string, core::ListItem> prev;
};

// A watch result {"header", "watch_id" (omitted when 0)} to fill in, and
// it as one message of the stream ({"result": ...} and a newline).
nlohmann::ordered_json WatchResult(const EtcdOptions& etcd, uint64_t revision, int64_t watch_id);
std::string WatchMessage(const nlohmann::ordered_json& result);

class EtcdWatchStream : public StreamSource {
 public:
  // `answers`: the requests' answers, sent first, in order. Every watcher
  // of `watches` notifies `slot`.
  EtcdWatchStream(const EtcdOptions& etcd, std::shared_ptr<WakeSlot> slot, std::vector<std::string> answers,
                  std::vector<std::unique_ptr<OneWatch>> watches);
  ~EtcdWatchStream() override;

  void Start(std::function<void()> wake) override;
  bool Pull(size_t max_bytes, std::string* out) override;
  void Cancel() override;

 private:
  enum class Pulled { kNothing, kMessage, kStoreClosed };
  Pulled PullFrom(size_t i, size_t max_bytes, std::string* out);
  static std::optional<core::ListItem> TakeEvent(OneWatch& w, const core::WatchEvent& e);

  const EtcdOptions& etcd_;
  std::shared_ptr<WakeSlot> slot_;
  std::vector<std::string> answers_;
  size_t next_answer_ = 0;
  std::vector<std::unique_ptr<OneWatch>> watches_;  // null: ended
  size_t turn_ = 0;
  core::Watcher::Batch batch_;
};

}  // namespace kvctl::server::etcd
