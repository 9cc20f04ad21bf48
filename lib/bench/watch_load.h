// The watch side of `kvctl bench --watchers N`: N open watch streams
// (GET /v1/watch?prefix=P, SPEC §6) held by a few epoll threads, and a
// probe writer that PUTs a key under P at a low rate. For each probe write
// the delay from its acknowledgement (the PUT's answer, whose ETag names
// the write's revision) to that revision's event arriving on
// each watcher goes into a histogram. All on one steady clock, in one
// process. Meant to run beside a PUT load (bench/run.sh --only watch): the
// load's throughput with and without the watchers is the other half.
//
// A watcher cut off for lagging (or whose stream ends) resumes with `from`
// its next revision, so N stay open; the cut-offs are counted.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "lib/bench/histogram.h"
#include "lib/core/status.h"

namespace kvctl::bench {

struct WatchLoadOptions {
  std::string host = "127.0.0.1";
  int port = 7070;
  std::string token;  // "" sends none
  int watchers = 1000;
  int threads = 0;    // 0: one per core, at most `watchers`
  std::string prefix = "w/";
  double probe_rate = 20;  // probe PUTs a second
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds warmup{0};  // watchers open and probes run, unmeasured
  std::chrono::milliseconds grace{2000};  // after the last probe, for its events to arrive
  std::chrono::milliseconds timeout{10000};
};

struct WatchLoadResult {
  double seconds = 0;         // the measured span
  int watchers = 0;           // streams asked for
  int streaming = 0;          // of them, streaming at the end
  uint64_t events = 0;        // event lines received, all watchers, measured span
  uint64_t progress = 0;      // progress lines
  uint64_t cut_off = 0;       // streams ended by the server ("lagging" and others), then resumed
  uint64_t probes = 0;        // probe PUTs acknowledged in the measured span
  uint64_t probe_events = 0;  // their events received (at most probes x watchers)
  uint64_t probe_missing = 0; // probe events not received by the end of the grace time
  std::map<std::string, uint64_t> errors;  // "status 503", "connect", "bad response", "probe ..."
  Histogram delay;            // acknowledgement -> event, nanoseconds, every watcher
  // Per probe write: the delay to the first watcher its event reached, and
  // to the last (how long the server takes to hand one event to all N).
  Histogram delay_first;
  Histogram delay_last;

  uint64_t error_count() const;
};

core::Status ValidateWatchLoad(const WatchLoadOptions& options);

// Opens the watchers (Unavailable if the first cannot connect), runs for
// warmup + duration + grace, and closes them.
core::Result<WatchLoadResult> RunWatchLoad(const WatchLoadOptions& options);

}  // namespace kvctl::bench
