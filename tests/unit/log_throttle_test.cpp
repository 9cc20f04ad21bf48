// LogThrottle: at most N lines a second, and the count of those left out.
#include "lib/server/log_throttle.h"

#include <doctest/doctest.h>

#include <chrono>

namespace kvctl::server {
namespace {

using std::chrono::milliseconds;

TEST_CASE("a throttle lets N lines a second through and says how many it left out before the next") {
  LogThrottle throttle(3);
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    CHECK(throttle.Allow(t0 + milliseconds(i), &suppressed));
    CHECK(suppressed == 0);
  }
  for (int i = 0; i < 5; ++i) CHECK_FALSE(throttle.Allow(t0 + milliseconds(100 + i), &suppressed));
  CHECK_FALSE(throttle.Allow(t0 + milliseconds(999), &suppressed));
  // A new second: the next line says six were left out, and the count starts again.
  CHECK(throttle.Allow(t0 + milliseconds(1000), &suppressed));
  CHECK(suppressed == 6);
  CHECK(throttle.Allow(t0 + milliseconds(1001), &suppressed));
  CHECK(suppressed == 0);
}

}  // namespace
}  // namespace kvctl::server
