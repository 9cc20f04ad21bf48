// The stream of one etcd watch POST (etcd_watch.cpp makes it): the
// answers to the body's requests, in order, then the messages of its
// watches (lib/etcd/watch_ops.h), one per Pull (the transport sends each
// as one chunk). It holds no queue of events: the watch set pulls from
// the store's watch hub when the client can take more.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/etcd/watch_ops.h"
#include "lib/server/etcd_api.h"
#include "lib/server/http_types.h"
#include "lib/server/wake_slot.h"

namespace kvctl::server::etcd {

// A watch reply as the gateway writes it: {"result": {...}} and a newline.
std::string WatchMessage(const EtcdOptions& etcd, const WatchReply& reply);

class EtcdWatchStream : public StreamSource {
 public:
  // `answers`: the requests' answers, sent first, in order. The set's
  // notify wakes `slot`.
  EtcdWatchStream(const EtcdOptions& etcd, std::shared_ptr<WakeSlot> slot, std::vector<std::string> answers,
                  std::unique_ptr<WatchSet> watches);
  ~EtcdWatchStream() override;

  void Start(std::function<void()> wake) override;
  bool Pull(size_t max_bytes, std::string* out) override;
  void Cancel() override;

 private:
  const EtcdOptions& etcd_;
  std::shared_ptr<WakeSlot> slot_;
  std::vector<std::string> answers_;
  size_t next_answer_ = 0;
  std::unique_ptr<WatchSet> watches_;
  WatchReply reply_;
};

}  // namespace kvctl::server::etcd
