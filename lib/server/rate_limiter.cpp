#include "lib/server/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace kvctl::server {

RateLimiter::RateLimiter(double rate, double burst)
    : rate_(rate),
      burst_(std::max(1.0, burst)),
      refill_(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(burst_ / rate_))) {}

std::optional<std::chrono::milliseconds> RateLimiter::Acquire(std::string_view client, Clock::time_point now) {
  Shard& shard = shards_[std::hash<std::string_view>{}(client) % kShards];
  std::lock_guard lock(shard.mu);
  if (now - shard.last_sweep >= refill_) SweepLocked(shard, now);

  auto [it, inserted] = shard.buckets.try_emplace(std::string(client), Bucket{burst_, now});
  Bucket& b = it->second;
  if (!inserted && now > b.updated) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.updated = now;
  }
  // Refills add up in floating point: allow for rounding in the sum.
  constexpr double kEpsilon = 1e-9;
  if (b.tokens >= 1.0 - kEpsilon) {
    b.tokens = std::max(0.0, b.tokens - 1.0);
    return std::nullopt;
  }
  const double wait_s = (1.0 - b.tokens) / rate_;
  return std::chrono::milliseconds(static_cast<int64_t>(std::ceil(wait_s * 1000.0)));
}

void RateLimiter::SweepLocked(Shard& shard, Clock::time_point now) const {
  std::erase_if(shard.buckets, [&](const auto& entry) { return now - entry.second.updated >= refill_; });
  shard.last_sweep = now;
}

size_t RateLimiter::clients(Clock::time_point now) {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    // Counting visits every bucket anyway: sweeping on the way costs
    // nothing more, and a shard with no traffic would keep its idle ones.
    SweepLocked(s, now);
    n += s.buckets.size();
  }
  return n;
}

}  // namespace kvctl::server
