// SIGTERM with requests in flight (SPEC §3, §8): a request the server has
// begun to read is read to its end, applied and answered, then the server
// exits 0 with the change durable.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;

// True if something accepts connections on 127.0.0.1:port.
bool Accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Sends SIGTERM and waits (bounded) until the server stopped accepting, so
// what is sent next arrives while it is stopping.
void BeginStop(KvServer& server) {
  REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
  REQUIRE_MESSAGE(Eventually([&] { return !Accepts(server.port()); }, std::chrono::seconds(10)),
                  "the server still accepts connections after SIGTERM");
  // Every event loop sees the stop on its next turn (at most 100 ms).
  std::this_thread::sleep_for(milliseconds(300));
}

std::string PutHead(const std::string& key, size_t length) {
  return "PUT /v1/kv/" + key + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

TEST_CASE("SIGTERM while a PUT's body is half sent: the body is read, the PUT applied and answered "
          "with Connection: close, and the server exits 0 with the key durable") {
  KvServer server;
  const std::string value = RandomBytes(20000, 11);
  RawSocket raw(server.port());
  REQUIRE(raw.Send(PutHead("inflight", value.size()) + value.substr(0, value.size() / 2)));
  std::this_thread::sleep_for(milliseconds(300));  // the server has read the head and half the body
  BeginStop(server);
  REQUIRE(raw.Send(value.substr(value.size() / 2)));
  const std::string got = raw.ReadUntil(milliseconds(10000));  // until the server closes
  CHECK_MESSAGE(got.rfind("HTTP/1.1 201 Created\r\n", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(server.process().WaitExit(std::chrono::seconds(20)) == 0);

  server.Start();
  HttpClient http(server.port());
  const HttpResponse r = http.Get("inflight");
  CHECK(r.status == 200);
  CHECK(r.body == value);
}

TEST_CASE("SIGTERM while a request's head is half sent: the rest is read and the request answered") {
  KvServer server;
  const std::string head = PutHead("halfhead", 5) + "hello";
  RawSocket raw(server.port());
  REQUIRE(raw.Send(head.substr(0, 20)));
  std::this_thread::sleep_for(milliseconds(300));
  BeginStop(server);
  REQUIRE(raw.Send(head.substr(20)));
  const std::string got = raw.ReadUntil(milliseconds(10000));
  CHECK_MESSAGE(got.rfind("HTTP/1.1 201 Created\r\n", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("\r\nConnection: close\r\n") != std::string::npos);
  CHECK(server.process().WaitExit(std::chrono::seconds(20)) == 0);

  server.Start();
  HttpClient http(server.port());
  CHECK(http.Get("halfhead").body == "hello");
}

TEST_CASE("after SIGTERM, a request pipelined behind the one in flight is not started") {
  KvServer server;
  const std::string first = PutHead("first", 4) + "one!";
  const std::string second = PutHead("second", 4) + "two!";
  RawSocket raw(server.port());
  REQUIRE(raw.Send(first.substr(0, first.size() - 2)));
  std::this_thread::sleep_for(milliseconds(300));
  BeginStop(server);
  REQUIRE(raw.Send(first.substr(first.size() - 2) + second));
  const std::string got = raw.ReadUntil(milliseconds(10000));
  CHECK(got.rfind("HTTP/1.1 201 Created\r\n", 0) == 0);
  CHECK(got.find("HTTP/1.1", 1) == std::string::npos);  // one answer only
  CHECK(server.process().WaitExit(std::chrono::seconds(20)) == 0);

  server.Start();
  HttpClient http(server.port());
  CHECK(http.Get("first").body == "one!");
  CHECK(http.Get("second").status == 404);
}

}  // namespace
}  // namespace kvctl::e2e

namespace kvctl::e2e {

TEST_CASE("SIGTERM with a client that never finishes its request: it gets 408 within half of "
          "server.shutdown_timeout and the server still exits 0") {
  // read_timeout is longer than the whole shutdown_timeout: without a grace
  // of its own, the slow request would hold the stop until the watcher
  // gives up with exit 3.
  KvServer server({"--server-read-timeout", "60s", "--server-shutdown-timeout", "4s"});
  RawSocket raw(server.port());
  REQUIRE(raw.Send("PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(::kill(server.process().pid(), SIGTERM) == 0);
  const std::string got = raw.ReadUntil(std::chrono::milliseconds(10000));
  CHECK_MESSAGE(got.rfind("HTTP/1.1 408 ", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("stopping") != std::string::npos);
  CHECK_MESSAGE(server.process().WaitExit(std::chrono::seconds(10)) == 0, server.process().Stderr());
}

}  // namespace kvctl::e2e
