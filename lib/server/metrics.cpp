#include "lib/server/metrics.h"

#include <algorithm>

#include <fmt/format.h>

#include "lib/etcd/types.h"

namespace kvctl::server {
namespace {

constexpr const char* kMethodLabels[] = {"GET", "HEAD", "PUT", "DELETE", "POST", "other"};

constexpr uint64_t kUs = 1000;
constexpr uint64_t kMs = 1000 * kUs;
constexpr uint64_t kS = 1000 * kMs;
constexpr uint64_t kLatencyBounds[] = {50 * kUs,  100 * kUs, 250 * kUs, 500 * kUs, 1 * kMs,
                                       2500 * kUs, 5 * kMs,  10 * kMs,  25 * kMs,  50 * kMs,
                                       100 * kMs, 250 * kMs, 500 * kMs, 1 * kS,    2500 * kMs,
                                       5 * kS,    10 * kS};

// A sample value as Prometheus writes floats: shortest round-trip form.
std::string FloatText(double v) { return fmt::format("{}", v); }

std::string Braced(std::string_view labels, std::string_view extra) {
  if (labels.empty() && extra.empty()) return "";
  if (labels.empty()) return fmt::format("{{{}}}", extra);
  if (extra.empty()) return fmt::format("{{{}}}", labels);
  return fmt::format("{{{},{}}}", labels, extra);
}

}  // namespace

const char* RouteLabel(Route route) {
  switch (route) {
    case Route::kKey: return "/v1/kv/{key}";
    case Route::kList: return "/v1/kv";
    case Route::kWatch: return "/v1/watch";
    case Route::kTxn: return "/v1/txn";
    case Route::kHealthz: return "/healthz";
    case Route::kReadyz: return "/readyz";
    case Route::kMetrics: return "/metrics";
    case Route::kAdminCompact: return "/v1/admin/compact";
    case Route::kAsterisk: return "*";
    case Route::kLeases: return "/v1/lease";
    case Route::kLease: return "/v1/lease/{id}";
    case Route::kLeaseKeepAlive: return "/v1/lease/{id}/keepalive";
    case Route::kPeerWrites: return "/v1/peer/writes";
    case Route::kEtcdKv: return "etcd:/v3/kv";
    case Route::kEtcdLease: return "etcd:/v3/lease";
    case Route::kEtcdWatch: return "etcd:/v3/watch";
    case Route::kEtcdCluster: return "etcd:/v3/cluster";
    case Route::kEtcdVersion: return "etcd:/version";
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

void AppendFamily(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out->append(fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type));
}

void AppendSingle(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help, uint64_t value) {
  AppendFamily(out, name, type, help);
  out->append(fmt::format("{} {}\n", name, value));
}

void RenderLeaseMetrics(const core::LeaseStats& stats, std::string* out) {
  AppendSingle(out, "kvctl_leases", "gauge", "Leases alive now.", stats.leases);
  AppendSingle(out, "kvctl_lease_grants_total", "counter", "Leases granted by this server.", stats.granted);
  AppendSingle(out, "kvctl_lease_revokes_total", "counter", "Leases revoked by this server.", stats.revoked);
  AppendSingle(out, "kvctl_lease_expiries_total", "counter",
               "Leases that expired (their keys deleted) on this server.", stats.expired);
  AppendSingle(out, "kvctl_lease_keepalives_total", "counter", "Lease keepalives answered by this server.",
               stats.keepalives);
}

Histogram::Histogram(std::span<const uint64_t> bounds, double scale)
    : bounds_(bounds.begin(), bounds.end()), scale_(scale), buckets_(bounds.size() + 1) {}

void Histogram::Observe(uint64_t value) {
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void Histogram::Render(std::string* out, std::string_view name, std::string_view labels) const {
  // Read the buckets first and derive the count from them, so a scrape
  // racing an Observe() still shows +Inf == _count.
  uint64_t cumulative = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const std::string le =
        i < bounds_.size() ? FloatText(static_cast<double>(bounds_[i]) * scale_) : "+Inf";
    out->append(fmt::format("{}_bucket{} {}\n", name, Braced(labels, fmt::format("le=\"{}\"", le)),
                            cumulative));
  }
  out->append(fmt::format("{}_sum{} {}\n", name, Braced(labels, ""),
                          FloatText(static_cast<double>(sum_.load(std::memory_order_relaxed)) * scale_)));
  out->append(fmt::format("{}_count{} {}\n", name, Braced(labels, ""), cumulative));
}

std::span<const uint64_t> LatencyBoundsNs() { return kLatencyBounds; }

const char* AuthFailureLabel(AuthFailure failure) {
  switch (failure) {
    case AuthFailure::kMissing: return "missing_credentials";
    case AuthFailure::kInvalid: return "invalid_token";
    case AuthFailure::kForbidden: return "forbidden";
    case AuthFailure::kDuplicate: return "duplicate_authorization";
    case AuthFailure::kCount: break;
  }
  return "unknown";
}

const char* TlsFailureLabel(TlsFailure failure) {
  switch (failure) {
    case TlsFailure::kTimeout: return "timeout";
    case TlsFailure::kNotTls: return "not_tls";
    case TlsFailure::kNoClientCert: return "no_client_certificate";
    case TlsFailure::kBadClientCert: return "bad_client_certificate";
    case TlsFailure::kRejectedByClient: return "rejected_by_client";
    case TlsFailure::kClosed: return "closed";
    case TlsFailure::kOther:
    case TlsFailure::kCount: break;
  }
  return "other";
}

HttpMetrics::HttpMetrics() {
  latency_.reserve(kRoutes);
  for (size_t r = 0; r < kRoutes; ++r) latency_.push_back(std::make_unique<Histogram>(LatencyBoundsNs(), 1e-9));
}

void HttpMetrics::CountRequest(Route route, Method method, int status, std::chrono::nanoseconds took) {
  latency_[static_cast<size_t>(route)]->ObserveDuration(took);
  if (status < kMinStatus || status >= kMinStatus + kStatuses) return;
  const size_t i = (static_cast<size_t>(route) * kMethods + static_cast<size_t>(method)) * kStatuses +
                   static_cast<size_t>(status - kMinStatus);
  requests_[i].fetch_add(1, std::memory_order_relaxed);
}

void HttpMetrics::CountAuthFailure(AuthFailure failure) {
  auth_failures_[static_cast<size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
}

void HttpMetrics::Render(std::string* out) const {
  AppendFamily(out, "kvctl_http_requests_total", "counter",
               "HTTP requests answered, by route, method and status code.");
  for (size_t r = 0; r < kRoutes; ++r) {
    for (size_t m = 0; m < kMethods; ++m) {
      for (int s = 0; s < kStatuses; ++s) {
        const uint64_t n = requests_[(r * kMethods + m) * kStatuses + static_cast<size_t>(s)].load(
            std::memory_order_relaxed);
        if (n == 0) continue;
        out->append(fmt::format(
            "kvctl_http_requests_total{{route=\"{}\",method=\"{}\",code=\"{}\"}} {}\n",
            RouteLabel(static_cast<Route>(r)), kMethodLabels[m], s + kMinStatus, n));
      }
    }
  }

  AppendFamily(out, "kvctl_http_request_duration_seconds", "histogram",
               "Time from a request's arrival at the API to its answer, by route.");
  for (size_t r = 0; r < kRoutes; ++r) {
    if (latency_[r]->count() == 0) continue;
    latency_[r]->Render(out, "kvctl_http_request_duration_seconds",
                       fmt::format("route=\"{}\"", RouteLabel(static_cast<Route>(r))));
  }

  AppendFamily(out, "kvctl_auth_failures_total", "counter",
               "Requests refused for their credentials: missing (401), invalid (401), "
               "outside the caller's grants (403), or more than one Authorization field (400).");
  for (size_t f = 0; f < auth_failures_.size(); ++f) {
    out->append(fmt::format("kvctl_auth_failures_total{{reason=\"{}\"}} {}\n",
                            AuthFailureLabel(static_cast<AuthFailure>(f)),
                            auth_failures_[f].load(std::memory_order_relaxed)));
  }
  AppendSingle(out, "kvctl_ratelimit_refusals_total", "counter",
               "Requests refused with 429 by the per-client rate limit.",
               rate_limited_.load(std::memory_order_relaxed));
  AppendFamily(out, "kvctl_tls_handshake_failures_total", "counter",
               "TLS handshakes that failed or timed out, by reason; no request was read on them.");
  for (size_t f = 0; f < tls_failures_.size(); ++f) {
    out->append(fmt::format("kvctl_tls_handshake_failures_total{{reason=\"{}\"}} {}\n",
                            TlsFailureLabel(static_cast<TlsFailure>(f)),
                            tls_failures_[f].load(std::memory_order_relaxed)));
  }
}

GrpcMetrics::GrpcMetrics(std::string route, std::vector<std::string> methods)
    : route_(std::move(route)),
      methods_(std::move(methods)),
      calls_(new std::atomic<uint64_t>[methods_.size() * etcd::kGrpcCodes]()) {
  latency_.reserve(methods_.size());
  for (size_t m = 0; m < methods_.size(); ++m) latency_.push_back(std::make_unique<Histogram>(LatencyBoundsNs(), 1e-9));
}

void GrpcMetrics::CountCall(size_t method, int code, std::chrono::nanoseconds took) {
  if (method >= methods_.size()) return;
  if (code < 0 || code >= etcd::kGrpcCodes) code = 2;  // UNKNOWN
  calls_[method * etcd::kGrpcCodes + static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
  latency_[method]->ObserveDuration(took);
}

void GrpcMetrics::Render(std::string* out) const {
  AppendFamily(out, "kvctl_grpc_requests_total", "counter",
               "gRPC calls answered, by face, method and gRPC status code.");
  for (size_t m = 0; m < methods_.size(); ++m) {
    for (int c = 0; c < etcd::kGrpcCodes; ++c) {
      const uint64_t n = calls_[m * etcd::kGrpcCodes + static_cast<size_t>(c)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out->append(fmt::format("kvctl_grpc_requests_total{{route=\"{}\",method=\"{}\",code=\"{}\"}} {}\n", route_,
                              methods_[m], etcd::GrpcCodeName(c), n));
    }
  }
  AppendFamily(out, "kvctl_grpc_request_duration_seconds", "histogram",
               "Time from a gRPC call's admission to its end (a stream: while it was open), by face and method.");
  for (size_t m = 0; m < methods_.size(); ++m) {
    if (latency_[m]->count() == 0) continue;
    latency_[m]->Render(out, "kvctl_grpc_request_duration_seconds",
                        fmt::format("route=\"{}\",method=\"{}\"", route_, methods_[m]));
  }
}

}  // namespace kvctl::server
