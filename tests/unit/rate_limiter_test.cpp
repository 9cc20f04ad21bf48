// Tests for lib/server/rate_limiter.h, on a clock the test moves.
#include "lib/server/rate_limiter.h"

#include <doctest/doctest.h>

#include <string>

namespace kvctl::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_SUITE_BEGIN("rate_limiter");

TEST_CASE("a client gets its burst at once, then is refused with the time to its next token") {
  RateLimiter limiter(2.0, 3.0);  // 2 per second, 3 at once
  const auto t0 = RateLimiter::Clock::time_point{} + seconds(100);
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.Acquire("a", t0).has_value());
  auto wait = limiter.Acquire("a", t0);
  REQUIRE(wait.has_value());
  CHECK(*wait == milliseconds(500));  // one token at 2/s
  // Other clients have their own buckets.
  CHECK_FALSE(limiter.Acquire("b", t0).has_value());
}

TEST_CASE("tokens come back at the rate, never beyond the burst") {
  RateLimiter limiter(10.0, 2.0);
  auto t = RateLimiter::Clock::time_point{} + seconds(100);
  CHECK_FALSE(limiter.Acquire("a", t).has_value());
  CHECK_FALSE(limiter.Acquire("a", t).has_value());
  CHECK(limiter.Acquire("a", t).has_value());
  t += milliseconds(100);  // one token back
  CHECK_FALSE(limiter.Acquire("a", t).has_value());
  CHECK(limiter.Acquire("a", t).has_value());
  t += seconds(60);  // a long pause refills to the burst only
  CHECK_FALSE(limiter.Acquire("a", t).has_value());
  CHECK_FALSE(limiter.Acquire("a", t).has_value());
  CHECK(limiter.Acquire("a", t).has_value());
}

TEST_CASE("refused requests do not take tokens, so a client recovers at the rate") {
  RateLimiter limiter(1.0, 1.0);
  auto t = RateLimiter::Clock::time_point{} + seconds(100);
  CHECK_FALSE(limiter.Acquire("a", t).has_value());
  for (int i = 0; i < 100; ++i) CHECK(limiter.Acquire("a", t + milliseconds(i)).has_value());
  CHECK_FALSE(limiter.Acquire("a", t + seconds(1)).has_value());
}

TEST_CASE("idle buckets are dropped once they would have refilled") {
  RateLimiter limiter(100.0, 100.0);  // refills in 1 s
  auto t = RateLimiter::Clock::time_point{} + seconds(100);
  for (int i = 0; i < 1000; ++i) CHECK_FALSE(limiter.Acquire("client-" + std::to_string(i), t).has_value());
  CHECK(limiter.clients(t) == 1000);
  // Every shard sweeps on its next use after a refill period (256 new
  // clients reach all 16 shards).
  t += seconds(2);
  for (int i = 0; i < 256; ++i) CHECK_FALSE(limiter.Acquire("late-" + std::to_string(i), t).has_value());
  CHECK(limiter.clients(t) == 256);
}

TEST_CASE("clients() counts only buckets used within a refill period, with no traffic after") {
  RateLimiter limiter(100.0, 100.0);  // refills in 1 s
  auto t = RateLimiter::Clock::time_point{} + seconds(100);
  // 1500 clients, then silence: no Acquire sweeps a shard any more.
  for (int i = 0; i < 1500; ++i) CHECK_FALSE(limiter.Acquire("client-" + std::to_string(i), t).has_value());
  CHECK(limiter.clients(t) == 1500);
  CHECK(limiter.clients(t + milliseconds(900)) == 1500);  // within the refill period: still counted
  // Before: 1500 buckets stayed (and were counted) until each shard's next
  // request; the gauge said "seen within one refill period".
  CHECK(limiter.clients(t + seconds(11)) == 0);
  // One client back: one bucket, fresh.
  CHECK_FALSE(limiter.Acquire("client-7", t + seconds(12)).has_value());
  CHECK(limiter.clients(t + seconds(12)) == 1);
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::server
