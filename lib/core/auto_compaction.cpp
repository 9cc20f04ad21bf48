#include "lib/core/auto_compaction.h"

#include <fmt/format.h>

namespace kvctl::core {

bool ShouldCompact(const AutoCompactionPolicy& policy, uint64_t log_bytes, uint64_t live_bytes) {
  if (!policy.enabled || log_bytes < policy.min_bytes || log_bytes <= live_bytes) return false;
  const uint64_t dead = log_bytes - live_bytes;
  // dead / log >= percent / 100, without floating point or overflow.
  return dead / 100 * 100 >= log_bytes / 100 * policy.dead_percent;
}

AutoCompactor::AutoCompactor(AutoCompactionPolicy policy, Store& store, Logger& logger)
    : policy_(policy), store_(store), logger_(logger) {
  if (policy_.enabled) thread_ = std::thread([this] { Loop(); });
}

AutoCompactor::~AutoCompactor() { Stop(); }

void AutoCompactor::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AutoCompactor::Loop() {
  std::unique_lock lock(mu_);
  auto wait = policy_.check_interval;
  while (!cv_.wait_for(lock, wait, [&] { return stopping_; })) {
    wait = policy_.check_interval;
    const uint64_t log_bytes = store_.LogDiskBytes();
    const uint64_t live_bytes = store_.stats().live_bytes;
    if (!ShouldCompact(policy_, log_bytes, live_bytes)) continue;
    lock.unlock();
    logger_.Info("automatic compaction starts",
                 {{"log_bytes", std::to_string(log_bytes)}, {"live_bytes", std::to_string(live_bytes)}});
    auto result = store_.Compact();
    lock.lock();
    if (!result) {
      logger_.Error("automatic compaction failed; will retry",
                    {{"cause", result.error().message()},
                     {"retry_in_s", std::to_string(policy_.retry_after_failure.count() / 1000)}});
      wait = policy_.retry_after_failure;
    }
  }
}

}  // namespace kvctl::core
