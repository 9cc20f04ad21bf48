// A token bucket per client (SPEC §2): each client may make `burst`
// requests at once and `rate` per second after that; a refused request
// learns how long until its next token.
//
// Buckets live in a few independently locked shards, so clients rarely
// wait on each other. A bucket that has been idle long enough to refill is
// indistinguishable from a new one, so it is dropped: a shard sweeps out
// such buckets at most once per refill period when it is used, and every
// shard is swept when clients() counts them (each /metrics scrape), so
// memory follows the number of recently active clients, not of all
// clients ever seen, and the count is of live buckets only, even for
// shards no request has touched since their clients went quiet.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kvctl::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // rate: tokens per second (> 0); burst: bucket size (>= 1).
  RateLimiter(double rate, double burst);

  // Takes a token from `client`'s bucket. nullopt: allowed. Otherwise
  // refused, with the time until a token will be there.
  std::optional<std::chrono::milliseconds> Acquire(std::string_view client, Clock::time_point now);
  std::optional<std::chrono::milliseconds> Acquire(std::string_view client) {
    return Acquire(client, Clock::now());
  }

  // Clients seen within one refill period (burst / rate): the buckets
  // that are not yet full again. Drops the others.
  size_t clients(Clock::time_point now);
  size_t clients() { return clients(Clock::now()); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Bucket> buckets;
    Clock::time_point last_sweep{};
  };
  static constexpr size_t kShards = 16;

  void SweepLocked(Shard& shard, Clock::time_point now) const;

  const double rate_;
  const double burst_;
  const Clock::duration refill_;  // time for an empty bucket to fill
  std::array<Shard, kShards> shards_;
};

}  // namespace kvctl::server
