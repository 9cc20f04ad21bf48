// Lease calls over real HTTP for the end-to-end tests (SPEC §6 "Leases"),
// shared by the file and PostgreSQL variants.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {

// POST /v1/lease {"ttl": ttl}; fails the test unless it is granted.
uint64_t Grant(HttpClient& http, int ttl);

std::string LeaseQuery(uint64_t id);  // "?lease=ID"

// PUT key?lease=ID.
HttpResponse PutWithLease(HttpClient& http, const std::string& key, const std::string& value, uint64_t lease);

uint64_t RevisionOf(const HttpResponse& r);  // X-Kvctl-Revision

// The events of GET /v1/watch?<query> (HTTP/1.0: the body is plain lines up
// to the close) until `count` events came or `limit` passed.
std::vector<nlohmann::json> WatchEvents(int port, const std::string& query, size_t count,
                                        std::chrono::milliseconds limit);

// Polls GET key until it answers `status`; how long that took, or nullopt
// after `limit`.
std::optional<std::chrono::milliseconds> UntilStatus(HttpClient& http, const std::string& key, int status,
                                                     std::chrono::milliseconds limit);

// Runs `kvctl lock job -- CMD` once per address of `addrs`, all at once,
// each CMD writing "start N" to `log`, sleeping 0.4 s, then "end N"; CHECKs
// that each exits 0 and that the log shows them one at a time (each start
// followed by its own end).
void CheckLocksTakeTurns(const std::vector<std::string>& addrs, const std::string& log);

}  // namespace kvctl::e2e
