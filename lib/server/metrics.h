// The server's own metrics for /metrics, lock-free on the request path, and
// the helpers that write Prometheus' text exposition format (version 0.0.4):
// one "# HELP" and "# TYPE" per family, then its samples.
//
// Label values are route patterns, methods, codes and reasons: never keys,
// values or credentials, so a scrape reveals nothing a request carried.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/lease.h"
#include "lib/server/http_types.h"

namespace kvctl::server {

// kAsterisk: "OPTIONS *", about the server as a whole.
// kLeases: /v1/lease; kLease: /v1/lease/{id}; kLeaseKeepAlive: its /keepalive.
enum class Route {
  kKey, kList, kWatch, kTxn, kAdminCompact, kHealthz, kReadyz, kMetrics, kAsterisk,
  kLeases, kLease, kLeaseKeepAlive,
  // Writes a peer forwards to the PostgreSQL backend's writer (api_peer.cpp).
  kPeerWrites,
  // etcd's JSON API (etcd_api.h), by resource.
  kEtcdKv, kEtcdLease, kEtcdWatch, kEtcdCluster, kEtcdVersion,
  kUnknown, kCount
};
enum class Method { kGet, kHead, kPut, kDelete, kPost, kOther, kCount };

const char* RouteLabel(Route route);
Method MethodFromString(std::string_view method);

// Appends "# HELP name help\n# TYPE name type\n".
void AppendFamily(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help);
// Appends a family with one unlabelled sample.
void AppendSingle(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help, uint64_t value);

// A histogram with fixed buckets, in whole units (nanoseconds, changes).
// Observe() is two relaxed atomic adds and a short search; thread-safe.
class Histogram {
 public:
  // `bounds`: the buckets' inclusive upper bounds, increasing. `scale`
  // converts a unit to what the metric reports (1e-9: nanoseconds to
  // seconds, as Prometheus names durations in seconds).
  Histogram(std::span<const uint64_t> bounds, double scale);

  void Observe(uint64_t value);
  void ObserveDuration(std::chrono::nanoseconds took) {
    Observe(took.count() < 0 ? 0 : static_cast<uint64_t>(took.count()));
  }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  // Appends name_bucket{labels,le=...} (cumulative), name_sum and
  // name_count. `labels` is "" or `route="/healthz"` (no braces).
  void Render(std::string* out, std::string_view name, std::string_view labels) const;

 private:
  std::vector<uint64_t> bounds_;
  double scale_;
  std::vector<std::atomic<uint64_t>> buckets_;  // one per bound, plus +Inf
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Bucket bounds shared by the duration histograms: 50 µs to 10 s.
std::span<const uint64_t> LatencyBoundsNs();

// Why a request was refused before its route ran.
// kDuplicate: more than one Authorization field (400): a proxy in front may
// have judged another one than this server would.
enum class AuthFailure { kMissing, kInvalid, kForbidden, kDuplicate, kCount };
const char* AuthFailureLabel(AuthFailure failure);

const char* TlsFailureLabel(TlsFailure failure);

// Appends the lease families: leases alive (gauge), and grants, revokes,
// expiries and keepalives since the server started (counters).
void RenderLeaseMetrics(const core::LeaseStats& stats, std::string* out);

// What the API layer counts: requests by route, method and status; their
// latency by route; refused credentials; rate-limit refusals; failed TLS
// handshakes by reason.
class HttpMetrics {
 public:
  HttpMetrics();

  void CountRequest(Route route, Method method, int status, std::chrono::nanoseconds took);
  void CountAuthFailure(AuthFailure failure);
  void CountRateLimited() { rate_limited_.fetch_add(1, std::memory_order_relaxed); }
  void CountTlsFailure(TlsFailure failure) {
    tls_failures_[static_cast<size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
  }

  // Appends every family.
  void Render(std::string* out) const;

 private:
  static constexpr int kMinStatus = 100;
  static constexpr int kStatuses = 500;  // 100..599
  static constexpr size_t kRoutes = static_cast<size_t>(Route::kCount);
  static constexpr size_t kMethods = static_cast<size_t>(Method::kCount);
  std::array<std::atomic<uint64_t>, kRoutes * kMethods * kStatuses> requests_{};
  std::vector<std::unique_ptr<Histogram>> latency_;  // one per route
  std::array<std::atomic<uint64_t>, static_cast<size_t>(AuthFailure::kCount)> auth_failures_{};
  std::atomic<uint64_t> rate_limited_{0};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(TlsFailure::kCount)> tls_failures_{};
};

// The calls of a gRPC face (etcd's, lib/grpc): counted by method and gRPC
// status code, their latency by method. `route` labels the face
// ("etcd_grpc"); the method names are the face's own fixed list, so the
// labels stay bounded whatever a client calls. Lock-free; thread-safe.
class GrpcMetrics {
 public:
  GrpcMetrics(std::string route, std::vector<std::string> methods);

  // `method` indexes the names given; a code gRPC does not define counts
  // as UNKNOWN.
  void CountCall(size_t method, int code, std::chrono::nanoseconds took);
  // Appends kvctl_grpc_requests_total and kvctl_grpc_request_duration_seconds.
  void Render(std::string* out) const;

 private:
  std::string route_;
  std::vector<std::string> methods_;
  std::unique_ptr<std::atomic<uint64_t>[]> calls_;  // [method * codes + code]
  std::vector<std::unique_ptr<Histogram>> latency_;  // one per method
};

}  // namespace kvctl::server
