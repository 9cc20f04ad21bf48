// The load generator's parts: histogram, response parser, key choice, and
// the chunked line reader of --watchers.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "lib/bench/blocking_http.h"
#include "lib/bench/chunked_lines.h"
#include "lib/bench/histogram.h"
#include "lib/bench/key_chooser.h"
#include "lib/bench/lease_expiry.h"
#include "lib/bench/load.h"
#include "lib/bench/response_parser.h"

namespace kvctl::bench {
namespace {

TEST_CASE("histogram buckets hold every value within 1/64 of itself and small values exactly") {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 129ull, 1000ull, 123456ull, 987654321ull, (1ull << 39) + 5}) {
    CAPTURE(v);
    const size_t b = Histogram::BucketOf(v);
    const uint64_t upper = Histogram::BucketUpper(b);
    CHECK(upper >= v);
    CHECK(static_cast<double>(upper - v) <= static_cast<double>(v) / 64.0);
    if (v < 128) CHECK(upper == v);
    if (b > 0) CHECK(Histogram::BucketUpper(b - 1) < v);
  }
  CHECK(Histogram::BucketOf(UINT64_MAX) == Histogram::kBuckets - 1);
}

TEST_CASE("histogram percentiles of 1..10000 are within 1.6 percent, min and max exact") {
  Histogram h;
  for (uint64_t v = 1; v <= 10000; ++v) h.Record(v * 1000);
  CHECK(h.count() == 10000);
  CHECK(h.min() == 1000);
  CHECK(h.max() == 10000000);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    CAPTURE(p);
    const double want = p / 100 * 10000 * 1000;
    const double got = static_cast<double>(h.ValueAtPercentile(p));
    CHECK(got >= want);
    CHECK(got <= want * (1 + 1.0 / 64));
  }
  CHECK(h.ValueAtPercentile(100) == 10000000);
  CHECK(h.mean() == doctest::Approx(5000.5 * 1000));
}

TEST_CASE("merged histograms count as one and bars add up to every sample") {
  Histogram a, b;
  for (int i = 0; i < 1000; ++i) a.Record(100000);
  for (int i = 0; i < 10; ++i) b.Record(50000000);
  a.Merge(b);
  CHECK(a.count() == 1010);
  CHECK(a.ValueAtPercentile(50) <= 100000 * 65 / 64);
  CHECK(a.ValueAtPercentile(99.5) == 50000000);
  uint64_t total = 0;
  for (const auto& bar : a.Bars(10)) total += bar.count;
  CHECK(total == 1010);
  CHECK(Histogram().Bars(10).empty());
}

TEST_CASE("responses are framed by Content-Length, with Connection: close noticed") {
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1";
  ParsedResponse r = ParseResponse(ok);
  CHECK(r.outcome == ParsedResponse::Outcome::kComplete);
  CHECK(r.status == 200);
  CHECK(r.bytes == ok.size() - 8);
  CHECK_FALSE(r.close);
  CHECK(ParseResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel").outcome ==
        ParsedResponse::Outcome::kIncomplete);
  CHECK(ParseResponse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n").outcome == ParsedResponse::Outcome::kIncomplete);
  r = ParseResponse("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
  CHECK(r.outcome == ParsedResponse::Outcome::kComplete);
  CHECK(r.close);
  CHECK(ParseResponse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").close);
  CHECK(ParseResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").outcome ==
        ParsedResponse::Outcome::kBad);
  CHECK(ParseResponse("HTTP/1.1 200 OK\r\n\r\n").outcome == ParsedResponse::Outcome::kBad);
  CHECK(ParseResponse("SMTP 220 hi\r\n\r\n").outcome == ParsedResponse::Outcome::kBad);
}

TEST_CASE("key names have exactly the asked size") {
  CHECK(KeyName(42, 8) == "k0000042");
  CHECK(KeyName(0, 16).size() == 16);
  CHECK(KeyName(9999, 5) == "k9999");
}

TEST_CASE("uniform choice covers the keys evenly and zipf favours the first keys") {
  Random random(7);
  KeyChooser uniform(10, 0);
  std::map<uint64_t, int> seen;
  for (int i = 0; i < 100000; ++i) ++seen[uniform.Next(random)];
  CHECK(seen.size() == 10);
  for (const auto& [k, n] : seen) CHECK(std::abs(n - 10000) < 600);

  KeyChooser zipf(1000, 1.0);
  int first = 0;
  for (int i = 0; i < 100000; ++i) first += zipf.Next(random) == 0 ? 1 : 0;
  // P(key 0) = 1 / H(1000) = 0.134 for s = 1.
  CHECK(first > 12000);
  CHECK(first < 14800);
}

TEST_CASE("load options that cannot work are refused naming the flag") {
  LoadOptions o;
  CHECK(Validate(o).ok());
  o.read_ratio = 1.5;
  CHECK(Validate(o).message().find("--read-ratio") != std::string::npos);
  o = {};
  o.keys = 100000;
  o.key_size = 4;
  CHECK(Validate(o).message().find("--key-size") != std::string::npos);
  o = {};
  o.clients = 0;
  CHECK(Validate(o).message().find("--clients") != std::string::npos);
}

TEST_CASE("a header's number is found by name in any case, quoted or not, and only in its own header") {
  const std::string head =
      "HTTP/1.1 201 Created\r\nX-Kvctl-Revision: 90\r\nETag: \"42\"\r\nx-etag-like: 7\r\nContent-Length: 0\r\n";
  uint64_t n = 0;
  CHECK(HeaderNumber(head, "etag", &n));
  CHECK(n == 42);
  CHECK(HeaderNumber(head, "x-kvctl-revision", &n));
  CHECK(n == 90);
  CHECK(!HeaderNumber(head, "x-kvctl-lease", &n));
  CHECK(!HeaderNumber("HTTP/1.1 200 OK\r\nETag: none\r\n", "etag", &n));
  CHECK(PercentEncode("lease/a b?") == "lease/a%20b%3F");
}

TEST_CASE("lease expiry options that cannot work are refused naming the flag") {
  LeaseExpiryOptions o;
  LoadOptions load;
  CHECK(ValidateLeaseExpiry(o, load).ok());
  o.leases = 0;
  CHECK(ValidateLeaseExpiry(o, load).message().find("--lease-expiry") != std::string::npos);
  o = {};
  o.ttl = std::chrono::seconds(0);
  CHECK(ValidateLeaseExpiry(o, load).message().find("--lease-ttl") != std::string::npos);
  o = {};
  o.prefix = "a\\b";
  CHECK(ValidateLeaseExpiry(o, load).message().find("--lease-prefix") != std::string::npos);
  // TTL 2 s and grants over 1 s: the load must run 4 s or more.
  o = {};
  load.duration = std::chrono::milliseconds(3999);
  CHECK(ValidateLeaseExpiry(o, load).message().find("--duration must be at least 4s") != std::string::npos);
  load.duration = std::chrono::seconds(4);
  CHECK(ValidateLeaseExpiry(o, load).ok());
  load.requests = 100;
  CHECK(ValidateLeaseExpiry(o, load).message().find("--requests") != std::string::npos);
}

std::vector<std::string> FeedInPieces(ChunkedLines& reader, std::string_view body, size_t piece,
                                      ChunkedLines::State* state) {
  std::vector<std::string> lines;
  for (size_t at = 0; at < body.size(); at += piece) {
    *state = reader.Feed(body.substr(at, piece), [&](std::string_view l) { lines.emplace_back(l); });
  }
  return lines;
}

TEST_CASE("chunked lines: lines across chunks and feeds come out whole, the last chunk ends the body") {
  // Two lines in the first chunk, a third split over two chunks (with an
  // extension on one size line), then the terminating chunk.
  const std::string body =
      "1f\r\n{\"revision\":5,\"op\":\"put\"}\n{\"pro\r\n"
      "e;ext=1\r\ngress\":5}\n{\"re\r\n"
      "B\r\nvision\":6}\n\r\n"
      "0\r\n\r\n";
  for (size_t piece : {body.size(), size_t{1}, size_t{3}, size_t{7}}) {
    CAPTURE(piece);
    ChunkedLines reader;
    ChunkedLines::State state = ChunkedLines::State::kOpen;
    const auto lines = FeedInPieces(reader, body, piece, &state);
    CHECK(state == ChunkedLines::State::kEnded);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "{\"revision\":5,\"op\":\"put\"}");
    CHECK(lines[1] == "{\"progress\":5}");
    CHECK(lines[2] == "{\"revision\":6}");
  }
}

TEST_CASE("chunked lines: a bad size line or an endless line is kBad, not a growing buffer") {
  ChunkedLines reader;
  CHECK(reader.Feed("zz\r\nab\r\n", [](std::string_view) {}) == ChunkedLines::State::kBad);
  ChunkedLines bounded(16);
  const std::string body = "40\r\n" + std::string(64, 'x') + "\r\n";
  CHECK(bounded.Feed(body, [](std::string_view) {}) == ChunkedLines::State::kBad);
  ChunkedLines open;
  CHECK(open.Feed("5\r\nab\ncd\r\n", [](std::string_view) {}) == ChunkedLines::State::kOpen);
}

}  // namespace
}  // namespace kvctl::bench
