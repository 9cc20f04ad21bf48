// The HTTP transport's connection handling against the real binary:
// pipelining, time limits against slow or idle clients, the connection cap,
// and a shutdown that does not wait on idle keep-alive connections.
#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_CASE("pipelined requests in one packet are all answered, in order") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("p1", "one").status == 201);
  REQUIRE(http.Put("p2", "two").status == 201);
  RawSocket raw(server.port());
  raw.Send(
      "GET /v1/kv/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "PUT /v1/kv/p3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree"
      "GET /v1/kv/p2 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /v1/kv/p3 HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string got = raw.ReadUntil(milliseconds(5000), [](const std::string& s) {
    return Count(s, "HTTP/1.1 ") == 4 && s.ends_with("three");
  });
  REQUIRE(Count(got, "HTTP/1.1 ") == 4);
  const size_t one = got.find("\r\n\r\none");
  const size_t created = got.find("201 Created");
  const size_t two = got.find("\r\n\r\ntwo");
  const size_t three = got.rfind("\r\n\r\nthree");
  CHECK(one < created);
  CHECK(created < two);
  CHECK(two < three);
  CHECK(three != std::string::npos);
}

TEST_CASE("a request head that never completes gets 408 after server.read_timeout and is closed") {
  KvServer server({"--server-read-timeout", "1s"});
  RawSocket raw(server.port());
  raw.Send("GET /v1/kv/slow HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  const auto started = std::chrono::steady_clock::now();
  const std::string got = raw.ReadUntil(milliseconds(5000));
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK_MESSAGE(got.rfind("HTTP/1.1 408", 0) == 0, "got: " << got.substr(0, 200));
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(took < std::chrono::seconds(4));
  // The server still serves others.
  HttpClient http(server.port());
  CHECK(http.Request("GET", "/healthz").status == 200);
}

TEST_CASE("an idle keep-alive connection is closed after server.keepalive_timeout") {
  KvServer server({"--server-keepalive-timeout", "1s"});
  RawSocket raw(server.port());
  raw.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string got = raw.ReadUntil(milliseconds(3000), [](const std::string& s) { return s.ends_with("}\n"); });
  REQUIRE(got.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(raw.ClosedWithin(milliseconds(4000)));
}

TEST_CASE("connections over server.max_connections get 503 and the others keep working") {
  KvServer server({"--server-max-connections", "2"});
  RawSocket a(server.port());
  RawSocket b(server.port());
  // Both are in use (answered), so the server counts them.
  for (RawSocket* s : {&a, &b}) {
    s->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(s->ReadUntil(milliseconds(3000), [](const std::string& r) { return r.ends_with("}\n"); })
              .rfind("HTTP/1.1 200", 0) == 0);
  }
  RawSocket c(server.port());
  const std::string refused = c.ReadUntil(milliseconds(3000));
  CHECK_MESSAGE(refused.rfind("HTTP/1.1 503", 0) == 0, "got: " << refused.substr(0, 200));
  CHECK(refused.find("too_many_connections") != std::string::npos);
  a.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(a.ReadUntil(milliseconds(3000), [](const std::string& r) { return r.ends_with("}\n"); })
            .rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("HTTP/1.0 without keep-alive and Connection: close get their answer, then the server closes") {
  KvServer server;
  for (const std::string request : {"GET /healthz HTTP/1.0\r\n\r\n",
                                    "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}) {
    CAPTURE(request);
    RawSocket raw(server.port());
    raw.Send(request);
    const std::string got = raw.ReadUntil(milliseconds(3000));  // until the server closes
    CHECK(got.find(" 200 OK\r\n") != std::string::npos);
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    CHECK(got.ends_with("}\n"));
  }
}

TEST_CASE("SIGTERM exits promptly while clients hold idle keep-alive connections") {
  KvServer server({"--server-keepalive-timeout", "30s"});
  HttpClient http(server.port());
  REQUIRE(http.Put("kept", "v").status == 201);
  RawSocket idle(server.port());
  idle.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  idle.ReadUntil(milliseconds(3000), [](const std::string& s) { return s.ends_with("}\n"); });
  const auto started = std::chrono::steady_clock::now();
  CHECK(server.Stop() == 0);
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK_MESSAGE(took < std::chrono::seconds(2),
                "took " << std::chrono::duration_cast<milliseconds>(took).count() << " ms");
  CHECK(idle.ClosedWithin(milliseconds(1000)));
  server.Start();
  HttpClient again(server.port());
  CHECK(again.Get("kept").body == "v");
}

}  // namespace
}  // namespace kvctl::e2e
