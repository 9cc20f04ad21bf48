#include "lib/server/metrics.h"

#include <fmt/format.h>

namespace kvctl::server {
namespace {

constexpr const char* kMethodLabels[] = {"GET", "HEAD", "PUT", "DELETE", "POST", "other"};

}  // namespace

const char* RouteLabel(Route route) {
  switch (route) {
    case Route::kKey: return "/v1/kv/{key}";
    case Route::kList: return "/v1/kv";
    case Route::kHealthz: return "/healthz";
    case Route::kReadyz: return "/readyz";
    case Route::kMetrics: return "/metrics";
    case Route::kAdminCompact: return "/v1/admin/compact";
    case Route::kUnknown:
    case Route::kCount: break;
  }
  return "unknown";
}

Method MethodFromString(std::string_view method) {
  for (size_t i = 0; i + 1 < std::size(kMethodLabels); ++i) {
    if (method == kMethodLabels[i]) return static_cast<Method>(i);
  }
  return Method::kOther;
}

void RequestCounters::Count(Route route, Method method, int status) {
  if (status < kMinStatus || status >= kMinStatus + kStatuses) return;
  const size_t i = (static_cast<size_t>(route) * kMethods + static_cast<size_t>(method)) * kStatuses +
                   static_cast<size_t>(status - kMinStatus);
  counts_[i].fetch_add(1, std::memory_order_relaxed);
}

void RequestCounters::Render(std::string* out) const {
  out->append(
      "# HELP kvctl_http_requests_total HTTP requests answered, by route, method and status code.\n"
      "# TYPE kvctl_http_requests_total counter\n");
  for (size_t r = 0; r < kRoutes; ++r) {
    for (size_t m = 0; m < kMethods; ++m) {
      for (int s = 0; s < kStatuses; ++s) {
        const uint64_t n = counts_[(r * kMethods + m) * kStatuses + static_cast<size_t>(s)].load(
            std::memory_order_relaxed);
        if (n == 0) continue;
        out->append(fmt::format(
            "kvctl_http_requests_total{{route=\"{}\",method=\"{}\",code=\"{}\"}} {}\n",
            RouteLabel(static_cast<Route>(r)), kMethodLabels[m], s + kMinStatus, n));
      }
    }
  }
}

}  // namespace kvctl::server
