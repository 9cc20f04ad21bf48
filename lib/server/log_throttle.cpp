#include "lib/server/log_throttle.h"

namespace kvctl::server {

bool LogThrottle::Allow(std::chrono::steady_clock::time_point now, uint64_t* suppressed) {
  std::lock_guard lock(mu_);
  if (now - window_start_ >= std::chrono::seconds(1)) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= per_second_) {
    ++suppressed_;
    return false;
  }
  ++in_window_;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace kvctl::server
