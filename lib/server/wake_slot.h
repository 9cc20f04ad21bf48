// Where a watcher's notify finds the transport's wake once a stream has
// started: the watcher is made first (so a refusal is answered before any
// stream begins), and its notify may fire before the stream exists. Shared
// by every face's watch stream (api_watch.cpp, etcd_watch.cpp).
#pragma once

#include <functional>
#include <mutex>

namespace kvctl::server {

struct WakeSlot {
  std::mutex mu;
  std::function<void()> wake;

  void Notify() {
    std::function<void()> w;
    {
      std::lock_guard lock(mu);
      w = wake;
    }
    if (w) w();
  }
};

}  // namespace kvctl::server
