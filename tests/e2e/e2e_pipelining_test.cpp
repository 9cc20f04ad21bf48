// Memory a client can make the server hold (SPEC §8): clients that
// pipeline requests for large answers and do not read them, and listings of
// large values. Measured on the real server as its peak resident memory
// (/proc/PID/status VmHWM, reset through /proc/PID/clear_refs once the data
// is in), so a transient burst counts as much as what stays.
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;

constexpr size_t kMiB = 1024 * 1024;

// The count of answered requests in /metrics for a route, method and code.
double Answered(HttpClient& http, const std::string& route, const std::string& method, int code) {
  const std::string body = http.Request("GET", "/metrics").body;
  const std::string needle = "kvctl_http_requests_total{route=\"" + route + "\",method=\"" + method +
                             "\",code=\"" + std::to_string(code) + "\"} ";
  const size_t at = body.find(needle);
  return at == std::string::npos ? 0 : std::stod(body.substr(at + needle.size()));
}

// Waits (bounded) until the server has answered all it will for now: the
// count stops moving for half a second.
void WaitUntilSettled(HttpClient& http, const std::string& route, const std::string& method) {
  double last = -1;
  int still = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (still < 5 && std::chrono::steady_clock::now() < deadline) {
    const double now = Answered(http, route, method, 200);
    still = now == last ? still + 1 : 0;
    last = now;
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Reads answers off a socket one by one, without keeping more than one.
class AnswerReader {
 public:
  explicit AnswerReader(int fd) : fd_(fd) {}

  struct Answer {
    int status = 0;
    std::string head;
    std::string body;
  };

  // The next whole answer (framed by Content-Length); status 0 if the
  // connection ended or nothing came within `limit`.
  Answer Next(milliseconds limit = milliseconds(10000)) {
    Answer a;
    size_t head_end;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(limit)) return a;
    }
    a.head = buffer_.substr(0, head_end + 4);
    size_t length = 0;
    if (const size_t cl = a.head.find("Content-Length: "); cl != std::string::npos) {
      length = std::stoul(a.head.substr(cl + 16));
    }
    while (buffer_.size() < head_end + 4 + length) {
      if (!Fill(limit)) return a;
    }
    a.status = std::stoi(a.head.substr(9, 3));
    a.body = buffer_.substr(head_end + 4, length);
    buffer_.erase(0, head_end + 4 + length);
    return a;
  }

 private:
  bool Fill(milliseconds limit) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
    char chunk[256 * 1024];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string buffer_;
};

TEST_CASE("clients that pipeline GETs of 1 MiB values without reading grow the server by a few MiB each, "
          "and get every answer, whole and in order, once they read") {
  KvServer server;
  HttpClient http(server.port());
  constexpr int kKeys = 4;
  std::vector<std::string> values;
  for (int k = 0; k < kKeys; ++k) {
    values.push_back(std::string(kMiB, static_cast<char>('a' + k)));
    REQUIRE(http.Put("big/" + std::to_string(k), values.back()).status == 201);
  }
  const pid_t pid = server.process().pid();
  const bool peak_reset = ResetPeak(pid);
  const size_t before = StatusKiB(pid, peak_reset ? "VmHWM" : "VmRSS");

  constexpr int kClients = 4;
  constexpr int kRequests = 200;  // 200 MiB of answers each, asked for in one 8 KiB packet
  std::string requests;
  for (int i = 0; i < kRequests; ++i) {
    requests += "GET /v1/kv/big%2F" + std::to_string(i % kKeys) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  std::vector<std::unique_ptr<RawSocket>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<RawSocket>(server.port()));
    REQUIRE(clients.back()->Send(requests));
  }
  WaitUntilSettled(http, "/v1/kv/{key}", "GET");
  const size_t peak = StatusKiB(pid, "VmHWM");
  const double grown_mib = static_cast<double>(peak - std::min(peak, before)) / 1024;
  MESSAGE("peak resident memory grew by " << grown_mib << " MiB for " << kClients << " clients");
  CHECK(grown_mib < 8.0 * kClients);

  for (int c = 0; c < kClients; ++c) {
    CAPTURE(c);
    AnswerReader reader(clients[c]->fd());
    for (int i = 0; i < kRequests; ++i) {
      CAPTURE(i);
      const AnswerReader::Answer a = reader.Next();
      REQUIRE(a.status == 200);
      REQUIRE(a.body.size() == kMiB);
      REQUIRE(a.body == values[static_cast<size_t>(i % kKeys)]);
    }
  }
}

TEST_CASE("a listing page stops at 4 MiB of keys and values, so pipelined listings of large values stay bounded") {
  KvServer server;
  HttpClient http(server.port());
  constexpr int kKeys = 24;
  for (int k = 0; k < kKeys; ++k) {
    REQUIRE(http.Put("list/" + std::to_string(100 + k), RandomBytes(kMiB, static_cast<uint64_t>(k))).status == 201);
  }
  const pid_t pid = server.process().pid();
  const bool peak_reset = ResetPeak(pid);
  const size_t before = StatusKiB(pid, peak_reset ? "VmHWM" : "VmRSS");

  constexpr int kListings = 10;  // each would be 24 MiB of values, 32 MiB of base64
  std::string requests;
  for (int i = 0; i < kListings; ++i) requests += "GET /v1/kv?prefix=list%2F&limit=10000 HTTP/1.1\r\nHost: x\r\n\r\n";
  RawSocket client(server.port());
  REQUIRE(client.Send(requests));
  WaitUntilSettled(http, "/v1/kv", "GET");
  const size_t peak = StatusKiB(pid, "VmHWM");
  const double grown_mib = static_cast<double>(peak - std::min(peak, before)) / 1024;
  MESSAGE("peak resident memory grew by " << grown_mib << " MiB");
  CHECK(grown_mib < 32.0);

  AnswerReader reader(client.fd());
  for (int i = 0; i < kListings; ++i) {
    CAPTURE(i);
    const AnswerReader::Answer a = reader.Next();
    REQUIRE(a.status == 200);
    const nlohmann::json page = nlohmann::json::parse(a.body);
    const size_t items = page["items"].size();
    CHECK(items >= 1);
    CHECK(items < static_cast<size_t>(kKeys));
    CHECK(items * kMiB <= 4 * kMiB + kMiB);  // a page ends once it holds 4 MiB
    CHECK(page["next"].is_string());
  }
  // Paging on from `next` still visits every key once, in order.
  const std::vector<nlohmann::json> all = http.ListAll("list/", 10000);
  REQUIRE(all.size() == static_cast<size_t>(kKeys));
  for (int k = 0; k < kKeys; ++k) {
    CHECK(ItemKey(all[static_cast<size_t>(k)]) == "list/" + std::to_string(100 + k));
    CHECK(Base64Decode(all[static_cast<size_t>(k)]["value"].get<std::string>()) ==
          RandomBytes(kMiB, static_cast<uint64_t>(k)));
  }
}

}  // namespace
}  // namespace kvctl::e2e
