// The server's HTTP/1.1 head parser and response writer, byte by byte.
#include "lib/server/http_wire.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace kvctl::server {
namespace {

HeadParse Parse(std::string_view text, RequestHead* head, HeadLimits limits = {}) {
  return ParseRequestHead(text, limits, head);
}

TEST_CASE("a complete head parses into method, target, version and headers") {
  RequestHead h;
  const std::string text = "PUT /v1/kv/a%2Fb?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length:  5 \r\n\r\nhello";
  REQUIRE(Parse(text, &h) == HeadParse::kComplete);
  CHECK(h.method == "PUT");
  CHECK(h.target == "/v1/kv/a%2Fb?x=1");
  CHECK(h.minor_version == 1);
  REQUIRE(h.headers.size() == 2);
  CHECK(h.headers[1].first == "Content-Length");
  CHECK(h.headers[1].second == "5");
  CHECK(h.head_bytes == text.size() - 5);
}

TEST_CASE("a head without its blank line yet is incomplete, not an error") {
  RequestHead h;
  CHECK(Parse("GET / HTTP/1.1\r\nHost: h\r\n", &h) == HeadParse::kIncomplete);
  CHECK(Parse("GET /v1/kv/", &h) == HeadParse::kIncomplete);
}

TEST_CASE("malformed request lines and headers are refused") {
  RequestHead h;
  for (const std::string& bad : std::vector<std::string>{"GET\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1 x\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
                                 "GET nopath HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
                                 "GET / HTTP/1.1\r\nName : v\r\n\r\n", "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
                                 std::string("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 27), "GET / HTTX/1.1\r\n\r\n"}) {
    CAPTURE(bad);
    CHECK(Parse(bad, &h) == HeadParse::kBad);
  }
  CHECK(Parse("GET / HTTP/2.0\r\n\r\n", &h) == HeadParse::kBadVersion);
}

TEST_CASE("a bad head says what was wrong") {
  RequestHead h;
  REQUIRE(Parse("GET / HTTP/1.1\r\nName : v\r\n\r\n", &h) == HeadParse::kBad);
  CHECK(h.problem.find("header name") != std::string_view::npos);
  REQUIRE(Parse("GET / HTTP/1.1\nHost: x\n\n", &h) == HeadParse::kBad);
  CHECK(h.problem.find("bare LF") != std::string_view::npos);
}

TEST_CASE("origin-form targets split into path and query") {
  RequestHead h;
  REQUIRE(Parse("GET /v1/kv?prefix=a&limit=2 HTTP/1.1\r\nHost: h\r\n\r\n", &h) == HeadParse::kComplete);
  CHECK(h.path == "/v1/kv");
  CHECK(h.query == "prefix=a&limit=2");
  REQUIRE(Parse("GET /v1/kv/a HTTP/1.1\r\nHost: h\r\n\r\n", &h) == HeadParse::kComplete);
  CHECK(h.path == "/v1/kv/a");
  CHECK(h.query.empty());
}

TEST_CASE("absolute-form targets are taken by their path and query (RFC 9112 3.2.2)") {
  RequestHead h;
  REQUIRE(Parse("GET http://example.com:7070/v1/kv/a%2Fb?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", &h) ==
          HeadParse::kComplete);
  CHECK(h.path == "/v1/kv/a%2Fb");
  CHECK(h.query == "x=1");
  REQUIRE(Parse("GET HTTPS://[::1]:7070/healthz HTTP/1.1\r\nHost: x\r\n\r\n", &h) == HeadParse::kComplete);
  CHECK(h.path == "/healthz");
  REQUIRE(Parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", &h) == HeadParse::kComplete);
  CHECK(h.path == "/");
  REQUIRE(Parse("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n", &h) == HeadParse::kComplete);
  CHECK(h.path == "/");
  CHECK(h.query == "q");
  for (const std::string& bad : std::vector<std::string>{"GET ftp://h/x HTTP/1.1\r\n\r\n", "GET http:///x HTTP/1.1\r\n\r\n",
                                 "GET http://u@h/x HTTP/1.1\r\n\r\n", "GET h/x HTTP/1.1\r\n\r\n"}) {
    CAPTURE(bad);
    CHECK(Parse(bad, &h) == HeadParse::kBad);
  }
}

TEST_CASE("the asterisk target is for OPTIONS only") {
  RequestHead h;
  REQUIRE(Parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", &h) == HeadParse::kComplete);
  CHECK(h.path == "*");
  CHECK(Parse("GET * HTTP/1.1\r\nHost: h\r\n\r\n", &h) == HeadParse::kBad);
}

TEST_CASE("empty lines before the request line are skipped, a few of them (RFC 9112 2.2)") {
  RequestHead h;
  const std::string head = "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string one = "\r\n" + head;  // the views point into it
  REQUIRE(Parse(one, &h) == HeadParse::kComplete);
  CHECK(h.path == "/healthz");
  CHECK(h.head_bytes == head.size() + 2);
  REQUIRE(Parse("\r\n\r\n\r\n\r\n" + head, &h) == HeadParse::kComplete);
  CHECK(h.head_bytes == head.size() + 8);
  CHECK(Parse("\r\n\r\n\r\n\r\n\r\n" + head, &h) == HeadParse::kBad);
  CHECK(Parse("\r\n", &h) == HeadParse::kIncomplete);
  CHECK(Parse("\r", &h) == HeadParse::kIncomplete);
}

TEST_CASE("a bare LF or a bare CR is refused as soon as it arrives, not when the head ends") {
  RequestHead h;
  for (const std::string& bad : std::vector<std::string>{
           "GET / HTTP/1.1\n", "GET / HTTP/1.1\nHost: h\n\n", "GET / HTTP/1.1\r\nHost: h\n",
           "GET / HTTP/1.1\r\nHost: h\r\n\n", "\nGET / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\rHost: h",
           "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\rX", "\rX"}) {
    CAPTURE(bad);
    CHECK(Parse(bad, &h) == HeadParse::kBad);
  }
}

TEST_CASE("an overlong request line is 414 and an overlong head 431, even before the head ends") {
  RequestHead h;
  HeadLimits limits;
  limits.max_request_line = 100;
  limits.max_head = 300;
  const std::string long_target = "GET /" + std::string(200, 'a');
  CHECK(Parse(long_target, &h, limits) == HeadParse::kLineTooLong);
  CHECK(Parse(long_target + " HTTP/1.1\r\n\r\n", &h, limits) == HeadParse::kLineTooLong);
  const std::string many = "GET / HTTP/1.1\r\n" + std::string(20, 'X') + ": " + std::string(300, 'v') + "\r\n";
  CHECK(Parse(many, &h, limits) == HeadParse::kHeadTooLarge);
  CHECK(Parse(many + "\r\n", &h, limits) == HeadParse::kHeadTooLarge);
}

// `text` gets a Host field after its request line unless it has one.
RequestFraming Frame(std::string text, uint64_t max_body = 1000) {
  if (text.find("Host:") == std::string::npos && text.find("HTTP/1.1\r\n") != std::string::npos) {
    text.insert(text.find("\r\n") + 2, "Host: h\r\n");
  }
  RequestHead h;
  REQUIRE(ParseRequestHead(text, HeadLimits{}, &h) == HeadParse::kComplete);
  return FrameRequest(h, max_body);
}

TEST_CASE("framing: Content-Length, chunked, too large, smuggling and keep-alive") {
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n").content_length == 10);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 10\r\n\r\n").refusal == 0);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 1001\r\n\r\n").refusal == 413);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 2147483648\r\n\r\n").refusal == 413);
  CHECK(Frame("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").refusal == 411);
  CHECK(Frame("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n").refusal == 400);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n").refusal == 400);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").refusal == 0);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").refusal == 400);
  CHECK(Frame("PUT / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n").refusal == 400);
  CHECK(Frame("GET / HTTP/1.1\r\n\r\n").keep_alive);
  CHECK_FALSE(Frame("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
  CHECK_FALSE(Frame("GET / HTTP/1.0\r\n\r\n").keep_alive);
  CHECK(Frame("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  CHECK(Frame("PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").expects_continue);
}

TEST_CASE("framing: HTTP/1.1 needs exactly one Host, 1.0 none, and Expect is ignored on 1.0") {
  RequestHead h;
  REQUIRE(ParseRequestHead("GET / HTTP/1.1\r\n\r\n", HeadLimits{}, &h) == HeadParse::kComplete);
  RequestFraming f = FrameRequest(h, 1000);
  CHECK(f.refusal == 400);
  CHECK(f.problem.find("Host") != std::string_view::npos);
  CHECK_FALSE(f.keep_alive);
  CHECK(Frame("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").refusal == 400);
  CHECK(Frame("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n").refusal == 400);
  CHECK(Frame("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n").refusal == 400);
  CHECK(Frame("GET / HTTP/1.1\r\nHost:\r\n\r\n").refusal == 0);  // an empty authority is allowed
  CHECK(Frame("GET / HTTP/1.0\r\n\r\n").refusal == 0);
  CHECK_FALSE(Frame("PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").expects_continue);
}

TEST_CASE("a response carries status, headers, length and body, and HEAD keeps the length but not the body") {
  HttpResponse r;
  r.status = 201;
  r.content_type = "application/json";
  r.body = "{}";
  r.SetHeader("ETag", "\"7\"");
  std::string out;
  AppendResponse(r, false, true, 1, "Sun, 06 Nov 1994 08:49:37 GMT", &out);
  CHECK(out ==
        "HTTP/1.1 201 Created\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nETag: \"7\"\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  out.clear();
  AppendResponse(r, true, false, 1, "D", &out);
  CHECK(out.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n"));
  HttpResponse none;
  none.status = 204;
  out.clear();
  AppendResponse(none, false, true, 0, "D", &out);
  CHECK(out == "HTTP/1.1 204 No Content\r\nDate: D\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("a stream's head is chunked on HTTP/1.1 and closes on HTTP/1.0, without a length, and chunks are hex-sized") {
  HttpResponse r;
  r.content_type = "application/x-ndjson";
  r.SetHeader("X-A", "1");
  std::string out;
  AppendStreamHead(r, true, 1, "D", &out);
  CHECK(out == "HTTP/1.1 200 OK\r\nDate: D\r\nX-A: 1\r\nContent-Type: application/x-ndjson\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
  out.clear();
  AppendStreamHead(r, false, 1, "D", &out);
  CHECK(out.find("Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n") != std::string::npos);
  out.clear();
  AppendStreamHead(r, true, 0, "D", &out);
  CHECK(out.find("Transfer-Encoding") == std::string::npos);
  CHECK(out.find("Content-Length") == std::string::npos);
  CHECK(out.find("Connection: close\r\n\r\n") != std::string::npos);

  out.clear();
  AppendChunk("", &out);  // an empty chunk would end the body: nothing is written
  CHECK(out.empty());
  AppendChunk(std::string(26, 'x'), &out);
  CHECK(out == "1a\r\n" + std::string(26, 'x') + "\r\n");
  CHECK(kLastChunk == "0\r\n\r\n");
}

TEST_CASE("HttpDate writes an IMF-fixdate") {
  CHECK(HttpDate(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
}

}  // namespace
}  // namespace kvctl::server
