// Admission first: identity, rate limit and grant are judged from a
// request's head, for every route, before anything else answers, before
// its body is read and before "100 Continue"; and only once per request.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;

const std::string kReader = "reader-token-0123456789";
const std::string kWriter = "writer-token-0123456789";
const std::string kAdmin = "admin-token-0123456789";

// A server with three tokens: a reader and a writer of app/, and an admin.
struct AuthServer {
  explicit AuthServer(std::vector<std::string> extra = {}) {
    const std::filesystem::path file = dir / "tokens.toml";
    WriteFile(file, "[[tokens]]\nname = \"reader\"\nsha256 = \"" + HashToken(kReader) +
                        "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\"] }]\n"
                        "[[tokens]]\nname = \"writer\"\nsha256 = \"" + HashToken(kWriter) +
                        "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\", \"write\"] }]\n"
                        "[[tokens]]\nname = \"admin\"\nsha256 = \"" + HashToken(kAdmin) +
                        "\"\ngrants = [{ prefix = \"\", ops = [\"read\", \"write\", \"admin\"] }]\n");
    extra.insert(extra.begin(), {"--auth-file", file.string()});
    server = std::make_unique<KvServer>(extra);
  }
  KvServer* operator->() { return server.get(); }

  TempDir dir;  // outlives the server
  std::unique_ptr<KvServer> server;
};

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

std::string Status(const std::string& answer) { return answer.substr(0, answer.find("\r\n")); }

TEST_CASE("a PUT without credentials and with Expect: 100-continue gets 401 and never 100 Continue") {
  AuthServer server;
  RawSocket raw(server->port());
  raw.Send("PUT /v1/kv/app%2Fx HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1048576\r\n\r\n");
  const std::string got = ReadAnswer(raw);
  CHECK_MESSAGE(got.rfind("HTTP/1.1 401 ", 0) == 0, "got: " << got.substr(0, 300));
  CHECK(got.find("100 Continue") == std::string::npos);
  CHECK(got.find("Connection: close") != std::string::npos);
  CHECK(raw.ClosedWithin(milliseconds(5000)));
}

TEST_CASE("a refused write is answered from its head, before its body is sent") {
  AuthServer server({"--server-read-timeout", "30s"});
  struct Case {
    std::string auth;
    std::string status;
  };
  for (const Case& c : {Case{"", "HTTP/1.1 401 "}, Case{"Authorization: Bearer wrong-token\r\n", "HTTP/1.1 401 "},
                        Case{"Authorization: Bearer " + kReader + "\r\n", "HTTP/1.1 403 "},
                        Case{"Authorization: Bearer " + kWriter + "\r\n", ""}}) {
    CAPTURE(c.auth);
    RawSocket raw(server->port());
    raw.Send("PUT /v1/kv/app%2Fbig HTTP/1.1\r\nHost: x\r\n" + c.auth + "Content-Length: 1048576\r\n\r\n");
    // No body is sent: a server that waited for it would answer nothing
    // until the 30 s read timeout.
    const std::string got = ReadAnswer(raw, milliseconds(c.status.empty() ? 1000 : 5000));
    if (c.status.empty()) {
      CHECK_MESSAGE(got.empty(), "an admitted PUT was answered before its body: " << got.substr(0, 200));
    } else {
      CHECK_MESSAGE(got.rfind(c.status, 0) == 0, "got: " << got.substr(0, 300));
      CHECK(got.find("X-Kvctl-Revision: ") != std::string::npos);
      CHECK(got.find("X-Request-Id: ") != std::string::npos);
    }
  }
  HttpClient http(server->port());
  CHECK(http.Request("GET", KeyPath("app/big"), {}, {{"Authorization", "Bearer " + kWriter}}).status == 404);
}

TEST_CASE("OPTIONS, unknown routes and wrong methods need credentials too, probes do not") {
  AuthServer server;
  HttpClient http(server->port());
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"OPTIONS", "/v1/kv/app%2Fx"}, {"OPTIONS", "*"}, {"GET", "/nope"}, {"POST", "/v1/kv/app%2Fx"},
           {"DELETE", "/v1/kv"}}) {
    CAPTURE(method);
    CAPTURE(path);
    const HttpResponse r = http.Request(method, path);
    CHECK(r.status == 401);
    CHECK(ErrorCode(r) == "unauthorized");
    CHECK(r.HasHeader("X-Kvctl-Revision"));
  }
  const httplib::Headers reader{{"Authorization", "Bearer " + kReader}};
  CHECK(http.Request("GET", "/nope", {}, reader).status == 404);
  CHECK(http.Request("OPTIONS", "/v1/kv/app%2Fx", {}, reader).status == 204);
  CHECK(http.Request("POST", "/v1/kv/app%2Fx", "v", reader).status == 405);
  CHECK(http.Request("GET", "/healthz").status == 200);
  CHECK(http.Request("GET", "/readyz").status == 200);
}

TEST_CASE("/readyz answers anyone, and tells the store revision only to an admin") {
  AuthServer server;
  HttpClient http(server->port());
  REQUIRE(http.Put("app/a", "1", {{"Authorization", "Bearer " + kWriter}}).status == 201);
  for (const httplib::Headers& h : {httplib::Headers{}, httplib::Headers{{"Authorization", "Bearer " + kWriter}},
                                    httplib::Headers{{"Authorization", "Bearer nonsense"}}}) {
    const HttpResponse r = http.Request("GET", "/readyz", {}, h);
    CHECK(r.status == 200);
    CHECK(r.Json()["status"] == "ready");
    CHECK_FALSE(r.Json().contains("revision"));
  }
  const HttpResponse admin = http.Request("GET", "/readyz", {}, {{"Authorization", "Bearer " + kAdmin}});
  CHECK(admin.Json()["revision"] == 1);
}

TEST_CASE("two Authorization fields are refused with 400, whatever the first one says") {
  AuthServer server;
  for (const std::string& second : {"Bearer " + kWriter, std::string("Bearer nonsense")}) {
    CAPTURE(second);
    RawSocket raw(server->port());
    raw.Send("GET /v1/kv/app%2Fx HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kWriter +
             "\r\nAuthorization: " + second + "\r\n\r\n");
    const std::string got = ReadAnswer(raw);
    CHECK_MESSAGE(got.rfind("HTTP/1.1 400 ", 0) == 0, "got: " << got.substr(0, 300));
    CHECK(got.find("duplicate_authorization") != std::string::npos);
  }
}

TEST_CASE("the rate limit counts every request once: unknown routes count, admitted writes are not counted twice") {
  KvServer server({"--ratelimit-rate", "1", "--ratelimit-burst", "3"});
  HttpClient http(server.port());
  // Writes: admitted at their head, answered by the async path.
  int served = 0;
  int status = 0;
  for (int i = 0; i < 10 && status != 429; ++i) {
    status = http.Put("w" + std::to_string(i), "v").status;
    if (status == 201) ++served;
  }
  CHECK(status == 429);
  CHECK(served >= 3);  // one more if a token was refilled meanwhile
  std::this_thread::sleep_for(milliseconds(3500));  // the bucket fills up again
  // Unknown routes pay for asking too.
  status = 0;
  for (int i = 0; i < 10 && status != 429; ++i) status = http.Request("GET", "/nope").status;
  CHECK(status == 429);
}

}  // namespace
}  // namespace kvctl::e2e
