// Request counters for /metrics, lock-free on the request path: one atomic
// per (route, method, status code), rendered in Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace kvctl::server {

enum class Route { kKey, kList, kAdminCompact, kHealthz, kReadyz, kMetrics, kUnknown, kCount };
enum class Method { kGet, kHead, kPut, kDelete, kPost, kOther, kCount };

const char* RouteLabel(Route route);
Method MethodFromString(std::string_view method);

class RequestCounters {
 public:
  void Count(Route route, Method method, int status);
  // Appends the counter family (HELP, TYPE and every non-zero series).
  void Render(std::string* out) const;

 private:
  static constexpr int kMinStatus = 100;
  static constexpr int kStatuses = 500;  // 100..599
  static constexpr size_t kRoutes = static_cast<size_t>(Route::kCount);
  static constexpr size_t kMethods = static_cast<size_t>(Method::kCount);
  std::array<std::atomic<uint64_t>, kRoutes * kMethods * kStatuses> counts_{};
};

}  // namespace kvctl::server
