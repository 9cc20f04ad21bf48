// Tests for lib/server/request_log: which requests the policy logs
// (log.requests, log.slow_request) and at which level.
#include "lib/server/request_log.h"

#include <unistd.h>

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace kvctl::server {
namespace {

using Mode = RequestLogPolicy::Mode;
using std::chrono::milliseconds;

// What `fn` writes to stderr (where core::Logger writes).
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  char path[] = "/tmp/kvctl-request-log-test-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  fn();
  std::fflush(stderr);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

RequestEvent Event(int status, milliseconds took) {
  return {.method = "GET", .route = "/v1/kv/{key}", .status = status, .duration = took, .request_id = "r1",
          .remote = "127.0.0.1"};
}

TEST_CASE("errors (the default) logs 5xx answers and slow requests only") {
  core::Logger logger;
  const RequestLog log(logger, RequestLogPolicy{});
  CHECK(log.policy().mode == Mode::kErrors);
  CHECK(log.policy().slow == milliseconds(100));
  CHECK_FALSE(log.Wants(200, milliseconds(1)));
  CHECK_FALSE(log.Wants(404, milliseconds(1)));
  CHECK_FALSE(log.Wants(429, milliseconds(99)));
  CHECK(log.Wants(500, milliseconds(1)));
  CHECK(log.Wants(503, milliseconds(0)));
  CHECK(log.Wants(200, milliseconds(100)));
  CHECK(log.Wants(404, milliseconds(2500)));
}

TEST_CASE("all logs every request, off none, slow 0 counts nothing as slow") {
  core::Logger logger;
  const RequestLog all(logger, {Mode::kAll, milliseconds(100)});
  CHECK(all.Wants(200, milliseconds(0)));
  CHECK(all.Wants(404, milliseconds(0)));
  const RequestLog off(logger, {Mode::kOff, milliseconds(100)});
  CHECK_FALSE(off.Wants(503, milliseconds(0)));
  CHECK_FALSE(off.Wants(200, std::chrono::seconds(60)));
  const RequestLog never_slow(logger, {Mode::kErrors, milliseconds(0)});
  CHECK_FALSE(never_slow.Wants(200, std::chrono::seconds(60)));
  CHECK(never_slow.Wants(502, milliseconds(0)));
}

TEST_CASE("a 5xx line is at level error, a slow one at warn, others at info, skipped ones write nothing") {
  core::Logger logger;
  const RequestLog errors(logger, RequestLogPolicy{});
  CHECK(CaptureStderr([&] { LogRequest(errors, Event(200, milliseconds(3))); }).empty());
  const std::string failed = CaptureStderr([&] { LogRequest(errors, Event(503, milliseconds(3))); });
  CHECK(failed.find(" error request method=GET route=/v1/kv/{key} status=503") != std::string::npos);
  const std::string slow = CaptureStderr([&] { LogRequest(errors, Event(200, milliseconds(250))); });
  CHECK(slow.find(" warn  request method=GET route=/v1/kv/{key} status=200") != std::string::npos);
  CHECK(slow.find("duration_ms=250.000") != std::string::npos);
  const RequestLog all(logger, {Mode::kAll, milliseconds(100)});
  const std::string fast = CaptureStderr([&] { LogRequest(all, Event(201, milliseconds(3))); });
  CHECK(fast.find(" info  request method=GET route=/v1/kv/{key} status=201") != std::string::npos);
}

}  // namespace
}  // namespace kvctl::server
