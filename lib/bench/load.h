// The load generator behind `kvctl bench`: keep-alive HTTP/1.1 connections
// driven by a few epoll threads, GETs, PUTs and 3-key transactions (POST
// /v1/txn) of fixed-size keys and values, latency into log-linear
// histograms.
//
// Closed loop (rate = 0): each connection sends its next request as soon as
// the last answer is in, so throughput is what the server sustains.
// Open loop (rate > 0): each connection has a timetable (rate / clients
// requests a second) and latency runs from the time a request was due, not
// from when it went out, so a stalled server shows up in the percentiles
// instead of hiding behind fewer samples (no coordinated omission).
//
// Its own cost per request is one send and one recv on a reused buffer and
// one histogram increment; the README shows it reaching what wrk reaches
// against nginx. With TLS each connection runs its session through
// lib/tls/tls_stream.h (lib/bench/bench_tls.h makes the context).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "lib/bench/bench_tls.h"
#include "lib/bench/histogram.h"
#include "lib/core/status.h"

namespace kvctl::bench {

struct LoadOptions {
  std::string host = "127.0.0.1";
  int port = 7070;
  TlsClientOptions tls;  // https://
  std::string token;     // sent as "Authorization: Bearer"; "" sends none
  int clients = 64;                      // keep-alive connections
  int threads = 0;                       // 0: one per core, at most `clients`
  std::chrono::milliseconds duration{10000};
  uint64_t requests = 0;                 // > 0: stop after this many, not after `duration`
  std::chrono::milliseconds warmup{0};   // load first, without measuring
  double read_ratio = 0.9;               // GETs among all requests, 0..1
  // Among the writes, this share are transactions of kTxnKeys PUTs (keys
  // k, k+1, k+2 of the key space, wrapped) instead of single PUTs, 0..1.
  double txn_ratio = 0;
  uint64_t keys = 10000;
  double zipf_s = 0;                     // 0: uniform key choice
  size_t key_size = 16;
  size_t value_size = 100;
  double rate = 0;                       // requests per second in all; 0: closed loop
  std::chrono::milliseconds timeout{10000};
  uint64_t seed = 1;
  // Fill mode: PUT every key once, in order, then stop (no warmup, no
  // rate); `requests`, `duration` and `read_ratio` are ignored.
  bool fill = false;
};

// Keys written by one transaction of the load.
inline constexpr uint64_t kTxnKeys = 3;

struct LoadResult {
  double seconds = 0;       // the measured span
  uint64_t ok = 0;          // 2xx answers measured
  uint64_t reads = 0;       // of them, GETs
  uint64_t writes = 0;      // of them, PUTs
  uint64_t txns = 0;        // of them, transactions (each kTxnKeys PUTs)
  // Failures by kind: "status 404", "status 503", "timeout", "connect",
  // "connection closed", "tls", "bad response", "txn not succeeded" (a 200
  // without "succeeded":true).
  std::map<std::string, uint64_t> errors;
  Histogram latency;        // every measured 2xx, nanoseconds
  Histogram read_latency;
  Histogram write_latency;
  Histogram txn_latency;

  uint64_t error_count() const;
  double throughput() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// Live counters, readable from another thread while the load runs.
struct LoadProgress {
  std::atomic<uint64_t> done{0};    // answers so far (warmup included)
  std::atomic<uint64_t> errors{0};
  std::atomic<bool> measuring{false};
};

// Checks the options: InvalidArgument naming the flag at fault.
core::Status Validate(const LoadOptions& options);

// Runs the load to its end. Unavailable when no connection can be made at
// the start; errors during the run are counted, not returned.
// `progress`, if given, is updated as answers arrive.
core::Result<LoadResult> RunLoad(const LoadOptions& options, LoadProgress* progress = nullptr);

}  // namespace kvctl::bench
