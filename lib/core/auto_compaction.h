// Automatic compaction, so a server never fills its disk with history: a
// background thread checks every few seconds and compacts when the log is
// at least `min_bytes` and at least `dead_percent` of it is dead (history
// the live keys no longer need). Redis's auto-aof-rewrite works the same way
// (a minimum size and a growth percentage); kvctl measures dead bytes
// directly, since the store knows what the live keys take.
//
// Thread safety: construct and destroy from one thread; the check runs on
// its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "lib/core/logger.h"
#include "lib/core/store.h"

namespace kvctl::core {

struct AutoCompactionPolicy {
  bool enabled = true;
  uint64_t min_bytes = 64ull << 20;
  uint32_t dead_percent = 50;  // 1..100
  std::chrono::milliseconds check_interval{2000};
  // After a failed compaction (say, a full disk), wait this long to retry.
  std::chrono::milliseconds retry_after_failure{60000};
};

// True when a log of `log_bytes` whose live keys take `live_bytes` should
// be compacted under `policy`.
bool ShouldCompact(const AutoCompactionPolicy& policy, uint64_t log_bytes, uint64_t live_bytes);

class AutoCompactor {
 public:
  // Starts checking `store` (which must outlive this) when policy.enabled.
  AutoCompactor(AutoCompactionPolicy policy, Store& store, Logger& logger);
  ~AutoCompactor();
  AutoCompactor(const AutoCompactor&) = delete;
  AutoCompactor& operator=(const AutoCompactor&) = delete;

  // Stops the thread, waiting for a compaction it runs to finish.
  void Stop();

 private:
  void Loop();

  const AutoCompactionPolicy policy_;
  Store& store_;
  Logger& logger_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kvctl::core
