// How `kvctl bench` shows a finished run: a text summary with a small
// histogram (like etcd's benchmark tool), or one JSON document.
#pragma once

#include <string>

#include "lib/bench/lease_expiry.h"
#include "lib/bench/load.h"
#include "lib/bench/watch_load.h"

namespace kvctl::bench {

// `target` names what was measured ("http://127.0.0.1:7070", "embedded").
std::string TextReport(const LoadOptions& options, const LoadResult& result, const std::string& target);
std::string JsonReport(const LoadOptions& options, const LoadResult& result, const std::string& target);

// `kvctl bench --watchers`: the streams, the events and the delay from a
// probe write's acknowledgement to its event on each watcher.
std::string WatchTextReport(const WatchLoadOptions& options, const WatchLoadResult& result,
                            const std::string& target);
std::string WatchJsonReport(const WatchLoadOptions& options, const WatchLoadResult& result,
                            const std::string& target);

// `kvctl bench --lease-expiry`: the leases seen to end, the delay from each
// deadline to its delete event, and the load meanwhile (as JsonReport has
// it, under "load").
std::string LeaseTextReport(const LeaseExpiryOptions& options, const LoadOptions& load, const LeaseExpiryRun& run,
                            const std::string& target);
std::string LeaseJsonReport(const LeaseExpiryOptions& options, const LoadOptions& load, const LeaseExpiryRun& run,
                            const std::string& target);

// The live line for a terminal: "  3.0 s   41234 req/s   0 errors".
std::string ProgressLine(double elapsed_s, double rate, uint64_t errors, bool warming_up);

}  // namespace kvctl::bench
