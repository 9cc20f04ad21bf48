// `kvctl bench --lease-expiry N`: how late leases end under a write load.
// While the usual load runs (lib/bench/load.h; PUTs only unless asked
// otherwise), it grants N leases (POST /v1/lease, SPEC §6) on a timetable
// that spreads their deadlines over `spread`, attaches one key to each
// (PUT PREFIX<i>?lease=ID), and watches PREFIX (GET /v1/watch). A lease's
// deadline is when its grant was acknowledged plus its TTL, on this
// process's steady clock; its delay is from there to its key's delete
// event arriving on the watch. The server publishes an event only after
// the change is committed, so the event says the delete is durable.
//
// Every lease granted and attached must be seen to end: one that is not
// by `grace` after the last deadline is counted missing.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "lib/bench/histogram.h"
#include "lib/bench/load.h"
#include "lib/core/status.h"

namespace kvctl::bench {

struct LeaseExpiryOptions {
  int leases = 1000;
  std::chrono::seconds ttl{2};
  std::chrono::milliseconds spread{1000};  // the grants, and so the deadlines, spread over this
  std::string prefix = "lease/";           // keys PREFIX000000, PREFIX000001, ...
  std::chrono::milliseconds grace{5000};   // after the last deadline, for the deletes to arrive
};

struct LeaseExpiryResult {
  int leases = 0;              // asked
  uint64_t attached = 0;       // granted and their key attached
  uint64_t seen = 0;           // of them, their key's delete event received
  uint64_t missing = 0;        // attached, no delete event by the end of the grace time
  uint64_t before_deadline = 0;  // seen before the deadline this side reckons (ack + TTL): delay 0
  uint64_t seen_under_load = 0;  // seen while the load still ran
  double deadline_spread_s = 0;  // the last deadline after the first
  uint64_t watch_resumed = 0;    // times the watch stream ended and was resumed
  std::map<std::string, uint64_t> errors;  // "grant status 503", "attach timeout", "watch connect", ...
  Histogram delay;            // deadline (grant acknowledged + TTL) -> delete event, nanoseconds
  // From the grant's sending + TTL instead: the deadline the server cannot
  // be before, so this adds the grant's own round trip and commit.
  Histogram delay_from_sent;

  uint64_t error_count() const;
};

struct LeaseExpiryRun {
  LeaseExpiryResult leases;
  LoadResult load;
};

// InvalidArgument naming the flag at fault; `load` is the load it runs beside.
core::Status ValidateLeaseExpiry(const LeaseExpiryOptions& options, const LoadOptions& load);

// Opens the watch (Unavailable if the server cannot be reached), starts the
// load, grants and attaches the leases once the load's warmup is over, and
// waits for their ends and for the load's.
core::Result<LeaseExpiryRun> RunLeaseExpiry(const LeaseExpiryOptions& options, const LoadOptions& load);

}  // namespace kvctl::bench
