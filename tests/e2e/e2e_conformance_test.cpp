// HTTP/1.1 as RFC 9112 and RFC 9110 write it, against the real server:
// request targets, Host, empty lines, line endings, Expect.
#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;

// Reads one answer (head and Content-Length body), or what came before the
// server closed or `limit` passed.
std::string ReadAnswer(RawSocket& raw, milliseconds limit = milliseconds(5000)) {
  return raw.ReadUntil(limit, [](const std::string& got) {
    const size_t end = got.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const size_t cl = got.find("Content-Length: ");
    const size_t length = cl == std::string::npos || cl > end ? 0 : std::stoul(got.substr(cl + 16));
    return got.size() >= end + 4 + length;
  });
}

std::string Exchange(int port, const std::string& request) {
  RawSocket raw(port);
  raw.Send(request);
  return ReadAnswer(raw);
}

TEST_CASE("an absolute-form target is served by its path and query (RFC 9112 3.2.2)") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("a/b", "absolute").status == 201);
  const std::string host = "127.0.0.1:" + std::to_string(server.port());
  std::string got = Exchange(server.port(), "GET http://" + host + "/v1/kv/a%2Fb HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  CHECK_MESSAGE(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.ends_with("\r\n\r\nabsolute"));
  got = Exchange(server.port(), "GET http://" + host + "/v1/kv?prefix=a%2F&keys_only=1 HTTP/1.1\r\nHost: " + host +
                                    "\r\n\r\n");
  CHECK_MESSAGE(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("\"key\":\"a/b\"") != std::string::npos);
  CHECK(got.find("\"value\"") == std::string::npos);
  got = Exchange(server.port(), "GET ftp://" + host + "/v1/kv/a%2Fb HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
  CHECK(got.rfind("HTTP/1.1 400 ", 0) == 0);
}

TEST_CASE("HTTP/1.1 without Host, or with two, is 400, and HTTP/1.0 without Host is served") {
  KvServer server;
  std::string got = Exchange(server.port(), "GET /healthz HTTP/1.1\r\n\r\n");
  CHECK_MESSAGE(got.rfind("HTTP/1.1 400 ", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("Host") != std::string::npos);  // the message says what was missing
  got = Exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  CHECK_MESSAGE(got.rfind("HTTP/1.1 400 ", 0) == 0, "got: " << got.substr(0, 300));
  got = Exchange(server.port(), "GET /healthz HTTP/1.0\r\n\r\n");
  CHECK(got.rfind("HTTP/1.1 200 ", 0) == 0);
}

TEST_CASE("OPTIONS * answers 200 with the methods the server knows") {
  KvServer server;
  const std::string got = Exchange(server.port(), "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_MESSAGE(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "got: " << got.substr(0, 300));
  const size_t allow = got.find("\r\nAllow: ");
  REQUIRE(allow != std::string::npos);
  const std::string methods = got.substr(allow + 9, got.find("\r\n", allow + 2) - allow - 9);
  for (const char* m : {"GET", "HEAD", "PUT", "DELETE", "POST", "OPTIONS"}) {
    CAPTURE(m);
    CHECK(methods.find(m) != std::string::npos);
  }
  CHECK(Exchange(server.port(), "GET * HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
}

TEST_CASE("empty lines before a request line are skipped, a few of them (RFC 9112 2.2)") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("crlf", "v").status == 201);
  // A client that ends a body with an extra CRLF, then sends the next request.
  RawSocket raw(server.port());
  raw.Send("PUT /v1/kv/crlf HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nv2\r\n"
           "GET /v1/kv/crlf HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string got = raw.ReadUntil(milliseconds(5000), [](const std::string& s) { return s.ends_with("\r\n\r\nv2"); });
  CHECK_MESSAGE(got.find("HTTP/1.1 200 OK") == 0, "got: " << got.substr(0, 300));
  CHECK(got.ends_with("\r\n\r\nv2"));
  got = Exchange(server.port(), "\r\n\r\n\r\nGET /v1/kv/crlf HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  // Many are refused rather than read for ever.
  got = Exchange(server.port(), [] {
    std::string many;
    for (int i = 0; i < 20; ++i) many += "\r\n";
    return many + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  }());
  CHECK(got.rfind("HTTP/1.1 400 ", 0) == 0);
}

TEST_CASE("a bare LF or bare CR in a head is answered 400 at once, not after server.read_timeout") {
  KvServer server({"--server-read-timeout", "30s"});
  HttpClient http(server.port());
  REQUIRE(http.Put("lf", "v").status == 201);
  for (const std::string request : {"GET /v1/kv/lf HTTP/1.1\nHost: x\n\n", "GET /v1/kv/lf HTTP/1.1\r\nHost: x\n\n",
                                    "GET /v1/kv/lf HTTP/1.1\r\nHost: x\rX-Y: z\r\n\r\n",
                                    "GET /v1/kv/lf HTTP/1.1\rHost: x"}) {
    CAPTURE(request);
    RawSocket raw(server.port());
    raw.Send(request);
    // Well within the 30 s read timeout, which an unanswered request would wait out.
    const std::string got = ReadAnswer(raw, milliseconds(5000));
    CHECK_MESSAGE(got.rfind("HTTP/1.1 400 ", 0) == 0, "got: " << got.substr(0, 300));
    CHECK(got.find("Connection: close") != std::string::npos);
  }
}

TEST_CASE("Expect: 100-continue on HTTP/1.0 gets no 100 Continue, only the answer") {
  KvServer server;
  RawSocket raw(server.port());
  raw.Send("PUT /v1/kv/old HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  // An HTTP/1.0 client does not wait for a 100: nothing comes before the body.
  const std::string early = raw.ReadUntil(milliseconds(500));
  CHECK_MESSAGE(early.empty(), "got before the body: " << early);
  raw.Send("old");
  const std::string got = ReadAnswer(raw);
  CHECK_MESSAGE(got.rfind("HTTP/1.1 201 Created\r\n", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("100 Continue") == std::string::npos);
}

}  // namespace
}  // namespace kvctl::e2e
