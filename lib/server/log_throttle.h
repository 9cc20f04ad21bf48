// A bound on how many lines a kind of log event may write: at most
// `per_second` a second, so a flood (a scanner's failed TLS handshakes)
// cannot fill the disk. What is left out is counted, and the next line
// written says how many (the event's metric counts every one).
//
// Thread safety: Allow() may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace kvctl::server {

class LogThrottle {
 public:
  explicit LogThrottle(uint32_t per_second) : per_second_(per_second) {}

  // True when a line may be written at `now`; then `*suppressed` is how
  // many were left out since the last line written.
  bool Allow(std::chrono::steady_clock::time_point now, uint64_t* suppressed);

 private:
  std::mutex mu_;
  const uint32_t per_second_;
  std::chrono::steady_clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace kvctl::server
